// What the operator end-to-end tests run: real proxy processes on their own loopback IPs (127.0.0.x, same ports,
// as pods have one IP each), Pods whose status the test sets (no kubelet runs), the operator as a process
// with a ServiceAccount token bound to the shipped ClusterRole, and small waiting helpers.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { loadAllYaml } from '@kubernetes/client-node';
import { Kube, KubeError } from '@veloflux/operator/kube';
import { adminKubeConfig, serviceAccountToken, waitFor, writeKubeconfig } from '../cluster/testenv.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const PROXY_MAIN = join(root, 'proxy/src/main.ts');
export const OPERATOR_MAIN = join(root, 'operator/src/main.ts');
export const CLUSTER_ROLE = readFileSync(join(root, 'charts/veloflux/rbac/operator-clusterrole.yaml'), 'utf8');
export const LEASE_ROLE = readFileSync(join(root, 'charts/veloflux/rbac/operator-leader-election-role.yaml'), 'utf8');
export const CRD_YAML = readFileSync(join(root, 'crds/failoverpool.yaml'), 'utf8');
export const TOKEN = 'e2e-admin-token';

export const admin = (): Kube => new Kube(adminKubeConfig());
export const fpPath = (ns: string, name = ''): string => `/apis/veloflux.io/v1alpha1/namespaces/${ns}/failoverpools${name ? `/${name}` : ''}`;

/** Waits for `check` to return a value (not undefined), polling every 50 ms by default. */
export const until = <T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, pollMs = 50): Promise<T> =>
  waitFor(what, check, timeoutMs, pollMs);

/** A port free on 127.0.0.1, used on every proxy IP (pods share ports, not IPs). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface ProxyProc {
  readonly ip: string;
  readonly dataUrl: string;
  readonly adminUrl: string;
  child: ChildProcess;
  readonly logs: string[];
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts `node proxy/src/main.ts` on ip:dataPort / ip:adminPort with a bootstrap config (one placeholder pool).
 * opts.extraYaml: more top-level lines of that config (e.g. a dataplane block).
 */
export async function startProxy(ip: string, dataPort: number, adminPort: number, placeholderBackend: string, opts: { bootstrap?: boolean; tokenFile?: string; extraYaml?: readonly string[]; env?: Record<string, string> } = {}): Promise<ProxyProc> {
  const dir = mkdtempSync(join(tmpdir(), 'vf-e2e-proxy-'));
  const file = join(dir, 'config.yaml');
  // tokenFile: the token comes from that file (re-read when it changes), as in the chart; else from the env.
  const adminLine = opts.tokenFile ? `admin: { listen: "${ip}:${adminPort}", token_file: "${opts.tokenFile}" }` : `admin: { listen: "${ip}:${adminPort}" }`;
  // bootstrap: the chart's bootstrap config (no pools, bootstrap: true: not ready until the operator pushes).
  writeFileSync(file, (opts.bootstrap ? [
    'bootstrap: true',
    `listen: "${ip}:${dataPort}"`,
    adminLine,
    '',
  ] : [
    `listen: "${ip}:${dataPort}"`,
    adminLine,
    'pools: [{ name: "bootstrap", backends: [{ address: "' + placeholderBackend + '" }] }]',
    'routes: [{ host: "bootstrap.invalid", pool: "bootstrap" }]',
    ...(opts.extraYaml ?? []),
    '',
  ]).join('\n'));
  const logs: string[] = [];
  const proc: ProxyProc = {
    ip,
    dataUrl: `http://${ip}:${dataPort}`,
    adminUrl: `http://${ip}:${adminPort}`,
    child: undefined as unknown as ChildProcess,
    logs,
    async restart() {
      const { VELOFLUX_ADMIN_TOKEN: _unused, ...env } = process.env;
      const child = spawn(process.execPath, [PROXY_MAIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...(opts.tokenFile ? env : { ...env, VELOFLUX_ADMIN_TOKEN: TOKEN }), ...opts.env } });
      proc.child = child;
      child.stdout.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
      child.stderr.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
      await until(`proxy on ${ip} to start`, () => (logs.some((l) => l.includes('veloflux proxy started')) ? true : child.exitCode !== null ? Promise.reject(new Error(`exited ${child.exitCode}: ${logs.join('\n')}`)) : undefined), 15_000);
    },
    async stop() {
      const child = proc.child;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
      logs.length = 0;
    },
  };
  await proc.restart();
  return proc;
}

