// A real Kubernetes control plane for the tests: etcd and kube-apiserver, built from Go modules by
// build.sh, started on free loopback ports in a temporary directory, and torn down with it.
//
//   const cp = await startControlPlane();  // builds the binaries first if the cache has none
//   ... cp.server, cp.caData, cp.adminToken, cp.userToken, cp.kubeconfigPath ...
//   await cp.stop();                       // kills only the two process groups it started
//
// Authentication is a static token file with two users: an admin in system:masters and an
// unprivileged user in no group but the implicit system:authenticated, so RBAC decides what the
// second one may do. Service accounts work too (generated signing key), so a test can also mint a
// token with the TokenRequest API. No kube-controller-manager runs: nothing garbage-collects, no
// namespace finalizes, no service account is created for you.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Longest wait for kube-apiserver's /readyz, in milliseconds; a warm start takes a few seconds. */
export const READY_TIMEOUT_MS = 90_000;
/** How long a stopped process gets between SIGTERM and SIGKILL, in milliseconds. */
export const STOP_GRACE_MS = 5_000;

/** Names the JSON file (a ClusterInfo) that describes the control plane of this test run. */
export const CLUSTER_ENV = 'VELOFLUX_CLUSTER';

export const ADMIN_USER = 'veloflux-admin';
export const UNPRIVILEGED_USER = 'veloflux-user';

/** What a test needs to reach the control plane; also the JSON that the global setup hands over. */
export interface ClusterInfo {
  /** https://127.0.0.1:<port> */
  server: string;
  /** base64 of the PEM serving certificate (self-signed, for 127.0.0.1 and localhost) */
  caData: string;
  adminToken: string;
  /** a token for UNPRIVILEGED_USER, who has only what RBAC grants to system:authenticated */
  userToken: string;
  /** kubeconfig file for the admin token */
  kubeconfigPath: string;
  /** temporary directory holding data, keys, logs; removed by stop() */
  dir: string;
  /** milliseconds from spawning etcd to kube-apiserver answering /readyz ok */
  startMs: number;
}

export interface ControlPlane extends ClusterInfo {
  stop(): Promise<void>;
}

export interface StartOptions {
  /** directory with the kube-apiserver and etcd binaries; default: build.sh's cache (built if missing) */
  binDir?: string;
  /** progress lines; default: stderr */
  log?: (line: string) => void;
}

/**
 * Runs build.sh, which builds the binaries unless its cache already has them, and returns the bin
 * directory. Build progress streams to stderr.
 */
export function ensureBinaries(): string {
  const result = spawnSync('bash', [join(here, 'build.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`test/cluster/build.sh failed (exit ${result.status ?? result.signal}); see its output above`);
  }
  const bin = result.stdout.trim().split('\n').pop();
  if (!bin) throw new Error('test/cluster/build.sh printed no bin directory');
  return bin;
}

/** A kubeconfig (JSON, which every kubeconfig reader accepts as YAML) that authenticates with `token`. */
export function kubeconfigFor(server: string, caData: string, token: string, user: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'veloflux-test', cluster: { server, 'certificate-authority-data': caData } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'veloflux-test', user } }],
      'current-context': user,
    },
    null,
    2,
  );
}

export async function startControlPlane(options: StartOptions = {}): Promise<ControlPlane> {
  const log = options.log ?? ((line: string) => process.stderr.write(`[cluster] ${line}\n`));
  const binDir = options.binDir ?? ensureBinaries();
  // Free ports are found by binding port 0 and releasing it, so another process can take one in
  // between; a start that fails because an address is in use is retried with new ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(binDir, log);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof PortInUseError)) throw err;
      log(`${err.message}; retrying with other ports`);
    }
  }
}

class PortInUseError extends Error {}

