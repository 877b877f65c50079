import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { runCli, startProxyProcess, writeConfig } from './helpers/process.ts';

test('an invalid config exits 2 and lists every problem with its path and line, without a stack trace', async () => {
  const file = await writeConfig('pools:\n  - name: a\n    backends:\n      - address: "x:80"\n        health_check: { timeout: "2" }\nroutes: [{ pool: b }]\nfailover: { strategy: sometimes }\n');
  const r = await runCli(['--config', file]);
  assert.equal(r.code, 2);
  assert.equal(r.stdout, '');
  assert.deepEqual(r.stderr.trim().split('\n'), [
    `veloflux-proxy: ${file} is invalid (2 problems):`,
    `${file}:5: pools[0].backends[0].health_check.timeout: must be a duration like "2s" (units ms, s, m, h), got "2"`,
    `${file}:7: failover.strategy: must be one of "immediate", "graceful", "delayed", got "sometimes"`,
  ]);
});

test('--check says valid with a summary; a missing file and a bad flag are clear errors', async () => {
  const file = await writeConfig('pools:\n  - name: a\n    backends: [{ address: "x:80" }]\nroutes: [{ pool: a }]\n');
  const ok = await runCli(['--config', file, '--check']);
  assert.equal(ok.code, 0);
  assert.match(ok.stderr, /: valid \(1 pool, 1 backend, 1 route; version [0-9a-f]{16}\)/);
  const missing = await runCli(['--config', '/nonexistent/veloflux.yaml']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /\(file\): cannot read \/nonexistent\/veloflux.yaml: no such file/);
  const flag = await runCli(['--config', file, '--workers', 'many']);
  assert.equal(flag.code, 2);
  assert.match(flag.stderr, /--workers must be a whole number from 1 to 256 or "auto", got "many"/);
  for (const r of [missing, flag]) assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('SIGTERM: stops accepting, finishes the request in flight, exits 0', async (t) => {
  const [b] = await startBackends('b') as [TestBackend];
  t.after(() => b.kill());
  b.handler = (req, res) => {
    if (req.url !== '/slow') return false;
    setTimeout(() => res.end('finished'), 700);
    return true;
  };
  const p = await startProxyProcess(`pools:\n  - name: a\n    backends: [{ address: "${b.address}" }]\nroutes: [{ pool: a }]\n`);
  t.after(() => { if (p.child.exitCode === null) p.child.kill('SIGKILL'); });
  const inFlight = request(`http://127.0.0.1:${p.data}/slow`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }));
  await sleep(200);
  p.child.kill('SIGTERM');
  const res = await inFlight;
  assert.deepEqual(res, { status: 200, body: 'finished' });
  assert.equal(await p.exited, 0);
  await assert.rejects(request(`http://127.0.0.1:${p.data}/`), /ECONNREFUSED/);
});

test('--workers 2: both workers serve, switch levels together, and probes are not multiplied', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  t.after(async () => { await primary.kill(); await backup.kill(); });
  let probes = 0;
  const hc = '{ path: "/probe", interval: "200ms", timeout: "100ms" }';
  for (const b of [primary, backup]) {
    b.handler = (req, res) => {
      if (req.url === '/probe') { if (b === primary) probes++; res.end('ok'); return true; }
      return false;
    };
  }
  const p = await startProxyProcess(`pools:\n  - name: a\n    backends:\n      - { address: "${primary.address}", health_check: ${hc} }\n      - { address: "${backup.address}", failover: true, health_check: ${hc} }\nroutes: [{ pool: a }]\nfailover: { recovery_interval: "1s" }\n`, ['--workers', '2']);
  t.after(async () => { if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; } });

  // New connections are spread over the workers; all must agree on the level.
  const fresh = async (): Promise<string> => {
    const agent = new Agent({ pipelining: 0 });
    const r = await request(`http://127.0.0.1:${p.data}/who`, { dispatcher: agent });
    const body = await r.body.text();
    await agent.close();
    return body;
  };
  const before = new Set<string>();
  for (let i = 0; i < 8; i++) before.add(await fresh());
  assert.deepEqual([...before], ['primary']);

  const start = probes;
  await sleep(1000);
  const perSecond = probes - start;
  // One prober at a 200ms interval (±10% jitter) makes about 5 probes a second; two would make about 10.
  assert.ok(perSecond >= 3 && perSecond <= 7, `probes in 1s: ${perSecond}`);

  await primary.kill();
  // Fail over: wait until a fresh connection is served by the backup, then every worker must say the same.
  const deadline = Date.now() + 5000;
  while ((await fresh()) !== 'backup') {
    if (Date.now() > deadline) throw new Error('no failover within 5s');
    await sleep(50);
  }
  const after = new Set<string>();
  for (let i = 0; i < 8; i++) after.add(await fresh());
  assert.deepEqual([...after], ['backup']);
  const lines = p.stdout.filter((l) => l.includes('"msg":"failover activated"'));
  assert.equal(lines.length, 1, 'one failover, declared once by the one controller');
});

