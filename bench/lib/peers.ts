// The systems under test, each started the way a user would run it, on 127.0.0.1, in front of a primary backend and a
// backup backend. Every peer is configured for failover where it can be (nginx `backup`, HAProxy `backup` + checks,
// VeloFlux level 1), with 2 s connect/response timeouts, so throughput is measured with the failover machinery on.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, start, waitHttp, type Proc } from './proc.ts';
import { commandPath } from './tools.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BACKEND = join(REPO, 'bench/backend.ts');
const MINIMAL = join(REPO, 'bench/peers/minimal-undici.ts');
/** VeloFlux as its image runs it: the JavaScript build (npm run build), with the image's MALLOC_ARENA_MAX. */
export const VELOFLUX_MAIN = join(REPO, 'proxy/dist/main.js');

/** Builds proxy/dist from proxy/src (npm run build), so the bench measures the current sources. */
export function buildVeloflux(): void {
  execFileSync(process.execPath, [join(REPO, 'scripts/build.ts')], { stdio: 'inherit' });
}

/** Where `--baseline REV` built that commit's proxy (see buildBaseline), once it has. */
let baselineMain: string | undefined;
let baselineRev = '';

/** The baseline's main.js and short commit, when `--baseline` built one. */
export function baselineBuild(): { main: string; rev: string } | undefined {
  return baselineMain === undefined ? undefined : { main: baselineMain, rev: baselineRev };
}

/**
 * Builds the proxy of another commit (`npm run bench -- --baseline REV`) so a change is measured against what it
 * changed, in the same run and on the same machine state: the commit's tree is exported into a temp directory,
 * given this checkout's node_modules, and compiled as the image would be. Returns a cleanup function.
 */
export function buildBaseline(rev: string): () => void {
  const sha = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', `${rev}^{commit}`], { encoding: 'utf8' }).trim();
  const root = mkdtempSync(join(tmpdir(), `veloflux-baseline-${sha}-`));
  const archive = execFileSync('git', ['-C', REPO, 'archive', '--format=tar', sha], { maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', root], { input: archive });
  // This checkout's installed packages, except the workspace links (@veloflux/*): those point into the commit's own
  // packages/, so a baseline from before a change to packages/config is built and run against its own config code.
  const modules = join(root, 'node_modules');
  mkdirSync(join(modules, '@veloflux'), { recursive: true });
  for (const entry of readdirSync(join(REPO, 'node_modules'))) {
    if (entry !== '@veloflux') symlinkSync(join(REPO, 'node_modules', entry), join(modules, entry));
  }
  for (const name of readdirSync(join(REPO, 'node_modules/@veloflux'))) {
    const target = relative(REPO, realpathSync(join(REPO, 'node_modules/@veloflux', name)));
    if (existsSync(join(root, target))) symlinkSync(join(root, target), join(modules, '@veloflux', name), 'dir');
  }
  console.log(`baseline: building the proxy of ${sha} (${rev}) in ${root}`);
  execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'proxy/tsconfig.build.json')], { stdio: 'inherit' });
  baselineMain = join(root, 'proxy/dist/main.js');
  baselineRev = sha;
  PEER_LABEL.baseline = `VeloFlux @${sha}`;
  return () => rmSync(root, { recursive: true, force: true });
}

// `veloflux1` is VeloFlux held at one worker whatever the scenario asks (the both-cores scenario compares it with
// `veloflux` at two workers).
// `baseline` is VeloFlux built from another commit (--baseline).
// `hedged` is VeloFlux with engine v2's request-level settings (SPEC 10): per-try timeout auto with hedging and
// hold-down against flapping.
export type PeerKind = 'direct' | 'minimal' | 'veloflux' | 'veloflux1' | 'hedged' | 'baseline' | 'nginx' | 'haproxy';

export const PEER_LABEL: Record<PeerKind, string> = {
  direct: 'direct (no proxy)',
  minimal: 'minimal undici',
  veloflux: 'VeloFlux',
  veloflux1: 'VeloFlux 1 worker',
  hedged: 'VeloFlux hedged',
  baseline: 'VeloFlux baseline',
  nginx: 'nginx',
  haproxy: 'HAProxy',
};