/** Processes this module started and has not yet stopped, so an exiting runner can still kill them. */
const live = new Set<{ groups: ChildProcess[]; dir: string }>();
let exitHooksInstalled = false;

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL the process groups and remove the directories.
  // Test data is disposable, so an abrupt end does not need a graceful etcd shutdown.
  const killAllNow = (): void => {
    for (const entry of live) {
      for (const child of entry.groups) killGroup(child, 'SIGKILL');
      rmSync(entry.dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.on('exit', killAllNow);
  // The children run in their own process groups, so a Ctrl-C at the terminal does not reach them.
  // Clean up, then leave the signal to whoever else handles it (node's test runner does); if nobody
  // does, re-raise it so the process ends the way it would have without this handler.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllNow();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

async function startOnce(binDir: string, log: (line: string) => void): Promise<ControlPlane> {
  installExitHooks();
  const t0 = performance.now();
  const dir = mkdtempSync(join(tmpdir(), 'veloflux-cluster-'));
  const entry = { groups: [] as ChildProcess[], dir };
  live.add(entry);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // apiserver first, so it does not log a storm of etcd connection errors on the way down
    for (const child of [...entry.groups].reverse()) await stopGroup(child);
    rmSync(dir, { recursive: true, force: true });
    live.delete(entry);
  };

  try {
    const [etcdClientPort, etcdPeerPort, apiPort] = await freePorts(3);
    const server = `https://127.0.0.1:${apiPort}`;

    // Serving certificate: self-signed, so it is its own trust anchor for the clients.
    const certFile = join(dir, 'apiserver.crt');
    const keyFile = join(dir, 'apiserver.key');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
        '-subj', '/CN=veloflux-test-apiserver', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout', keyFile, '-out', certFile],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const caPem = readFileSync(certFile, 'utf8');

    // Service-account signing key: the apiserver signs tokens with the private key and verifies them
    // with the public one.
    const sa = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const saKeyFile = join(dir, 'sa.key');
    const saPubFile = join(dir, 'sa.pub');
    writeFileSync(saKeyFile, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(saPubFile, sa.publicKey.export({ type: 'spki', format: 'pem' }));

    // Static tokens, one per line: token,user,uid,"group1,group2"
    const adminToken = randomBytes(24).toString('hex');
    const userToken = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'tokens.csv');
    writeFileSync(
      tokenFile,
      `${adminToken},${ADMIN_USER},${ADMIN_USER},"system:masters"\n${userToken},${UNPRIVILEGED_USER},${UNPRIVILEGED_USER}\n`,
      { mode: 0o600 },
    );

    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const peerUrl = `http://127.0.0.1:${etcdPeerPort}`;
    entry.groups.push(
      launch(join(binDir, 'etcd'), join(dir, 'etcd.log'), [
        '--name=veloflux-test',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=veloflux-test=${peerUrl}`,
        '--initial-cluster-state=new',
        // test data is thrown away: skipping fsync makes every write, and so the tests, faster
        '--unsafe-no-fsync',
        '--log-level=warn',
      ]),
    );
    entry.groups.push(
      launch(join(binDir, 'kube-apiserver'), join(dir, 'kube-apiserver.log'), [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dir, 'certs')}`,
        `--tls-cert-file=${certFile}`,
        `--tls-private-key-file=${keyFile}`,
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${saPubFile}`,
        `--service-account-signing-key-file=${saKeyFile}`,
        '--service-cluster-ip-range=10.96.0.0/16',
        `--token-auth-file=${tokenFile}`,
        '--authorization-mode=RBAC',
        // no controller-manager creates the default service account, so Pods could not be admitted
        '--disable-admission-plugins=ServiceAccount',
        '--allow-privileged=true',
      ]),
    );

    await waitReady(server, caPem, adminToken, entry.groups, dir);
    const startMs = Math.round(performance.now() - t0);
    const caData = Buffer.from(caPem).toString('base64');
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigFor(server, caData, adminToken, ADMIN_USER), { mode: 0o600 });
    log(`control plane ready at ${server} in ${(startMs / 1000).toFixed(1)}s (etcd ${etcdUrl}, data ${dir})`);
    return { server, caData, adminToken, userToken, kubeconfigPath, dir, startMs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Starts `bin` as the leader of a new process group, with its output in `logFile`. */
function launch(bin: string, logFile: string, args: string[]): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(bin, args, { detached: true, stdio: ['ignore', fd, fd] });
    // Keep the runner's event loop free of these handles; teardown is explicit.
    child.unref();
    child.on('error', () => {}); // surfaced through exitCode checks and the log tail
    return child;
  } finally {
    closeSync(fd);
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // negative pid: the group this module created, nothing else
  } catch {
    // already gone
  }
}

async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.ref(); // launch() unref'd it; the exit event must keep the loop alive until it arrives
  killGroup(child, 'SIGTERM');
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

async function freePorts(count: number): Promise<number[]> {
  // hold all listeners open at once so the OS hands out distinct ports
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<Server>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      }),
    ),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

async function waitReady(server: string, ca: string, token: string, children: ChildProcess[], dir: string): Promise<void> {
  const deadline = performance.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  for (;;) {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const name = child.spawnfile.split('/').pop() ?? 'process';
        const tail = readTail(join(dir, `${name}.log`));
        const message = `${name} exited (${child.exitCode ?? child.signalCode}) before the control plane was ready:\n${tail}`;
        throw /address already in use/.test(tail) ? new PortInUseError(`${name}: address already in use`) : new Error(message);
      }
    }
    last = await readyz(server, ca, token);
    if (last === 'ok') return;
    if (performance.now() > deadline) {
      throw new Error(
        `kube-apiserver at ${server} was not ready within ${READY_TIMEOUT_MS / 1000}s; last /readyz: ${last}\n` +
          readTail(join(dir, 'kube-apiserver.log')),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100)); // poll interval, not a wait for time to pass
  }
}

function readyz(server: string, ca: string, token: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request(`${server}/readyz`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 && body.trim() === 'ok' ? 'ok' : `${res.statusCode}: ${body.trim().slice(-300)}`));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(err.message));
    req.end();
  });
}

function readTail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return `(no ${file})`;
  }
}
