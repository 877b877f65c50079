// The access log (SPEC 11) through a real proxy process with real backends: JSON and combined lines with every
// field, 499 for a client that left, a rescued request, the trace id of a `traceparent` the backend gets untouched,
// sampling, rotation by reopen on SIGHUP with data-plane workers, a bounded queue that drops and counts, hostile
// header values that cannot break a line, and config errors that name the field.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { mkdtemp, readFile, rename, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as h2connect, constants as h2constants } from 'node:http2';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { loadConfigText } from '@veloflux/config/load';
import { AccessLog } from '../src/dataplane/access-log.ts';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { startProxyProcess } from './helpers/process.ts';
import type { ProxyProcess } from './helpers/process.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE}-00f067aa0ba902b7-01`;
const WARMUP = '/warmup';

async function dir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'veloflux-access-'));
}

function pool(primary: TestBackend, backup: TestBackend): string {
  const hc = '{ interval: "200ms", timeout: "100ms" }';
  return `pools:
  - name: app
    backends:
      - { address: "${primary.address}", health_check: ${hc} }
      - { address: "${backup.address}", failover: true, health_check: ${hc} }
routes: [{ pool: app }]
# A backup whose first probe answers before the primary's may take the pool at start: it comes back quickly.
failover: { recovery_interval: "300ms" }
`;
}

async function start(t: { after: (fn: () => Promise<void>) => void }, accessLog: string, args: string[] = []): Promise<{ p: ProxyProcess; primary: TestBackend; backup: TestBackend; url: string }> {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await startProxyProcess(`${pool(primary, backup)}access_log: ${accessLog}\n`, args);
  t.after(async () => {
    if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; }
    await primary.kill();
    await backup.kill();
  });
  // Both backends probed up and the routing state in every worker before the test's requests; the warm-up
  // requests are logged too, and the tests leave them out (WARMUP).
  const deadline = Date.now() + 10_000;
  for (let inARow = 0; inARow < 5;) {
    inARow = (await get(`http://127.0.0.1:${p.data}`, WARMUP)).body === 'primary' ? inARow + 1 : 0;
    if (Date.now() > deadline) throw new Error('proxy not serving from the primary');
    if (inARow === 0) await sleep(50);
  }
  return { p, primary, backup, url: `http://127.0.0.1:${p.data}` };
}

/** The lines of `file` but the warm-up requests', once there are `atLeast` (or after `ms`). */
async function lines(file: string, atLeast: number, ms = 5000): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const got = text.split('\n').filter((l) => l !== '' && !l.includes(`"path":"${WARMUP}"`));
    if (got.length >= atLeast || Date.now() > deadline) return got;
    await sleep(50);
  }
}

async function get(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const r = await request(`${url}${path}`, { headers });
  return { status: r.statusCode, body: await r.body.text() };
}