export interface Backend {
  name: string;
  port: number;
  proc: Proc;
}

export async function startBackend(name: string, port: number, o: { dir: string; cpus?: string }): Promise<Backend> {
  const proc = start(`backend-${name}`, process.execPath, [BACKEND, '--port', String(port), '--name', name],
    { cpus: o.cpus, logDir: o.dir });
  await proc.waitForOutput(/listening/, 10_000);
  return { name, port, proc };
}

/**
 * The same backend served by nginx (one worker): several times cheaper per request than node:http, so on a 2-core
 * machine the core shared by the backend and the load generator stops being the ceiling (`npm run bench -- --backend nginx`).
 * Same 64-byte body and `x-served-by` header; /health answers 200 too.
 */
export async function startNginxBackend(name: string, port: number, o: { dir: string; cpus?: string }): Promise<Backend> {
  const dir = join(o.dir, `backend-${name}-${port}`);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, `# generated by bench/lib/peers.ts
daemon off;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 65s;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  server {
    listen 127.0.0.1:${port};
    default_type text/plain;
    location / {
      add_header x-served-by ${name} always;
      return 200 "${`served by ${name}`.padEnd(64, '.')}";
    }
  }
}
`);
  const proc = start(`backend-nginx-${name}`, commandPath('nginx') ?? 'nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')],
    { cpus: o.cpus, logDir: dir });
  await waitHttp(`http://127.0.0.1:${port}/health`, { timeoutMs: 10_000, proc });
  return { name, port, proc };
}

export interface Peer {
  kind: PeerKind;
  label: string;
  url: string;
  /** Undefined for `direct`. */
  proc?: Proc;
  /** VeloFlux: its admin API (token `bench-token`). */
  admin?: string;
  stop(): Promise<void>;
}

export interface PeerOptions {
  dir: string;
  primary: number;
  backup: number;
  /** taskset CPU list for the proxy; undefined = not pinned. */
  cpus?: string;
  /** Worker processes (VeloFlux, nginx) or threads (HAProxy). */
  workers: number;
  /** Extra node flags for VeloFlux (e.g. --cpu-prof). */
  nodeFlags?: string[];
}

export async function startPeer(kind: PeerKind, o: PeerOptions): Promise<Peer> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const dir = join(o.dir, `${kind}-${port}`);
  mkdirSync(dir, { recursive: true });
  const label = PEER_LABEL[kind];
  let proc: Proc;
  let ready: string = url;
  let adminUrl: string | undefined;
  switch (kind) {
    case 'direct':
      return { kind, label, url: `http://127.0.0.1:${o.primary}/`, stop: async () => {} };
    case 'minimal':
      proc = start(kind, process.execPath, [...(o.nodeFlags ?? []), MINIMAL, '--listen', `127.0.0.1:${port}`, '--upstream', `http://127.0.0.1:${o.primary}`],
        { cpus: o.cpus, logDir: dir });
      break;
    case 'veloflux':
    case 'veloflux1':
    case 'hedged':
    case 'baseline': {
      const admin = await freePort();
      const cfg = join(dir, 'config.yaml');
      const workers = kind === 'veloflux1' ? 1 : o.workers;
      writeFileSync(cfg, velofluxConfig(port, admin, { ...o, workers }, kind === 'hedged'));
      adminUrl = `http://127.0.0.1:${admin}`;
      const main = kind === 'baseline' ? baselineMain : VELOFLUX_MAIN;
      if (main === undefined) throw new Error(`no baseline build (${baselineRev || 'buildBaseline not called'})`);
      proc = start(kind, process.execPath, [...(o.nodeFlags ?? []), main, '--config', cfg, '--workers', String(workers)],
        { cpus: o.cpus, logDir: dir, env: { ...process.env, MALLOC_ARENA_MAX: '2', VELOFLUX_ADMIN_TOKEN: 'bench-token' } });
      ready = `http://127.0.0.1:${admin}/readyz`;
      break;
    }
    case 'nginx': {
      const conf = join(dir, 'nginx.conf');
      writeFileSync(conf, nginxConfig(port, dir, o));
      proc = start(kind, commandPath('nginx') ?? 'nginx', ['-p', dir, '-c', conf, '-e', join(dir, 'error.log')],
        { cpus: o.cpus, logDir: dir });
      break;
    }
    case 'haproxy': {
      const conf = join(dir, 'haproxy.cfg');
      writeFileSync(conf, haproxyConfig(port, o));
      proc = start(kind, commandPath('haproxy') ?? 'haproxy', ['-f', conf, '-db'], { cpus: o.cpus, logDir: dir });
      break;
    }
  }
  const p = proc;
  try {
    await waitHttp(ready, { timeoutMs: 20_000, proc: p });
    if (ready !== url) await waitHttp(url, { timeoutMs: 10_000, proc: p });
  } catch (err) {
    await p.stop();
    throw err;
  }
  return { kind, label, url, proc: p, ...(adminUrl ? { admin: adminUrl } : {}), stop: () => p.stop() };
}

