// The chart and the images, without a cluster: helm lint, helm template with the defaults and with every option
// on, what the rendered objects must say (security, probes, the labels and names the operator relies on), one
// source for the CRDs and the operator's ClusterRole, values documented and checked by the schema, Dockerfiles.
// The install/upgrade/uninstall cycle against the real apiserver is in install.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadConfigText } from '@veloflux/config/load';
import { CHART, MONITORING_API, ROOT, find, helm, helmRun, one, readRepoFile, template } from './helm.ts';
import type { KubeObject } from './helm.ts';

const ALL_ON_VALUES = ['-f', join(ROOT, 'test/chart/fixtures/all-on.yaml'), '--set', 'sidecar.namespaces[0]=shop'];
const ALL_ON = [...ALL_ON_VALUES, ...MONITORING_API];

interface Container {
  name: string; args?: string[]; image: string;
  ports?: { name: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
}
interface PodSpec {
  securityContext?: Record<string, unknown>;
  containers: Container[];
  volumes?: { name: string; emptyDir?: object; secret?: { secretName: string }; configMap?: { name: string } }[];
  automountServiceAccountToken?: boolean;
}
const podSpec = (d: KubeObject): PodSpec => (d as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
const podLabels = (d: KubeObject): Record<string, string> => (d as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template.metadata.labels;
const arg = (c: Container, name: string): string | undefined => c.args?.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);

/** What every pod of the chart must do: non-root, read-only root, no capabilities, RuntimeDefault seccomp, /tmp. */
function assertHardened(d: KubeObject): void {
  const spec = podSpec(d);
  const where = `${d.kind}/${d.metadata.name}`;
  assert.equal(spec.securityContext?.runAsNonRoot, true, `${where}: pod runAsNonRoot`);
  assert.deepEqual(spec.securityContext?.seccompProfile, { type: 'RuntimeDefault' }, `${where}: pod seccomp`);
  for (const c of spec.containers) {
    const sc = c.securityContext ?? {};
    assert.equal(sc.readOnlyRootFilesystem, true, `${where}/${c.name}: readOnlyRootFilesystem`);
    assert.equal(sc.runAsNonRoot, true, `${where}/${c.name}: runAsNonRoot`);
    assert.equal(sc.allowPrivilegeEscalation, false, `${where}/${c.name}: allowPrivilegeEscalation`);
    assert.deepEqual(sc.capabilities, { drop: ['ALL'] }, `${where}/${c.name}: capabilities`);
    assert.deepEqual(sc.seccompProfile, { type: 'RuntimeDefault' }, `${where}/${c.name}: seccomp`);
    const tmp = c.volumeMounts?.find((m) => m.mountPath === '/tmp');
    assert.ok(tmp && spec.volumes?.find((v) => v.name === tmp.name)?.emptyDir, `${where}/${c.name}: an emptyDir on /tmp`);
  }
}

test('helm lint passes with the defaults and, strictly, with every option on', async () => {
  await helm(['lint', CHART, '--strict']);
  await helm(['lint', CHART, '--strict', ...ALL_ON_VALUES]); // lint has no --api-versions: template covers monitoring
});

test('default render: operator, gateway proxy, RBAC, token, NetworkPolicy, PDB, dashboard; no monitoring objects', async () => {
  const objects = await template();
  const kinds = objects.map((o) => o.kind).sort();
  assert.deepEqual(kinds, ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'ConfigMap', 'Deployment', 'Deployment', 'NetworkPolicy',
    'PodDisruptionBudget', 'Role', 'RoleBinding', 'Secret', 'Service', 'Service', 'ServiceAccount', 'ServiceAccount']);
  for (const o of objects) {
    assert.equal(o.metadata.labels?.['app.kubernetes.io/instance'], 'veloflux', `${o.kind}/${o.metadata.name} has the release label`);
    if (!o.kind.startsWith('ClusterRole')) assert.equal(o.metadata.namespace, 'veloflux', `${o.kind}/${o.metadata.name} is namespaced`);
  }
  for (const d of find(objects, 'Deployment')) assertHardened(d);
});

test('the proxy Deployment: bootstrap config, token file, probes on the admin port, the label the operator selects', async () => {
  const objects = await template();
  const proxy = one(objects, 'Deployment', 'veloflux-proxy');
  const spec = podSpec(proxy);
  const c = spec.containers[0] as Container;
  assert.deepEqual(c.args, ['--config', '/etc/veloflux/config/config.yaml', '--workers', '1']);
  assert.deepEqual(c.ports?.map((p) => [p.name, p.containerPort]), [['http', 8080], ['admin', 9000]]);
  assert.deepEqual(c.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' });
  assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' });
  assert.equal(spec.automountServiceAccountToken, false, 'the proxy never talks to the apiserver');
  assert.equal(podLabels(proxy)['veloflux.io/proxy'], 'true');
  assert.equal(spec.volumes?.find((v) => v.name === 'admin-token')?.secret?.secretName, 'veloflux-admin-token');
  // A token the chart changes rolls the pods: the annotation is the sha256 of the very token in the Secret.
  const token = Buffer.from((one(objects, 'Secret') as KubeObject & { data: { token: string } }).data.token, 'base64');
  const annotations = (proxy as unknown as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template.metadata.annotations;
  assert.equal(annotations['checksum/admin-token'], createHash('sha256').update(token).digest('hex'));

  // The bootstrap config is one the proxy accepts: listeners and token file, no pools until the operator pushes.
  const cm = one(objects, 'ConfigMap', 'veloflux-proxy-bootstrap') as KubeObject & { data: Record<string, string> };
  const loaded = loadConfigText(cm.data['config.yaml'] ?? '');
  assert.ok(loaded.ok, JSON.stringify(loaded));
  if (loaded.ok) {
    assert.deepEqual([loaded.config.listen.port, loaded.config.admin.listen.port, loaded.config.pools.length], [8080, 9000, 0]);
    assert.equal(loaded.config.admin.tokenFile, '/etc/veloflux/admin/token');
    assert.equal(loaded.config.bootstrap, true, 'warm-up: not ready until the operator pushes a config');
  }

  const svc = one(objects, 'Service', 'veloflux-proxy') as KubeObject & { spec: { ports: { name: string; port: number; targetPort: string }[] } };
  assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['http', 80, 'http'], ['admin', 9000, 'admin']]);
  const pdb = one(objects, 'PodDisruptionBudget') as KubeObject & { spec: Record<string, unknown> };
  assert.equal(pdb.spec.maxUnavailable, 1);
});

test('proxy.tls.secretName: the Secret mounted as a volume (not subPath), a TLS listener the proxy accepts, the https port on pod, Service and NetworkPolicy; sidecars get no tls block', async () => {
  const objects = await template(['--set', 'proxy.tls.secretName=gateway-tls', '--set', 'proxy.tls.minVersion=TLSv1.3', '--set', 'sidecar.namespaces[0]=shop']);
  const proxy = one(objects, 'Deployment', 'veloflux-proxy');
  const spec = podSpec(proxy);
  const c = spec.containers[0] as Container;
  assert.deepEqual(c.ports?.map((p) => [p.name, p.containerPort]), [['http', 8080], ['admin', 9000], ['https', 8443]]);
  assert.deepEqual(c.volumeMounts?.find((m) => m.name === 'tls'), { name: 'tls', mountPath: '/etc/veloflux/tls', readOnly: true });
  assert.equal(spec.volumes?.find((v) => v.name === 'tls')?.secret?.secretName, 'gateway-tls');
  const svc = one(objects, 'Service', 'veloflux-proxy') as KubeObject & { spec: { ports: { name: string; port: number; targetPort: string }[] } };
  assert.deepEqual(svc.spec.ports.map((p) => [p.name, p.port, p.targetPort]), [['http', 80, 'http'], ['admin', 9000, 'admin'], ['https', 443, 'https']]);
  const np = one(objects, 'NetworkPolicy') as KubeObject & { spec: { ingress: { ports: { port: string }[] }[] } };
  assert.deepEqual(np.spec.ingress[0]?.ports.map((p) => p.port), ['http', 'https']);
  const configs = find(objects, 'ConfigMap').filter((o) => o.metadata.name === 'veloflux-proxy-bootstrap') as (KubeObject & { data: Record<string, string> })[];
  const gateway = configs.find((o) => o.metadata.namespace === 'veloflux');
  const sidecar = configs.find((o) => o.metadata.namespace === 'shop');
  const loaded = loadConfigText(gateway?.data['config.yaml'] ?? '');
  assert.ok(loaded.ok, JSON.stringify(loaded));
  if (loaded.ok) {
    assert.deepEqual(loaded.config.tls, { listen: { host: '', port: 8443 }, minVersion: 'TLSv1.3', alpn: ['h2', 'http/1.1'], certificates: [{ certFile: '/etc/veloflux/tls/tls.crt', keyFile: '/etc/veloflux/tls/tls.key', hosts: [] }] });
  }
  const side = loadConfigText(sidecar?.data['config.yaml'] ?? '');
  assert.ok(side.ok && side.config.tls === undefined, 'the sidecar bootstrap config has no TLS listener');
  // Without a Secret: nothing of it.
  const plain = await template();
  assert.ok(!podSpec(one(plain, 'Deployment', 'veloflux-proxy')).volumes?.some((v) => v.name === 'tls'));
  const r = await helmRun(['template', 'x', CHART, '--set', 'proxy.tls.minVersion=TLSv1.1']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /minVersion/);
});

test('proxy.upstreamCA: a ConfigMap or a Secret of backend CAs mounted read-only at /etc/veloflux/upstream-ca (for FailoverPool spec.tls.caFile); not both', async () => {
  for (const [flag, want] of [['configMapName=backend-cas', { configMap: { name: 'backend-cas' } }], ['secretName=backend-cas', { secret: { secretName: 'backend-cas' } }]] as const) {
    const spec = podSpec(one(await template(['--set', `proxy.upstreamCA.${flag}`]), 'Deployment', 'veloflux-proxy'));
    assert.deepEqual((spec.containers[0] as Container).volumeMounts?.find((m) => m.name === 'upstream-ca'), { name: 'upstream-ca', mountPath: '/etc/veloflux/upstream-ca', readOnly: true }, flag);
    const v = spec.volumes?.find((x) => x.name === 'upstream-ca');
    // (defaultMode is left out: the chart writes 0440, which YAML 1.1 (the apiserver) and 1.2 (this parser) read apart.)
    assert.deepEqual(v?.secret === undefined ? { configMap: v?.configMap } : { secret: { secretName: v.secret.secretName } }, want, flag);
  }
  assert.ok(!podSpec(one(await template(), 'Deployment', 'veloflux-proxy')).volumes?.some((v) => v.name === 'upstream-ca'), 'nothing by default');
  const both = await helmRun(['template', 'x', CHART, '--set', 'proxy.upstreamCA.configMapName=a', '--set', 'proxy.upstreamCA.secretName=b']);
  assert.notEqual(both.code, 0, 'a ConfigMap and a Secret at once is refused');
  assert.match(both.stderr, /upstreamCA/);
});

test('the operator Deployment: leader election in the release namespace, the token Secret and proxy label the proxies use', async () => {
  const objects = await template();
  const op = one(objects, 'Deployment', 'veloflux-operator');
  const c = podSpec(op).containers[0] as Container;
  assert.equal(arg(c, 'namespace'), 'veloflux');
  assert.equal(arg(c, 'lease-name'), 'veloflux-operator');
  assert.equal(arg(c, 'token-secret'), one(objects, 'Secret').metadata.name);
  assert.equal(arg(c, 'pod-selector'), 'veloflux.io/proxy=true');
  assert.equal(arg(c, 'metrics-address'), ':8081');
  assert.deepEqual(c.livenessProbe?.httpGet, { path: '/healthz', port: 'metrics' });
  assert.deepEqual(c.readinessProbe?.httpGet, { path: '/readyz', port: 'metrics' }, 'ready once the caches synced');
  assert.equal(one(objects, 'Secret').metadata.labels?.['veloflux.io/secret'], 'true', 'the operator caches only labelled Secrets');
  const sa = (op as unknown as { spec: { template: { spec: { serviceAccountName: string } } } }).spec.template.spec.serviceAccountName;
  const binding = one(objects, 'ClusterRoleBinding') as KubeObject & { subjects: object[]; roleRef: { name: string } };
  assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: sa, namespace: 'veloflux' }]);
  assert.equal(binding.roleRef.name, one(objects, 'ClusterRole').metadata.name);

  const two = one(await template(['--set', 'operator.replicas=2']), 'Deployment', 'veloflux-operator') as KubeObject & { spec: { replicas: number } };
  assert.equal(two.spec.replicas, 2);
});