test('--workers 2: a config PUT reaches every worker, and /metrics adds up the requests of all workers', async (t) => {
  const [a, b] = await startBackends('a', 'b') as [TestBackend, TestBackend];
  t.after(async () => { await a.kill(); await b.kill(); });
  const token = 'cluster-token-1';
  const head = 'listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0" }\n';
  const body = (pool: string, addr: string) => `pools:\n  - name: ${pool}\n    backends: [{ address: "${addr}", health_check: { interval: "300ms", timeout: "100ms" } }]\nroutes: [{ pool: ${pool} }]\n`;
  const p = await startProxyProcess(body('first', a.address), ['--workers', '2'], 15_000, { VELOFLUX_ADMIN_TOKEN: token });
  t.after(async () => { if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; } });
  const fresh = async (): Promise<string> => {
    const agent = new Agent({ pipelining: 0 });
    const r = await request(`http://127.0.0.1:${p.data}/`, { dispatcher: agent });
    const text = await r.body.text();
    await agent.close();
    return text;
  };
  for (let i = 0; i < 10; i++) assert.equal(await fresh(), 'a');
  const put = await request(`http://127.0.0.1:${p.admin}/api/v1/config`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' }, body: head + body('second', b.address) });
  assert.equal(put.statusCode, 200, await put.body.text());
  // Config and routing reach the workers over IPC right after the PUT answers; allow that hop.
  const deadline = Date.now() + 3000;
  const seen = new Set<string>();
  while (Date.now() < deadline) {
    seen.clear();
    for (let i = 0; i < 10; i++) seen.add(await fresh());
    if (seen.size === 1 && seen.has('b')) break;
    await sleep(50);
  }
  assert.deepEqual([...seen], ['b'], 'every worker serves the new config');
  const metrics = await (await request(`http://127.0.0.1:${p.admin}/metrics`)).body.text();
  const count = (pool: string, addr: string): number => Number(new RegExp(`veloflux_requests_total\\{pool="${pool}",backend="${addr.replace(/\./g, '\\.')}",code="2xx"\\} (\\d+)`).exec(metrics)?.[1] ?? -1);
  assert.equal(count('second', b.address) >= 10, true, metrics.slice(0, 2000));
  assert.match(metrics, /veloflux_failover_active\{pool="second"\} 0/);
  assert.doesNotMatch(metrics, /pool="first"/, 'label sets of the removed pool are gone');
});

test('the production build (npm run build: JavaScript, no type stripping at run time) compiles and serves', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { rm } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const root = fileURLToPath(new URL('../../', import.meta.url));
  // Exactly what `npm run build` writes (proxy/dist, git-ignored, with the workspace packages it imports compiled into
  // proxy/dist/node_modules), run with type stripping off: the image loads no TypeScript.
  const out = join(root, 'proxy/dist');
  await rm(out, { recursive: true, force: true });
  execFileSync(process.execPath, [join(root, 'scripts/build.ts')], { stdio: 'pipe' });
  const [b] = await startBackends('built') as [TestBackend];
  t.after(() => b.kill());
  const file = await writeConfig(`listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0" }\npools:\n  - name: a\n    backends: [{ address: "${b.address}" }]\nroutes: [{ pool: a }]\n`);
  const { spawn } = await import('node:child_process');
  const child = spawn(process.execPath, ['--no-experimental-strip-types', join(out, 'main.js'), '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /"listen":"[^"]*:(\d+)"[^\n]*"msg":"veloflux proxy started"/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
  });
  const res = await request(`http://127.0.0.1:${port}/`);
  assert.deepEqual([res.statusCode, await res.body.text()], [200, 'built']);
  child.kill('SIGTERM');
  assert.equal(await new Promise((r) => child.once('exit', r)), 0);
});
