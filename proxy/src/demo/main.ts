// npm run demo: failover and failback, live, on this machine.
// Starts three backends on 127.0.0.1 (a primary and two cascading backups), the real proxy process on a
// built-in config, steady traffic through it, then takes the primary down (and later the first backup) and
// brings them back. One line per second says who served and how many requests failed.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { KillableServer } from './killable.ts';

const NAMES = ['primary', 'backup-1', 'backup-2'] as const;
type Name = (typeof NAMES)[number];

/** The script: at second `at`, do `what` to a backend. */
const SCRIPT: { at: number; name: Name; what: 'kill' | 'revive' }[] = [
  { at: 4, name: 'primary', what: 'kill' },
  { at: 9, name: 'backup-1', what: 'kill' },
  { at: 13, name: 'primary', what: 'revive' },
  { at: 19, name: 'backup-1', what: 'revive' },
];
const SECONDS = 24;
const CLIENTS = 4;
/** Per client: a pause between requests keeps the demo light (about 400 req/s in all). */
const PAUSE_MS = 10;

/** A demo backend: answers its name (and "ok" on /health); dies and comes back on the same port. */
class Backend extends KillableServer {
  readonly name: Name;

  constructor(name: Name) {
    super((req, res) => {
      res.setHeader('content-type', 'text/plain');
      res.end(req.url === '/health' ? 'ok' : name);
    });
    this.name = name;
  }
}

function configYaml(backends: Backend[]): string {
  const hc = '{ path: "/health", interval: "500ms", timeout: "250ms", unhealthy_threshold: 2, healthy_threshold: 2 }';
  return `# VeloFlux demo config (written by npm run demo)
listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:0" }
pools:
  - name: "demo-pool"
    backends:
${backends.map((b, level) => `      - { address: "127.0.0.1:${b.port}", failover_level: ${level}, health_check: ${hc} }`).join('\n')}
routes:
  - path_prefix: "/"
    pool: "demo-pool"
failover:
  strategy: "immediate"
  recovery_interval: "3s"
`;
}

function pad(s: string | number, n: number): string {
  return String(s).padStart(n);
}

async function main(): Promise<void> {
  const backends = NAMES.map((n) => new Backend(n));
  for (const b of backends) await b.listen();
  const dir = await mkdtemp(join(tmpdir(), 'veloflux-demo-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, configYaml(backends));

  const main = fileURLToPath(new URL('../main.ts', import.meta.url));
  const proxy = spawn(process.execPath, [main, '--config', file], { stdio: ['ignore', 'pipe', 'inherit'] });
  const notes: string[] = [];
  let level = 0;
  let port = 0;
  const started = new Promise<void>((resolve, reject) => {
    let partial = '';
    proxy.stdout.on('data', (chunk: Buffer) => {
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        let j: { msg?: string; listen?: string; from?: number; to?: number; reason?: string; backend?: string; durationMs?: number };
        try { j = JSON.parse(line); } catch { continue; }
        if (j.msg === 'veloflux proxy started' && j.listen) { port = Number(j.listen.split(':').pop()); resolve(); }
        const who = (addr?: string): string => backends.find((b) => addr?.endsWith(`:${b.port}`))?.name ?? addr ?? '?';
        if (j.msg?.startsWith('failover')) {
          if (j.to !== undefined) level = j.to;
          notes.push(`proxy: ${j.msg}${j.from !== undefined ? ` (level ${j.from} -> ${j.to})` : ''}${j.reason ? `: ${j.reason}` : ''}${j.durationMs !== undefined ? `, after ${(j.durationMs / 1000).toFixed(1)}s` : ''}`);
        } else if (j.msg === 'backend down' || j.msg === 'backend up') {
          notes.push(`proxy: ${who(j.backend)} is ${j.msg === 'backend down' ? 'down' : 'up'}`);
        }
      }
    });
    proxy.once('exit', (code) => reject(new Error(`the proxy exited with ${code} before it started`)));
  });
  await started;

  console.log(`VeloFlux demo: proxy on http://127.0.0.1:${port}, config ${file}`);
  console.log(`backends: ${backends.map((b, i) => `${b.name} (level ${i}) :${b.port}`).join(', ')}`);
  console.log(`script: ${SCRIPT.map((s) => `${s.at}s ${s.what} ${s.name}`).join(', ')}; failback after recovery_interval 3s\n`);
  console.log(`   t   ${NAMES.map((n) => pad(n, 9)).join(' ')}   failed  level`);

  const counts = new Map<string, number>();
  let failed = 0;
  let total = 0;
  let failedTotal = 0;
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: CLIENTS });
  const t0 = Date.now();
  const deadline = t0 + SECONDS * 1000;
  const client = async (): Promise<void> => {
    while (Date.now() < deadline) {
      try {
        const res = await request(`http://127.0.0.1:${port}/`, { dispatcher: agent, headersTimeout: 5000, bodyTimeout: 5000 });
        const body = await res.body.text();
        if (res.statusCode === 200) counts.set(body, (counts.get(body) ?? 0) + 1);
        else failed++;
      } catch {
        failed++;
      }
      total++;
      await sleep(PAUSE_MS);
    }
  };
  const clients = Array.from({ length: CLIENTS }, client);

  const script = [...SCRIPT];
  for (let second = 1; second <= SECONDS; second++) {
    await sleep(Math.max(0, t0 + second * 1000 - Date.now()));
    const row = `${pad(second, 4)}s  ${NAMES.map((n) => pad(counts.get(n) ?? 0, 9)).join(' ')}   ${pad(failed, 6)}  ${pad(level, 5)}`;
    console.log(row);
    for (const n of notes.splice(0)) console.log(`        ${n}`);
    failedTotal += failed;
    counts.clear();
    failed = 0;
    while (script[0] && script[0].at === second) {
      const step = script.shift() as (typeof SCRIPT)[number];
      const b = backends.find((x) => x.name === step.name) as Backend;
      if (step.what === 'kill') await b.kill();
      else await b.listen();
      console.log(`        >>> ${step.what === 'kill' ? 'killed' : 'restarted'} ${step.name}`);
    }
  }
  await Promise.all(clients);
  await agent.close();
  proxy.kill('SIGTERM');
  await new Promise((resolve) => proxy.once('exit', resolve));
  for (const b of backends) await b.kill();
  await rm(dir, { recursive: true, force: true });
  console.log(`\n${total} requests, ${failedTotal} failed. Every request the backups could serve was served.`);
  process.exitCode = failedTotal === 0 ? 0 : 1;
}

main().catch((err: Error) => {
  console.error(`demo failed: ${err.message}`);
  process.exit(1);
});