test('the ClusterRole has one source: its rules are exactly rbac/operator-clusterrole.yaml', async () => {
  const source = parse(readRepoFile('charts/veloflux/rbac/operator-clusterrole.yaml')) as { kind: string; rules: object[] };
  assert.equal(source.kind, 'ClusterRole');
  const rendered = one(await template(), 'ClusterRole') as KubeObject & { rules: object[] };
  assert.deepEqual(rendered.rules, source.rules);
  const leaseSource = parse(readRepoFile('charts/veloflux/rbac/operator-leader-election-role.yaml')) as { kind: string; rules: object[] };
  assert.equal(leaseSource.kind, 'Role');
  const leaseRole = one(await template(), 'Role') as KubeObject & { rules: object[] };
  assert.deepEqual(leaseRole.rules, leaseSource.rules);
  assert.equal(leaseRole.metadata.namespace, 'veloflux', 'the Lease permission is namespaced to the release');
  // No template writes rules of its own.
  for (const file of readdirSync(join(CHART, 'templates'))) {
    assert.doesNotMatch(readRepoFile(`charts/veloflux/templates/${file}`), /\bverbs:/, `templates/${file} must not define RBAC rules`);
  }
  // Least privilege: nothing is granted on every resource or with every verb, and no secret is readable by name.
  for (const rule of [...source.rules, ...leaseSource.rules] as { resources: string[]; verbs: string[] }[]) {
    assert.ok(!rule.resources.includes('*') && !rule.verbs.includes('*'), JSON.stringify(rule));
  }
});

