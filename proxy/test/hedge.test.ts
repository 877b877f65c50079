// pools[].retry end to end: per-try timeout and hedging against real backends that stall (answer /health, never
// answer a request) or answer slowly. The hedge goes to the next candidate, the first answer wins and the other
// try is cancelled (the backend sees its connection close); never for non-idempotent methods; a client that leaves
// cancels both tries and counts against no backend.
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

const hc = 'health_check: { interval: "300ms", timeout: "250ms", healthy_threshold: 1, unhealthy_threshold: 3 }';

type Behaviour = 'ok' | 'stall' | { delayMs: number };

/** Answers by its behaviour; counts the requests it saw and those whose client (the proxy) went away. */
function behave(b: TestBackend, get: () => Behaviour): { closed: number } {
  const stats = { closed: 0 };
  b.handler = (req: IncomingMessage, res: ServerResponse) => {
    const how = get();
    res.on('close', () => { if (!res.writableFinished) stats.closed++; });
    if (how === 'ok') return false;
    if (how === 'stall') return true;
    setTimeout(() => { if (!res.destroyed) res.end(b.name); }, how.delayMs);
    void req;
    return true;
  };
  return stats;
}

async function hedged(p: TestProxy, pool = 'app'): Promise<number> {
  const text = await (await request(`${p.adminUrl}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`veloflux_hedged_requests_total{pool="${pool}"}`));
  return Number(line?.split(' ')[1] ?? NaN);
}

async function call(p: TestProxy, method = 'GET', signal?: AbortSignal): Promise<{ status: number; body: string }> {
  const res = await request(`${p.url}/x`, { method: method as 'GET', ...(method === 'POST' ? { body: 'payload' } : {}), ...(signal ? { signal } : {}) });
  return { status: res.statusCode, body: await res.body.text() };
}

test('hedge: a stalled primary is hedged to the other one; the first answer wins and the stalled try is cancelled; POST is never hedged', async (t) => {
  const [a, b, backup] = await startBackends('a', 'b', 'backup') as [TestBackend, TestBackend, TestBackend];
  let aMode: Behaviour = 'stall';
  let bMode: Behaviour = 'ok';
  const aStats = behave(a, () => aMode);
  const bStats = behave(b, () => bMode);
  const logFile = join(await mkdtemp(join(tmpdir(), 'veloflux-hedge-')), 'access.log');
  const p = await startTestProxy(`access_log: { enabled: true, format: json, path: "${logFile}" }
pools:
  - name: app
    backends:
      - { address: "${a.address}", ${hc} }
      - { address: "${b.address}", ${hc} }
      - { address: "${backup.address}", failover_level: 1, ${hc} }
    retry: { per_try_timeout: "100ms", hedge: true }
routes:
  - pool: app
dataplane: { header_timeout: "3s" }
`);
  t.after(async () => { await p.stop(); await Promise.all([a, b, backup].map((x) => x.kill())); });
  await p.waitReady();

  // Round-robin: within two requests one starts on the stalled a, and is answered by b.
  const answers: string[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await call(p);
    assert.equal(r.status, 200);
    answers.push(r.body);
  }
  assert.deepEqual([...new Set(answers)], ['b'], 'every request answered by b');
  assert.equal(a.seen.length, 2, 'a got its share of first tries');
  assert.equal(await hedged(p), 2);
  await sleep(100);
  assert.equal(aStats.closed, 2, 'the stalled tries were cancelled');
  assert.equal(p.events.filter((e) => e.type === 'backend_down').length, 0, 'a cancelled try says nothing about its backend');
  // The access log says which requests were hedged (written off the request path: wait for the lines).
  let logged: { hedged: boolean; backend: string; path: string }[] = [];
  for (let i = 0; i < 100 && logged.filter((l) => l.path === '/x').length < 4; i++) {
    await sleep(50);
    logged = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { hedged: boolean; backend: string; path: string });
  }
  const mine = logged.filter((l) => l.path === '/x');
  assert.deepEqual(mine.map((l) => l.hedged).sort(), [false, false, true, true], JSON.stringify(mine));
  assert.ok(mine.every((l) => l.backend === b.address), 'each answered by b');

  // The first answer wins: a answers at 300 ms, the hedge on b would take 2 s; a wins, b's try is cancelled.
  aMode = { delayMs: 300 };
  bMode = { delayMs: 2000 };
  const before = b.seen.length;
  const won: string[] = [];
  for (let i = 0; i < 2; i++) won.push((await call(p)).body);
  assert.ok(won.includes('a'), `answers ${won}`);
  await sleep(100);
  assert.ok(b.seen.length > before, 'b got the hedge');
  assert.ok(bStats.closed >= 1, 'the losing hedge was cancelled');

  // POST is not idempotent: no hedge, it waits for a (header_timeout 3 s would answer 504; a answers at 300 ms).
  const h = await hedged(p);
  aMode = { delayMs: 300 };
  bMode = { delayMs: 300 };
  for (let i = 0; i < 2; i++) assert.equal((await call(p, 'POST')).status, 200);
  assert.equal(await hedged(p), h, 'no hedge for POST');
});

test('hedge: per_try_timeout auto learns the backends\' p99; a stalled level is hedged to the next level; a client that leaves cancels both tries', async (t) => {
  const [a, backup] = await startBackends('a', 'backup') as [TestBackend, TestBackend];
  let aMode: Behaviour = 'ok';
  let backupMode: Behaviour = 'ok';
  const aStats = behave(a, () => aMode);
  const backupStats = behave(backup, () => backupMode);
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${a.address}", ${hc} }
      - { address: "${backup.address}", failover_level: 1, ${hc} }
    retry: { per_try_timeout: auto, hedge: true }
routes:
  - pool: app
dataplane: { header_timeout: "5s" }
`);
  t.after(async () => { await p.stop(); await a.kill(); await backup.kill(); });
  await p.waitReady();
  // Before 20 answers, auto is header_timeout: nothing is hedged. Warm up: 30 fast answers.
  for (let i = 0; i < 30; i++) assert.equal((await call(p)).body, 'a');
  assert.equal(await hedged(p), 0);

  // a stalls: hedged after ~50 ms (its p99 is under 50 ms) to level 1.
  aMode = 'stall';
  const r = await call(p);
  assert.deepEqual(r, { status: 200, body: 'backup' });
  assert.equal(await hedged(p), 1);

  // Both stall and the client gives up: both tries are cancelled, nothing is counted against a backend.
  backupMode = 'stall';
  const closedA = aStats.closed;
  const closedB = backupStats.closed;
  await call(p, 'GET', AbortSignal.timeout(400)).then(() => assert.fail('answered'), (err: Error) => assert.match(err.name, /TimeoutError|AbortError/));
  await sleep(200);
  assert.equal(aStats.closed, closedA + 1, 'the first try was cancelled');
  assert.equal(backupStats.closed, closedB + 1, 'the hedge was cancelled');
  assert.equal(p.events.filter((e) => e.type === 'backend_down').length, 0);
});