// Health checks every 1 s with a 500 ms timeout, down after 2 failures, up after 2 successes: the same cadence as the
// HAProxy peer (`inter 1s fall 2 rise 2`). Connect and response-header timeouts 2 s, like nginx's and HAProxy's.
// recovery_interval 2s: traffic returns once the primary has been healthy for 2 s (about HAProxy's `rise 2`).
// `v2` (the hedged peer): pools[].retry { per_try_timeout: auto, hedge: true }, outlier_detection (3 consecutive
// gateway errors, which tries without an answer within per_try_timeout are, eject; 100%: the level has one backend)
// and failover.hold_down.
export function velofluxConfig(port: number, admin: number, o: PeerOptions, v2 = false): string {
  const hc = '{ path: "/health", interval: "1s", timeout: "500ms", expected_status: 200, unhealthy_threshold: 2, healthy_threshold: 2 }';
  return `# generated by bench/lib/peers.ts
listen: "127.0.0.1:${port}"
admin: { listen: "127.0.0.1:${admin}" }
dataplane: { workers: ${o.workers}, connect_timeout: "2s", header_timeout: "2s", idle_timeout: "60s", max_attempts: 3 }
pools:
  - name: "bench"
    algorithm: "failover"
    backends:
      - address: "127.0.0.1:${o.primary}"
        health_check: ${hc}
      - address: "127.0.0.1:${o.backup}"
        failover: true
        health_check: ${hc}
${v2 ? '    retry: { per_try_timeout: "auto", hedge: true }\n    outlier_detection: { consecutive_5xx: 5, consecutive_gateway_errors: 3, base_ejection: "2s", max_ejection: "10s", max_ejection_percent: 100 }\n' : ''}routes:
  - path_prefix: "/"
    pool: "bench"
failover:
  enabled: true
  strategy: "immediate"
  check_interval: "1s"
  recovery_interval: "2s"
${v2 ? '  hold_down: { min_dwell: "5s", flap_threshold: 3, flap_window: "2m", max_hold: "2m" }\n' : ''}`;
}

export function nginxConfig(port: number, dir: string, o: PeerOptions): string {
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp, { recursive: true });
  return `# generated by bench/lib/peers.ts
daemon off;
worker_processes ${o.workers};
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  upstream app {
    server 127.0.0.1:${o.primary} max_fails=1 fail_timeout=10s;
    server 127.0.0.1:${o.backup} max_fails=1 fail_timeout=10s backup;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_connect_timeout 2s;
      proxy_send_timeout 2s;
      proxy_read_timeout 2s;
      proxy_next_upstream error timeout;
    }
  }
}
`;
}

export function haproxyConfig(port: number, o: PeerOptions): string {
  return `# generated by bench/lib/peers.ts
global
  nbthread ${o.workers}
  maxconn 4096
defaults
  mode http
  option redispatch
  retries 2
  timeout connect 2s
  timeout server 2s
  timeout client 30s
  timeout http-keep-alive 60s
frontend fe
  bind 127.0.0.1:${port}
  default_backend app
backend app
  option httpchk GET /health
  server primary 127.0.0.1:${o.primary} check inter 1s fall 2 rise 2
  server backup 127.0.0.1:${o.backup} check inter 1s fall 2 rise 2 backup
`;
}