test("the chart's crds/ are the repository's crds/, file for file", () => {
  const top = readdirSync(join(ROOT, 'crds')).filter((f) => f.endsWith('.yaml')).sort();
  const chart = readdirSync(join(CHART, 'crds')).sort();
  assert.ok(top.length > 0, 'crds/ has CRDs');
  assert.deepEqual(chart, top, 'the same files');
  for (const f of top) {
    assert.equal(readRepoFile(`charts/veloflux/crds/${f}`), readRepoFile(`crds/${f}`), `charts/veloflux/crds/${f} differs from crds/${f}: run npm run crds (it writes both)`);
  }
});

test('ServiceMonitor and PrometheusRule render only when monitoring.coreos.com/v1 is available', async () => {
  assert.equal(find(await template(), 'ServiceMonitor').length, 0);
  const objects = await template(MONITORING_API);
  const sm = one(objects, 'ServiceMonitor') as KubeObject & { spec: { endpoints: { port: string; path: string }[] } };
  assert.deepEqual(sm.spec.endpoints.map((e) => [e.port, e.path]), [['admin', '/metrics'], ['metrics', '/metrics']]);
  const rule = one(objects, 'PrometheusRule') as KubeObject & { spec: { groups: { rules: { alert: string; expr: string }[] }[] } };
  const alerts = rule.spec.groups.flatMap((g) => g.rules);
  assert.deepEqual(alerts.map((a) => a.alert), ['VelofluxFailoverActive', 'VelofluxFailoverFlapping', 'VelofluxProxyOutOfSync']);
  for (const a of alerts) assertKnownMetrics(a.expr, `alert ${a.alert}`);
  // The pool's namespace is pool_namespace: Prometheus owns `namespace` (the scrape target's) on operator metrics.
  const outOfSync = alerts.find((a) => a.alert === 'VelofluxProxyOutOfSync')?.expr ?? '';
  assert.match(outOfSync, /max by \(pool_namespace, pool\) \(veloflux_operator_pool_proxies\{state="selected"\}\)/);
  assert.doesNotMatch(outOfSync, /by \(namespace, pool\) \(veloflux_operator_pool_proxies/);
  assert.equal(find(await template(['--set', 'monitoring.serviceMonitor.enabled=false', ...MONITORING_API]), 'ServiceMonitor').length, 0);
});

/** Metric names the proxy (docs/metrics.md) and the operator (operator/src/manager.ts) export. */
function knownMetrics(): Set<string> {
  const names = new Set<string>();
  for (const m of readRepoFile('docs/metrics.md').matchAll(/^\| `(veloflux_[a-z_]+)`/gm)) names.add(m[1] as string);
  for (const m of readRepoFile('operator/src/manager.ts').matchAll(/name: '(veloflux_operator_[a-z_]+)'/g)) names.add(m[1] as string);
  return names;
}

function assertKnownMetrics(expr: string, where: string): void {
  const known = knownMetrics();
  const used = [...expr.matchAll(/\b(veloflux_[a-z_]+)/g)].map((m) => (m[1] as string).replace(/_(bucket|sum|count)$/, ''));
  assert.ok(used.length > 0, `${where} uses a VeloFlux metric`);
  for (const name of used) assert.ok(known.has(name), `${where}: ${name} is not a documented metric`);
}

test('the Grafana dashboard is valid JSON and queries documented metrics only', async () => {
  const cm = one(await template(), 'ConfigMap', 'veloflux-dashboard') as KubeObject & { data: Record<string, string> };
  assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
  const dashboard = JSON.parse(cm.data['veloflux.json'] ?? '') as { uid: string; panels: { title: string; targets: { expr: string }[] }[] };
  assert.equal(dashboard.uid, 'veloflux');
  assert.ok(dashboard.panels.length >= 8);
  for (const p of dashboard.panels) for (const t of p.targets) assertKnownMetrics(t.expr, `panel "${p.title}"`);
});

test('every option on: sidecar namespaces get the token and bootstrap config, one token for all', async () => {
  const objects = await template(ALL_ON, 'edge', 'veloflux');
  for (const d of find(objects, 'Deployment')) assertHardened(d);
  const secrets = find(objects, 'Secret') as (KubeObject & { data: { token: string } })[];
  assert.deepEqual(secrets.map((s) => [s.metadata.namespace, s.metadata.name]), [['veloflux', 'edge-admin-token'], ['shop', 'edge-admin-token']]);
  assert.equal(new Set(secrets.map((s) => s.data.token)).size, 1, 'one token in every namespace');
  assert.equal(Buffer.from(secrets[0]?.data.token ?? '', 'base64').toString().length, 48);
  assert.deepEqual(find(objects, 'ConfigMap', 'edge-vflux-proxy-bootstrap').map((c) => c.metadata.namespace), ['veloflux', 'shop']);
  const proxy = one(objects, 'Deployment', 'edge-vflux-proxy');
  assert.equal(podLabels(proxy)['example.com/failover-proxy'], 'gateway');
  const pdb = one(objects, 'PodDisruptionBudget', 'edge-vflux-proxy') as KubeObject & { spec: Record<string, unknown> };
  assert.deepEqual([pdb.spec.minAvailable, pdb.spec.maxUnavailable], [2, undefined]);
  const op = podSpec(one(objects, 'Deployment', 'edge-vflux-operator')).containers[0] as Container;
  assert.equal(arg(op, 'token-secret'), 'edge-admin-token');
  assert.deepEqual(op.args?.slice(-2), ['--pod-selector', 'example.com/failover-proxy'], 'extraArgs come last, so they win');
  assert.equal(one(objects, 'ServiceMonitor').metadata.labels?.release, 'kube-prometheus-stack');
});

test('adminToken.existingSecret: no Secret is created, proxies and operator use the named one', async () => {
  const objects = await template(['--set', 'adminToken.existingSecret=my-token', '--set', 'sidecar.namespaces[0]=shop']);
  assert.equal(find(objects, 'Secret').length, 0);
  const proxy = podSpec(one(objects, 'Deployment', 'veloflux-proxy'));
  assert.equal(proxy.volumes?.find((v) => v.name === 'admin-token')?.secret?.secretName, 'my-token');
  assert.equal(arg(podSpec(one(objects, 'Deployment', 'veloflux-operator')).containers[0] as Container, 'token-secret'), 'my-token');
});

test('proxy.enabled=false (sidecar only): no gateway objects, the operator stays', async () => {
  const objects = await template(['--set', 'proxy.enabled=false', '--set', 'sidecar.namespaces[0]=shop']);
  assert.deepEqual(find(objects, 'Deployment').map((d) => d.metadata.name), ['veloflux-operator']);
  assert.equal(find(objects, 'NetworkPolicy').length + find(objects, 'PodDisruptionBudget').length, 0);
  assert.deepEqual(find(objects, 'ConfigMap', 'veloflux-proxy-bootstrap').map((c) => c.metadata.namespace), ['shop']);
});

test('values.schema.json refuses unknown keys and malformed values, naming them', async () => {
  for (const [set, message] of [
    ['proxy.replicass=2', "additional properties 'replicass' not allowed"],
    ['operator.resync=soon', "'soon' does not match pattern"],
    ['proxy.workers=many', "'many' does not match pattern"],
    ['proxy.service.type=Ingress', 'value must be one of'],
  ] as const) {
    const r = await helmRun(['template', 'x', CHART, '--set', set]);
    assert.notEqual(r.code, 0, set);
    assert.match(r.stderr, new RegExp(message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), `${set}: ${r.stderr}`);
  }
});

test('charts/veloflux/README.md documents every value in values.yaml', () => {
  const values = parse(readRepoFile('charts/veloflux/values.yaml')) as Record<string, unknown>;
  const readme = readRepoFile('charts/veloflux/README.md');
  const paths: string[] = [];
  const walk = (v: unknown, path: string): void => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length > 0 && !/(Labels|labels|Annotations|annotations|Selector|selector|nodeSelector|resources|requests|limits)$/.test(path)) {
      for (const [k, sub] of Object.entries(v)) walk(sub, path ? `${path}.${k}` : k);
    } else paths.push(path);
  };
  walk(values, '');
  const missing = paths.filter((p) => !readme.includes(`\`${p}\``));
  assert.deepEqual(missing, [], 'values without a row in charts/veloflux/README.md');
});