/** GET on a proxy admin endpoint with the token. */
export async function adminGet<T>(proxy: ProxyProc, path: string): Promise<T> {
  const res = await fetch(`${proxy.adminUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A request through a proxy's data plane with a Host header: status and body. */
export async function through(proxy: ProxyProc, host: string, path = '/'): Promise<{ status: number; body: string }> {
  const { request } = await import('undici');
  const res = await request(`${proxy.dataUrl}${path}`, { headers: { host }, headersTimeout: 5_000, bodyTimeout: 5_000 });
  return { status: res.statusCode, body: await res.body.text() };
}

/** A Pod as a kubelet would report it: created, then its status set ready on `ip`. */
export async function createProxyPod(ns: string, name: string, ip: string, adminPort: number, labels: Record<string, string> = { app: 'proxy' }): Promise<void> {
  const kube = admin();
  await kube.create(`/api/v1/namespaces/${ns}/pods`, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, labels },
    spec: { containers: [{ name: 'proxy', image: 'veloflux/proxy:test', ports: [{ name: 'admin', containerPort: adminPort }] }] },
  });
  await setPodReady(ns, name, ip, true);
}

export async function setPodReady(ns: string, name: string, ip: string, ready: boolean): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await admin().mergePatch(`/api/v1/namespaces/${ns}/pods/${name}/status`, {
    status: {
      phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP: '127.0.0.1',
      conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: now }],
    },
  });
}

/**
 * Installs the ClusterRole and the leader-election Role (in `ns`, where the operator keeps its Lease) from charts/,
 * binds both to a fresh ServiceAccount, and returns a kubeconfig file for it.
 */
/**
 * The labelled admin-token Secret the operator reads, deleted after the test: no controller-manager empties a
 * deleted namespace, and operators of later test files count the labelled Secrets cluster-wide.
 */
export async function createAdminTokenSecret(t: TestContext, ns: string): Promise<void> {
  const kube = admin();
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'veloflux-admin-token', labels: { 'veloflux.io/secret': 'true' } }, stringData: { token: TOKEN } });
  t.after(() => kube.request('DELETE', `/api/v1/namespaces/${ns}/secrets/veloflux-admin-token`).catch(() => undefined));
}

export async function operatorCredentials(ns: string): Promise<string> {
  const kube = admin();
  const role = (loadAllYaml(CLUSTER_ROLE) as { metadata: { name: string } }[])[0] as { metadata: { name: string } };
  try {
    await kube.create('/apis/rbac.authorization.k8s.io/v1/clusterroles', role);
  } catch (err) {
    if (!(err instanceof KubeError) || err.code !== 409) throw err;
    await kube.update(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${role.metadata.name}`, { ...role, metadata: { ...role.metadata, resourceVersion: (await kube.get<{ metadata: { resourceVersion: string } }>(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${role.metadata.name}`)).metadata.resourceVersion } });
  }
  const token = await serviceAccountToken(ns, 'operator');
  await kube.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding',
    metadata: { name: `veloflux-operator-${ns}` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.metadata.name },
    subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: ns }],
  });
  const lease = (loadAllYaml(LEASE_ROLE) as { metadata: { name: string } }[])[0] as { metadata: { name: string } };
  await kube.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, lease);
  await kube.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding',
    metadata: { name: 'veloflux-operator-leader-election' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: lease.metadata.name },
    subjects: [{ kind: 'ServiceAccount', name: 'operator', namespace: ns }],
  });
  return writeKubeconfig(token, `operator-${ns}`);
}

export interface OperatorProc {
  readonly child: ChildProcess;
  readonly logs: string[];
  readonly metricsUrl: string;
  metric(name: string, labels?: string): Promise<number>;
  /** SIGTERM and wait for exit (graceful shutdown). */
  stop(): Promise<number | string>;
}

export async function startOperator(t: TestContext, kubeconfig: string, ns: string): Promise<OperatorProc> {
  const child = spawn(process.execPath, [
    OPERATOR_MAIN, '--kubeconfig', kubeconfig, '--namespace', ns, '--metrics-address', '127.0.0.1:0',
    '--lease-duration', '4s', '--renew-deadline', '3s', '--retry-period', '500ms', '--resync', '20s',
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '', VELOFLUX_LOG_LEVEL: 'debug' } });
  const logs: string[] = [];
  let partial = '';
  child.stdout.on('data', (c: Buffer) => { partial += c.toString(); const lines = partial.split('\n'); partial = lines.pop() ?? ''; logs.push(...lines); });
  child.stderr.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number | string>((r) => child.once('exit', (code, signal) => r(code ?? signal ?? 'unknown')));
  const started = await until('operator to start', () => {
    if (child.exitCode !== null) throw new Error(`operator exited ${child.exitCode}: ${logs.join('\n')}`);
    const line = logs.find((l) => l.includes('veloflux operator started'));
    return line ? (JSON.parse(line) as { metrics: string }) : undefined;
  }, 15_000);
  const metricsUrl = `http://${started.metrics}`;
  const op: OperatorProc = {
    child, logs, metricsUrl,
    async metric(name, labels = '') {
      const text = await (await fetch(`${metricsUrl}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
      return line ? Number(line.split(' ').pop()) : 0;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      return exited;
    },
  };
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; }
    if (process.env.VF_E2E_LOGS) process.stderr.write(`${logs.join('\n')}\n`);
  });
  return op;
}