test('hedge: more stalled requests than the retry budget has slots: refused hedges wait for a slot, none waits for header_timeout, and the backup never has more hedges at once than the budget', async (t) => {
  const [a, backup] = await startBackends('a', 'backup') as [TestBackend, TestBackend];
  behave(a, () => 'stall');
  // The backup answers after 200 ms, so each hedge holds its budget slot that long; it counts hedges in flight.
  let open = 0;
  let maxOpen = 0;
  backup.handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') return false;
    open++;
    maxOpen = Math.max(maxOpen, open);
    setTimeout(() => { open--; if (!res.destroyed) res.end('backup'); }, 200);
    return true;
  };
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${a.address}", ${hc} }
      - { address: "${backup.address}", failover_level: 1, ${hc} }
    retry: { per_try_timeout: "100ms", hedge: true }
routes:
  - pool: app
dataplane: { header_timeout: "20s", retry_budget_percent: 10 }
`);
  t.after(async () => { await p.stop(); await a.kill(); await backup.kill(); });
  await p.waitReady();
  // 64 requests at once: the budget is max(16, 10% of 64) = 16 hedges in flight, so 48 are refused at first. A
  // refused hedge that gave up would be answered only when header_timeout (20 s) rescues it, unhedged.
  const N = 64;
  const answers = await Promise.all(Array.from({ length: N }, () => call(p, 'GET', AbortSignal.timeout(15_000))));
  assert.deepEqual([...new Set(answers.map((r) => `${r.status} ${r.body}`))], ['200 backup']);
  assert.equal(await hedged(p), N, 'every request was hedged');
  assert.ok(maxOpen <= 16, `at most 16 hedges at once on the backup (the budget), saw ${maxOpen}`);
  assert.ok(maxOpen >= 2, `hedges ran side by side (saw ${maxOpen})`);
});