/** A Dockerfile's stages: FROM line and instructions (continuation lines joined, comments dropped). */
function stages(file: string): { from: string; lines: string[] }[] {
  const text = readRepoFile(file).replace(/\\\n/g, ' ');
  const out: { from: string; lines: string[] }[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (/^FROM\s/i.test(line)) out.push({ from: line, lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

// The proxy image runs its build (npm run build writes proxy/dist from proxy/src); the operator runs its sources.
for (const [image, entry, source, workspace] of [['proxy', 'proxy/dist/main.js', 'proxy/src/main.ts', 'proxy'], ['operator', 'operator/src/main.ts', 'operator/src/main.ts', 'operator']] as const) {
  test(`images/${image}/Dockerfile: multi-stage on the pinned node:24 slim, production dependencies only, non-root, no HEALTHCHECK`, () => {
    const file = `images/${image}/Dockerfile`;
    const text = readRepoFile(file);
    const pinned = (JSON.parse(readRepoFile('package.json')) as { devDependencies: Record<string, string> }).devDependencies.node;
    assert.match(pinned ?? '', /^24\.\d+\.\d+$/);
    assert.match(text, new RegExp(`^ARG NODE_VERSION=${pinned?.replace(/\./g, '\\.')}$`, 'm'), 'the Node version package.json pins');
    const st = stages(file);
    assert.ok(st.length >= 2, 'multi-stage');
    for (const s of st) assert.match(s.from, /^FROM node:\$\{NODE_VERSION\}-bookworm-slim( AS \w+)?$/, s.from);
    const all = st.flatMap((s) => s.lines);
    assert.ok(!all.some((l) => /^HEALTHCHECK/i.test(l)), 'no HEALTHCHECK: Kubernetes probes');
    const installs = all.filter((l) => /\bnpm (ci|install)\b/.test(l));
    assert.ok(installs.length > 0 && installs.every((l) => l.includes('npm ci') && l.includes(`--workspace ${workspace}`)), installs.join('\n'));
    const final = st.at(-1) as { from: string; lines: string[] };
    // The node_modules in the final image come from a stage that installed production dependencies only.
    const moduleSources = final.lines.filter((l) => /^COPY --from=\w+ \S*node_modules /.test(l)).map((l) => /--from=(\w+)/.exec(l)?.[1]);
    assert.ok(moduleSources.length > 0, 'the final stage copies node_modules from an install stage');
    for (const name of new Set(moduleSources)) {
      const stage = st.find((x) => new RegExp(` AS ${name}$`).test(x.from));
      assert.ok(stage?.lines.some((l) => l.includes('npm ci') && l.includes('--omit=dev')), `stage ${name} installs with --omit=dev`);
    }
    assert.ok(!final.lines.some((l) => /^RUN\b/.test(l)), 'the final stage only copies: nothing runs as root in it');
    const users = final.lines.filter((l) => /^USER\s/.test(l));
    assert.equal(users.length, 1);
    const [uid, gid] = (users[0] as string).split(/\s+/)[1]?.split(':') ?? [];
    assert.ok(Number(uid) > 0 && Number(gid) > 0 && /^\d+$/.test(uid ?? '') && /^\d+$/.test(gid ?? ''), `numeric non-root USER, got ${users[0]}`);
    assert.ok(final.lines.includes(`ENTRYPOINT ["node", "${entry}"]`), `runs ${entry}`);
    assert.ok(existsSync(join(ROOT, source)), `${source} exists`);
    if (entry !== source) assert.match(text, /tsconfig\.build\.json/, 'the image builds what it runs');
    // Every COPY from the build context names something that exists (so the build cannot fail on a missing path).
    for (const l of all.filter((x) => /^COPY\s/.test(x) && !x.includes('--from='))) {
      for (const src of l.split(/\s+/).slice(1, -1)) assert.ok(existsSync(join(ROOT, src)), `${file}: ${l}: ${src} does not exist`);
    }
    // The chart runs the image with the uid the image declares.
    assert.match(readRepoFile('charts/veloflux/templates/_helpers.tpl'), new RegExp(`runAsUser: ${uid}\\b`));
  });
}

test('.dockerignore keeps node_modules and .git out of the build context', () => {
  const lines = readRepoFile('.dockerignore').split('\n');
  for (const p of ['**/node_modules', '.git']) assert.ok(lines.includes(p), p);
  assert.ok(statSync(join(ROOT, 'package-lock.json')).isFile());
});

test('operator.watchNamespaces: a Role and RoleBinding per watched namespace with the operator\'s rules, no ClusterRole, the flag', async () => {
  const objects = await template(['--set', 'operator.watchNamespaces={shop,billing}'], 'veloflux', 'ops');
  assert.deepEqual(find(objects, 'ClusterRole'), [], 'no ClusterRole in namespaced mode');
  assert.deepEqual(find(objects, 'ClusterRoleBinding'), [], 'no ClusterRoleBinding in namespaced mode');
  const source = parse(readRepoFile('charts/veloflux/rbac/operator-clusterrole.yaml')) as { rules: unknown[] };
  for (const ns of ['shop', 'billing']) {
    const role = find(objects, 'Role', 'veloflux-operator').find((r) => r.metadata.namespace === ns);
    assert.ok(role, `a Role in ${ns}`);
    assert.deepEqual((role as unknown as { rules: unknown[] }).rules, source.rules, `Role in ${ns}: the operator's rules, as they are`);
    const binding = find(objects, 'RoleBinding', 'veloflux-operator').find((r) => r.metadata.namespace === ns) as unknown as { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] } | undefined;
    assert.ok(binding, `a RoleBinding in ${ns}`);
    assert.deepEqual(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'veloflux-operator' });
    assert.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'veloflux-operator', namespace: 'ops' }]);
  }
  // Every Role is in a watched namespace or is the leader-election Role in the release namespace.
  const where = find(objects, 'Role').map((r) => `${r.metadata.namespace}/${r.metadata.name}`).sort();
  assert.deepEqual(where, ['billing/veloflux-operator', 'ops/veloflux-operator-leader-election', 'shop/veloflux-operator']);
  const op = podSpec(one(objects, 'Deployment', 'veloflux-operator')).containers.find((c) => c.name === 'operator') as Container;
  assert.equal(arg(op, 'watch-namespaces'), 'shop,billing');

  // The default stays cluster-wide: a ClusterRole, no --watch-namespaces.
  const cluster = await template();
  assert.equal(find(cluster, 'ClusterRole').length, 1);
  const op0 = podSpec(one(cluster, 'Deployment', 'veloflux-operator')).containers.find((c) => c.name === 'operator') as Container;
  assert.equal(arg(op0, 'watch-namespaces'), undefined);

  // The schema refuses what is not a namespace name, and duplicates.
  for (const bad of ['operator.watchNamespaces={Shop}', 'operator.watchNamespaces={shop,shop}', 'operator.watchNamespaces={a_b}']) {
    const r = await helmRun(['template', 'veloflux', CHART, '--set', bad]);
    assert.notEqual(r.code, 0, `${bad} refused`);
    assert.match(r.stderr, /watchNamespaces/, `${bad}: the message names the value`);
  }
});