test('json to a file: every field; a rescued request; 404; the trace id of a traceparent the backend gets untouched', async (t) => {
  const d = await dir();
  const file = join(d, 'access.log');
  const { url, primary, backup } = await start(t, `{ enabled: true, format: json, path: "${file}" }`);
  primary.handler = (req, _res) => { if (req.url === '/flaky') { req.socket.destroy(); return true; } return false; };
  assert.deepEqual(await get(url, '/hello?token=secret-in-query', { traceparent: TRACEPARENT, 'user-agent': 'test-agent/1', referer: 'http://ref.example/' }), { status: 200, body: 'primary' });
  assert.equal(primary.seen.at(-1)?.headers.traceparent, TRACEPARENT, 'traceparent forwarded untouched');
  assert.deepEqual(await get(url, '/flaky'), { status: 200, body: 'backup' });
  assert.equal(backup.seen.at(-1)?.url, '/flaky');
  const got = (await lines(file, 2)).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(got.length, 2, JSON.stringify(got));
  const [hello, flaky] = got as [Record<string, unknown>, Record<string, unknown>];
  assert.deepEqual(Object.keys(hello), ['time', 'client', 'method', 'host', 'path', 'protocol', 'status', 'bytes', 'duration_ms', 'pool', 'level', 'backend', 'attempts', 'rescued', 'hedged', 'trace_id', 'user_agent', 'referer']);
  assert.match(String(hello.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(typeof hello.duration_ms, 'number');
  assert.deepEqual({ ...hello, time: undefined, duration_ms: undefined }, {
    time: undefined, client: '127.0.0.1', method: 'GET', host: new URL(url).host, path: '/hello', protocol: 'HTTP/1.1', status: 200, bytes: 7,
    duration_ms: undefined, pool: 'app', level: 0, backend: primary.address, attempts: 1, rescued: false, hedged: false, trace_id: TRACE,
    user_agent: 'test-agent/1', referer: 'http://ref.example/',
  });
  assert.deepEqual([flaky.status, flaky.level, flaky.backend, flaky.attempts, flaky.rescued, flaky.trace_id, flaky.bytes], [200, 1, backup.address, 2, true, null, 6], JSON.stringify(primary.seen.map((s) => s.url)));
  // The query string is not logged (it often carries tokens).
  assert.ok(!(await readFile(file, 'utf8')).includes('secret-in-query'));

  // 404 (no route) and a traceparent that is not one (logged as null, never echoed).
  const r = await request(`${url}/x`, { headers: { host: 'nothing.test', traceparent: 'garbage"}\\' } }).catch(() => undefined);
  assert.ok(r);
  void r.body.text();
});

test('hedged: a request whose first try stalls gets a hedged try (pools[].retry.hedge), and its line says hedged: true', async (t) => {
  const d = await dir();
  const file = join(d, 'access.log');
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const hc = '{ interval: "200ms", timeout: "100ms" }';
  const p = await startProxyProcess(`pools:
  - name: app
    backends:
      - { address: "${primary.address}", health_check: ${hc} }
      - { address: "${backup.address}", failover: true, health_check: ${hc} }
    retry: { per_try_timeout: "100ms", hedge: true }
routes: [{ pool: app }]
dataplane: { header_timeout: "3s" }
failover: { recovery_interval: "300ms" }
access_log: { enabled: true, path: "${file}" }
`);
  t.after(async () => {
    if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; }
    await primary.kill();
    await backup.kill();
  });
  const url = `http://127.0.0.1:${p.data}`;
  const deadline = Date.now() + 10_000;
  while ((await get(url, WARMUP)).body !== 'primary') { if (Date.now() > deadline) throw new Error('not serving'); await sleep(50); }
  // The primary stalls on /slow (answers after 1 s): the hedge on the backup answers first.
  primary.handler = (req, res) => { if (req.url !== '/slow') return false; setTimeout(() => res.end('late'), 1000); return true; };
  assert.deepEqual(await get(url, '/slow'), { status: 200, body: 'backup' });
  assert.deepEqual(await get(url, '/fast'), { status: 200, body: 'primary' });
  const got = (await lines(file, 2)).map((l) => JSON.parse(l) as Record<string, unknown>);
  const slow = got.find((l) => l.path === '/slow');
  const fast = got.find((l) => l.path === '/fast');
  assert.ok(slow && fast, JSON.stringify(got));
  assert.deepEqual([slow.hedged, slow.backend, slow.level, slow.status], [true, backup.address, 1, 200]);
  assert.deepEqual([fast.hedged, fast.backend, fast.attempts], [false, primary.address, 1]);
});

test('499: a client that leaves before the answer is logged as 499, counted against no backend', async (t) => {
  const d = await dir();
  const file = join(d, 'access.log');
  const { url, primary } = await start(t, `{ enabled: true, path: "${file}" }`);
  primary.handler = (req) => req.url === '/slow';
  const ac = new AbortController();
  const pending = request(`${url}/slow`, { signal: ac.signal }).catch((e: Error) => e);
  await sleep(300);
  ac.abort();
  await pending;
  const [line] = (await lines(file, 1)).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(line);
  assert.deepEqual([line.status, line.path, line.backend, line.bytes, line.rescued], [499, '/slow', primary.address, 0, false]);
});

test('499 over HTTP/2: a client whose connection is gone before the answer is logged (its address, HTTP/2.0) by a data plane that keeps serving', async (t) => {
  const d = await dir();
  const file = join(d, 'access.log');
  const { url, primary } = await start(t, `{ enabled: true, path: "${file}" }`);
  primary.handler = (req) => req.url === '/slow';
  for (const how of ['rst', 'connection'] as const) {
    const s = h2connect(url);
    s.on('error', () => {});
    const r = s.request({ ':path': '/slow' });
    r.on('error', () => {});
    await sleep(300);
    // The line is written once the exchange ends, after the stream (and, for the second, the session) is gone.
    if (how === 'rst') r.close(h2constants.NGHTTP2_CANCEL);
    else s.destroy();
    await sleep(100);
    s.destroy();
  }
  const logged = (await lines(file, 2)).map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(logged.map((l) => [l.status, l.path, l.protocol, l.client]), [[499, '/slow', 'HTTP/2.0', '127.0.0.1'], [499, '/slow', 'HTTP/2.0', '127.0.0.1']]);
  assert.equal((await get(url, '/after')).body, 'primary', 'the data plane still serves');
});

test('combined to stdout: one line per request in the combined format, VeloFlux fields as key=value, hostile values escaped', async (t) => {
  const { url, p, primary } = await start(t, '{ enabled: true, format: combined }');
  assert.equal((await get(url, '/a/b?q=1', { 'user-agent': 'evil "agent" \\ \u00e9', referer: 'x', traceparent: TRACEPARENT })).status, 200);
  const deadline = Date.now() + 5000;
  let line: string | undefined;
  while (!(line = p.stdout.find((l) => l.includes('"GET /a/b HTTP/1.1"'))) && Date.now() < deadline) await sleep(50);
  assert.ok(line, p.stdout.join('\n'));
  const m = /^127\.0\.0\.1 - - \[(\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000)\] "GET \/a\/b HTTP\/1\.1" 200 7 "x" "evil \\x22agent\\x22 \\x5c \\xc3\\xa9" host="127\.0\.0\.1:\d+" pool="app" level=0 backend=(\S+) attempts=1 rescued=false hedged=false duration_ms=[\d.]+ trace_id=(\w+)$/.exec(line);
  assert.ok(m, line);
  assert.equal(m[2], primary.address);
  assert.equal(m[3], TRACE);
  // The access lines on stdout are not pino lines: the proxy's own log stays JSON beside them.
  assert.ok(p.stdout.some((l) => l.includes('"msg":"veloflux proxy started"')));
});

test('sampling: 0 logs nothing, 0.5 about half, 1 everything', async (t) => {
  const d = await dir();
  for (const [sample, n, min, max] of [[0, 60, 0, 0], [0.5, 200, 60, 140], [1, 60, 60, 60]] as const) {
    const file = join(d, `sample-${sample}.log`);
    const { url } = await start(t, `{ enabled: true, path: "${file}", sample: ${sample} }`);
    const agent = new Agent({ connections: 4 });
    for (let i = 0; i < n; i++) await (await request(`${url}/s`, { dispatcher: agent })).body.text();
    await agent.close();
    // A marker request the sampler may drop too: wait for the writes to settle instead.
    await sleep(300);
    const got = (await lines(file, 0, 0)).length;
    assert.ok(got >= min && got <= max, `sample ${sample}: ${got} of ${n} lines`);
  }
});

test('rotation with 2 workers: after mv and SIGHUP to the proxy, new lines go to a new file at the path', async (t) => {
  const d = await dir();
  const file = join(d, 'access.log');
  const { url, p } = await start(t, `{ enabled: true, path: "${file}" }`, ['--workers', '2']);
  const burst = async (tag: string, n: number): Promise<void> => {
    for (let i = 0; i < n; i++) {
      const agent = new Agent({ pipelining: 0 }); // new connections: both workers serve
      await (await request(`${url}/${tag}/${i}`, { dispatcher: agent })).body.text();
      await agent.close();
    }
  };
  await burst('before', 20);
  assert.equal((await lines(file, 20)).length, 20);
  await rename(file, `${file}.1`);
  p.child.kill('SIGHUP');
  // Wait for every worker to reopen: the new file appears, and then every new request lands in it.
  const deadline = Date.now() + 5000;
  while (await stat(file).then(() => false, () => true)) { if (Date.now() > deadline) throw new Error('no new file after SIGHUP'); await sleep(20); }
  await sleep(200);
  await burst('after', 20);
  const fresh = await lines(file, 20);
  const old = await readFile(`${file}.1`, 'utf8');
  assert.equal(fresh.length, 20, fresh.join('\n'));
  assert.ok(fresh.every((l) => (JSON.parse(l) as { path: string }).path.startsWith('/after/')));
  assert.equal(old.split('\n').filter((l) => l !== '' && !l.includes(WARMUP)).length, 20);
  assert.ok(!old.includes('/after/'));
  assert.ok(p.stdout.some((l) => l.includes('SIGHUP: reopening the access log')));
  assert.equal(p.child.exitCode, null, 'SIGHUP does not stop the proxy');
});

test('a destination that does not keep up: the queue is bounded, lines are dropped and counted, nothing blocks', async () => {
  const d = await dir();
  let dropped = 0;
  const failures: string[] = [];
  const log = new AccessLog({ now: () => 0, dropped: () => { dropped++; }, failed: (m) => failures.push(m), bufferBytes: 2000 });
  log.configure({ enabled: true, format: 'json', path: join(d, 'bounded.log'), sample: 1 });
  const req = { url: '/x', method: 'GET', httpVersion: '1.1', headers: { host: 'h' }, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
  // 1000 requests in one tick, before any write can happen: only ~2000 bytes are held.
  for (let i = 0; i < 1000; i++) log.record(req, undefined, 'app', undefined, 200, 1, performance.now(), 10, false);
  assert.ok(dropped > 950 && dropped < 1000, `dropped ${dropped}`);
  await log.close();
  const kept = (await readFile(join(d, 'bounded.log'), 'utf8')).split('\n').filter(Boolean);
  assert.equal(kept.length, 1000 - dropped, 'what was not dropped was written');
  // A path that cannot be opened: reported (once per message by the caller), lines dropped, no throw.
  const bad = new AccessLog({ now: () => 0, dropped: () => {}, failed: (m) => failures.push(m) });
  bad.configure({ enabled: true, format: 'json', path: join(d, 'no', 'such', 'dir', 'x.log'), sample: 1 });
  bad.record(req, undefined, 'app', undefined, 200, 1, performance.now(), 10, false);
  for (let i = 0; i < 100 && failures.length === 0; i++) await sleep(10);
  assert.match(failures[0] ?? '', /^access log: cannot open .*x\.log: ENOENT$/);
  await bad.close(50);
});

test('access_log config errors name the field and what is allowed', () => {
  const base = 'pools: []\n';
  for (const [text, message] of [
    ['access_log: { sample: 2 }', 'access_log.sample: must be a number from 0 to 1, got 2'],
    ['access_log: { sample: "half" }', 'access_log.sample: must be a number from 0 to 1, got "half"'],
    ['access_log: { format: xml }', 'access_log.format: must be one of "json", "combined", got "xml"'],
    ['access_log: { path: "" }', 'access_log.path: must not be empty'],
    ['access_log: { enabled: yes, rotate: true }', 'access_log.enabled: must be true or false, got "yes"'],
  ] as const) {
    const r = loadConfigText(`${base}${text}\n`);
    assert.equal(r.ok, false, text);
    if (!r.ok) assert.ok(r.issues.some((i) => `${i.path}: ${i.message}` === message), `${text}: ${JSON.stringify(r.issues)}`);
  }
  const ok = loadConfigText(`${base}access_log: { enabled: true, format: combined, path: /var/log/veloflux/access.log, sample: 0.25 }\n`);
  assert.ok(ok.ok);
  if (ok.ok) assert.deepEqual(ok.config.accessLog, { enabled: true, format: 'combined', path: '/var/log/veloflux/access.log', sample: 0.25 });
});