/** NOTES.txt as `helm install` prints it (a client-side dry run: no cluster). */
async function notes(args: string[] = []): Promise<string> {
  const out = await helm(['install', 'veloflux', CHART, '--namespace', 'veloflux', '--dry-run=client', ...args]);
  const at = out.indexOf('\nNOTES:\n');
  assert.ok(at >= 0, 'helm printed NOTES');
  return out.slice(at + '\nNOTES:\n'.length);
}

test('NOTES.txt: the next steps with this release\'s names (apply a FailoverPool, port-forward the admin port, veloflux status)', async () => {
  const text = await notes();
  for (const line of [
    'kubectl -n veloflux apply -f failoverpool.yaml',
    'kubectl -n veloflux get fp',
    'kubectl -n veloflux port-forward deploy/veloflux-proxy 9000:9000',
    'export VELOFLUX_ADMIN_TOKEN="$(kubectl -n veloflux get secret veloflux-admin-token -o jsonpath=\'{.data.token}\' | base64 -d)"',
    'veloflux status',
    'veloflux events',
    'kubectl -n veloflux logs deploy/veloflux-operator -f',
  ]) assert.ok(text.includes(line), `NOTES lacks: ${line}\n${text}`);
  assert.match(text, /spec\.proxySelector\.matchLabels is \{ veloflux\.io\/proxy: "true" \}/);
  assert.doesNotMatch(text, /<no value>|%!/, 'no unrendered value');
  // Its own names and ports follow the values; without a gateway there is nothing to port-forward.
  const custom = await notes(['--set', 'proxy.adminPort=9191', '--set', 'adminToken.existingSecret=my-token', '--set', 'operator.replicas=2']);
  assert.ok(custom.includes('port-forward deploy/veloflux-proxy 9000:9191'));
  assert.ok(custom.includes('get secret my-token '));
  assert.match(custom, /2 replicas, one leads/);
  const sidecar = await notes(['--set', 'proxy.enabled=false', '--set', 'sidecar.namespaces[0]=shop']);
  assert.doesNotMatch(sidecar, /port-forward/);
  assert.match(sidecar, /No gateway proxies \(proxy\.enabled=false\): add the proxy sidecar to your pods \(shop\)/);
});

test('operator PodDisruptionBudget only with a standby; images by tag or by digest', async () => {
  assert.equal(find(await template(), 'PodDisruptionBudget', 'veloflux-operator').length, 0, 'one replica: no PDB (it would block every drain)');
  const two = await template(['--set', 'operator.replicas=2']);
  const pdb = one(two, 'PodDisruptionBudget', 'veloflux-operator') as KubeObject & { spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } } };
  assert.equal(pdb.spec.maxUnavailable, 1);
  const opLabels = podLabels(one(two, 'Deployment', 'veloflux-operator'));
  for (const [k, v] of Object.entries(pdb.spec.selector.matchLabels)) assert.equal(opLabels[k], v, `the PDB selects the operator pods (${k})`);
  assert.notEqual(pdb.spec.selector.matchLabels['app.kubernetes.io/component'], 'proxy');

  const digest = `sha256:${'a1'.repeat(32)}`;
  const pinned = await template(['--set', `proxy.image.digest=${digest}`, '--set', 'operator.image.tag=9.9.9']);
  assert.equal((podSpec(one(pinned, 'Deployment', 'veloflux-proxy')).containers[0] as Container).image, `ghcr.io/veloflux/veloflux-proxy@${digest}`);
  assert.equal((podSpec(one(pinned, 'Deployment', 'veloflux-operator')).containers[0] as Container).image, 'ghcr.io/veloflux/veloflux-operator:9.9.9');
  const bad = await helmRun(['template', 'veloflux', CHART, '--set', 'proxy.image.digest=latest']);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /digest/);
});

for (const image of ['proxy', 'operator'] as const) {
  test(`images/${image}/Dockerfile: OCI labels in the final stage, version = ${image}/package.json`, () => {
    const st = stages(`images/${image}/Dockerfile`);
    const final = (st.at(-1) as { lines: string[] }).lines;
    const labels = final.filter((l) => /^LABEL\s/.test(l)).join(' ');
    for (const key of ['title', 'description', 'version', 'revision', 'created', 'licenses', 'vendor', 'base.name']) {
      assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${key.replace('.', '\\.')}=`), key);
    }
    assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.title="veloflux-${image}"`));
    const version = (JSON.parse(readRepoFile(`${image}/package.json`)) as { version: string }).version;
    assert.ok(final.includes(`ARG VERSION=${version}`), `ARG VERSION=${version} in the final stage`);
    assert.ok(final.includes('ARG NODE_VERSION'), 'NODE_VERSION re-declared for the base.name label');
  });
}
