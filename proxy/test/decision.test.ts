// Shared decisions on a real proxy (SPEC 9): PUT /api/v1/pools/{pool}/decision moves traffic, a lower sequence
// is refused, the lease runs out into local decisions (with a log line and the metric), a bootstrap proxy waits
// for its first decision before /readyz, and every malformed body is refused without changing anything.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import { request } from 'undici';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

const TOKEN = 'decision-token-7d2e';
process.env.VELOFLUX_ADMIN_TOKEN = TOKEN;

function yaml(primary: TestBackend, backup: TestBackend, mode = 'shared'): string {
  return `pools:
  - name: app
    consensus: { mode: ${mode} }
    backends:
      - { address: "${primary.address}", health_check: { interval: "200ms", timeout: "100ms", unhealthy_threshold: 1, healthy_threshold: 1 } }
      # The backup is never failed on purpose: slow probes with a long timeout keep a loaded machine from marking it down.
      - { address: "${backup.address}", failover_level: 1, health_check: { interval: "1s", timeout: "900ms", unhealthy_threshold: 3 } }
  - name: solo
    backends: [{ address: "${backup.address}" }]
routes:
  - { host: "app.example.com", pool: app }
  - { host: "solo.example.com", pool: solo }
failover: { recovery_interval: "300ms" }
`;
}

async function call(p: TestProxy, method: string, path: string, body?: string, opts: { token?: string | null; type?: string } = {}): Promise<{ status: number; json: any }> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await request(`${p.adminUrl}${path}`, {
    method: method as 'PUT',
    headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': opts.type ?? 'application/json' } : {}) },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await res.body.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.statusCode, json };
}

const decide = (p: TestProxy, d: unknown, pool = 'app'): Promise<{ status: number; json: any }> => call(p, 'PUT', `/api/v1/pools/${pool}/decision`, JSON.stringify(d));
const served = async (p: TestProxy, host = 'app.example.com'): Promise<string> => (await (await request(`${p.url}/`, { headers: { host } })).body.text());
const metric = async (p: TestProxy, line: string): Promise<boolean> => (await (await request(`${p.adminUrl}/metrics`)).body.text()).split('\n').includes(line);

async function setup(t: { after: (fn: () => Promise<void>) => void }, mode = 'shared'): Promise<{ p: TestProxy; primary: TestBackend; backup: TestBackend }> {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await startTestProxy(yaml(primary, backup, mode), { proxyId: 'proxy-a' });
  t.after(async () => { await p.stop(); await primary.kill(); await backup.kill(); });
  await p.waitReady();
  return { p, primary, backup };
}

test('a fresh decision is served; the same sequence renews it, a lower one is refused (409); rescue stays local', async (t) => {
  const { p, primary } = await setup(t);
  assert.equal(await served(p), 'primary');
  let st = (await call(p, 'GET', '/api/v1/failover/status?pool=app')).json;
  assert.equal(st.proxy, 'proxy-a');
  assert.deepEqual(st.pools[0].decision, { source: 'local', sequence: null, expiresAt: null });
  assert.ok(await metric(p, 'veloflux_decision_shared{pool="app"} 0'));

  // Level 1 although this proxy sees the primary healthy: the replicas agreed on it.
  const ok = await decide(p, { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 5, ttl: '5s' });
  assert.equal(ok.status, 200, JSON.stringify(ok.json));
  assert.equal(ok.json.source, 'shared');
  assert.equal(ok.json.sequence, 5);
  assert.equal(await served(p), 'backup');
  st = (await call(p, 'GET', '/api/v1/failover/status?pool=app')).json.pools[0];
  assert.equal(st.activeLevel, 1);
  assert.equal(st.failoverActive, true);
  assert.equal(st.decision.source, 'shared');
  assert.ok(await metric(p, 'veloflux_decision_shared{pool="app"} 1'));
  await p.waitFor((e) => e.type === 'failover_activated' && e.pool === 'app' && e.to === 1, 2000, 'the shared move announced as a failover');
  await p.waitFor((e) => e.type === 'decision_source' && e.source === 'shared', 2000, 'the switch to shared');
  assert.ok(p.logs.some((l) => l.includes('following the operator (shared)')));

  const stale = await decide(p, { level: 0, shares: [{ level: 0, percent: 100 }], sequence: 4, ttl: '5s' });
  assert.equal(stale.status, 409);
  assert.equal(stale.json.error.code, 'VF_ERR_DECISION_STALE');
  assert.match(stale.json.error.message, /sequence 4 is lower than the one held \(5\)/);
  assert.equal(await served(p), 'backup', 'a refused decision changes nothing');
  const renew = await decide(p, { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 5, ttl: '5s' });
  assert.equal(renew.status, 200);

  // Back to level 0 by a higher sequence; then the primary dies: the decision still says 0 (the operator has
  // not decided yet), and each request is rescued onto the backup, none fails.
  assert.equal((await decide(p, { level: 0, shares: [{ level: 0, percent: 100 }], sequence: 6, ttl: '5s' })).status, 200);
  assert.equal(await served(p), 'primary');
  await primary.kill();
  for (let i = 0; i < 20; i++) {
    const res = await request(`${p.url}/`, { headers: { host: 'app.example.com' } });
    assert.equal(res.statusCode, 200);
    assert.equal(await res.body.text(), 'backup');
  }
  assert.equal((await call(p, 'GET', '/api/v1/failover/status?pool=app')).json.pools[0].activeLevel, 0, 'the shared level holds');
});

test('the lease runs out: the proxy decides alone again, logs the switch and the metric says so', async (t) => {
  const { p } = await setup(t);
  assert.equal((await decide(p, { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 1, ttl: '600ms' })).status, 200);
  assert.equal(await served(p), 'backup');
  await p.waitFor((e) => e.type === 'decision_source' && e.source === 'local', 5000, 'the switch back to local');
  assert.ok(p.logs.some((l) => l.includes('deciding locally') && l.includes('"pool":"app"')));
  assert.equal(await served(p), 'primary', 'alone, the proxy sees the primary healthy');
  const st = (await call(p, 'GET', '/api/v1/failover/status?pool=app')).json.pools[0];
  assert.equal(st.decision.source, 'local');
  assert.equal(st.decision.sequence, 1, 'the sequence held stays (a lower one is still refused)');
  assert.ok(await metric(p, 'veloflux_decision_shared{pool="app"} 0'));
  assert.equal((await decide(p, { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 1, ttl: '5s' })).status, 200, 'the operator back: shared again');
  assert.equal(await served(p), 'backup');
});

test('refused: no token (401), unknown pool (404), a pool that decides locally (409)', async (t) => {
  const { p } = await setup(t);
  const d = { level: 0, shares: [{ level: 0, percent: 100 }], sequence: 1, ttl: '5s' };
  assert.equal((await call(p, 'PUT', '/api/v1/pools/app/decision', JSON.stringify(d), { token: null })).status, 401);
  assert.equal((await call(p, 'PUT', '/api/v1/pools/app/decision', JSON.stringify(d), { token: 'wrong' })).status, 401);
  const unknown = await decide(p, d, 'nope');
  assert.deepEqual([unknown.status, unknown.json.error.code], [404, 'VF_ERR_UNKNOWN_POOL']);
  const local = await decide(p, d, 'solo');
  assert.deepEqual([local.status, local.json.error.code], [409, 'VF_ERR_DECISION_LOCAL']);
  assert.match(local.json.error.message, /pool "solo" decides locally/);
});

test('hostile decision bodies: each refused with 400 naming the field, nothing changes', async (t) => {
  const { p } = await setup(t);
  const good = { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 3, ttl: '5s' };
  const cases: [string, string | undefined, RegExp][] = [
    ['empty', '', /must be a JSON object/],
    ['not JSON', '{level: 1', /not valid JSON/],
    ['array', '[1,2]', /got an array/],
    ['null', 'null', /got null/],
    ['string', '"x"', /got "x"/],
    ['unknown key', JSON.stringify({ ...good, admin: true }), /unknown field "admin"/],
    ['level missing', JSON.stringify({ ...good, level: undefined }), /level must be one of the pool's levels \(0, 1\)/],
    ['level not a level', JSON.stringify({ ...good, level: 7 }), /level must be one of the pool's levels/],
    ['level a string', JSON.stringify({ ...good, level: '1' }), /level must be/],
    ['level fractional', JSON.stringify({ ...good, level: 0.5 }), /level must be/],
    ['negative level', JSON.stringify({ ...good, level: -1 }), /level must be/],
    ['shares not array', JSON.stringify({ ...good, shares: { level: 1 } }), /shares must be an array/],
    ['too many shares', JSON.stringify({ ...good, shares: [{ level: 0, percent: 50 }, { level: 1, percent: 50 }, { level: 1, percent: 0 }] }), /at most 2 entries/],
    ['share not object', JSON.stringify({ ...good, shares: [5] }), /shares\[0\] must be an object/],
    ['share unknown key', JSON.stringify({ ...good, shares: [{ level: 1, percent: 100, evenIfDown: true }] }), /shares\[0\]: unknown field "evenIfDown"/],
    ['share level twice', JSON.stringify({ ...good, shares: [{ level: 1, percent: 50 }, { level: 1, percent: 50 }] }), /listed twice/],
    ['percent 0', JSON.stringify({ ...good, shares: [{ level: 1, percent: 0 }] }), /percent must be a whole number from 1 to 100/],
    ['percent 101', JSON.stringify({ ...good, shares: [{ level: 1, percent: 101 }] }), /percent must be/],
    ['sum not 100', JSON.stringify({ ...good, shares: [{ level: 0, percent: 30 }, { level: 1, percent: 30 }] }), /add up to 100 percent, got 60/],
    ['level not in shares', JSON.stringify({ ...good, shares: [{ level: 0, percent: 100 }] }), /must include the decided level 1/],
    ['sequence 0', JSON.stringify({ ...good, sequence: 0 }), /sequence must be a whole number/],
    ['sequence huge', '{"level":1,"shares":[{"level":1,"percent":100}],"sequence":1e300,"ttl":"5s"}', /sequence must be/],
    ['sequence string', JSON.stringify({ ...good, sequence: '3' }), /sequence must be/],
    ['ttl number', JSON.stringify({ ...good, ttl: 5000 }), /ttl must be a duration from 500ms to 10m/],
    ['ttl too short', JSON.stringify({ ...good, ttl: '10ms' }), /ttl must be/],
    ['ttl too long', JSON.stringify({ ...good, ttl: '1h' }), /ttl must be/],
    ['ttl garbage', JSON.stringify({ ...good, ttl: '5 s' }), /ttl must be/],
    ['deeply nested', `{"level":${'['.repeat(5000)}${']'.repeat(5000)}}`, /level must be/],
    ['oversized', JSON.stringify({ ...good, pad: 'x'.repeat(20_000) }), /larger than 16 KiB/],
    ['__proto__ key', '{"__proto__":{"level":1},"shares":[],"sequence":3,"ttl":"5s"}', /unknown field "__proto__"/],
    ['paused not an object', JSON.stringify({ ...good, paused: 'yes' }), /paused must be an object \{reason\} or null/],
    ['paused without reason', JSON.stringify({ ...good, paused: {} }), /paused.reason must be a string of 1 to 500 characters/],
    ['paused reason huge', JSON.stringify({ ...good, paused: { reason: 'x'.repeat(600) } }), /paused.reason must be/],
    ['paused unknown key', JSON.stringify({ ...good, paused: { reason: 'r', by: 'me' } }), /paused: unknown field "by"/],
  ];
  for (const [what, body, message] of cases) {
    const r = await call(p, 'PUT', '/api/v1/pools/app/decision', body);
    assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.json)}`);
    assert.equal(r.json.error.code, 'VF_ERR_BAD_PARAMETER', what);
    assert.match(r.json.error.message, message, what);
  }
  const wrongType = await call(p, 'PUT', '/api/v1/pools/app/decision', JSON.stringify(good), { type: 'application/x-www-form-urlencoded' });
  assert.equal(wrongType.status, 400);
  const st = (await call(p, 'GET', '/api/v1/failover/status?pool=app')).json.pools[0];
  assert.deepEqual([st.activeLevel, st.decision.source, st.decision.sequence], [0, 'local', null], 'nothing was applied');
  assert.equal(await served(p), 'primary');
  // A connection reset mid-body changes nothing either.
  const { connect } = await import('node:net');
  await new Promise<void>((resolve) => {
    const sock = connect(Number(new URL(p.adminUrl).port), '127.0.0.1', () => {
      sock.write(`PUT /api/v1/pools/app/decision HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{"level":1,`);
      setTimeout(() => { sock.destroy(); resolve(); }, 50);
    });
  });
  assert.equal((await call(p, 'GET', '/api/v1/failover/status?pool=app')).json.pools[0].decision.sequence, null);
});

test('probes carry User-Agent and X-VeloFlux-Proxy (SPEC 2)', async (t) => {
  const seen: IncomingHttpHeaders[] = [];
  const backend = createServer((req, res) => { seen.push(req.headers); res.end('ok'); });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  t.after(() => new Promise<void>((r) => backend.close(() => r())));
  const port = (backend.address() as { port: number }).port;
  const p = await startTestProxy(`pools: [{ name: one, backends: [{ address: "127.0.0.1:${port}" }] }]\nroutes: [{ pool: one }]\n`, { proxyId: 'gateway-7' });
  t.after(() => p.stop());
  await p.waitReady();
  assert.equal(seen[0]?.['x-veloflux-proxy'], 'gateway-7');
  assert.match(String(seen[0]?.['user-agent']), /^veloflux-health-check\/\d+\.\d+\.\d+$/);
});

test('warm-up: a bootstrap proxy runs its pushed config, and in shared mode reports ready only with a decision', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await startTestProxy('bootstrap: true\n', { proxyId: 'proxy-b' });
  t.after(async () => { await p.stop(); await primary.kill(); await backup.kill(); });
  const readyz = async (): Promise<number> => (await request(`${p.adminUrl}/readyz`)).statusCode;
  assert.equal(await readyz(), 503);
  const head = 'listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0" }\n';
  assert.equal((await call(p, 'PUT', '/api/v1/config', `${head}${yaml(primary, backup)}`, { type: 'application/yaml' })).status, 200);
  // Probed, but no decision yet: not ready.
  await p.waitFor((e) => e.type === 'config_applied', 2000);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(await readyz(), 503, 'shared pool without a decision: not ready');
  const why = await (await request(`${p.adminUrl}/readyz`)).body.json() as { reason: string };
  assert.equal(why.reason, 'waiting for a first shared decision for pool "app" (consensus.mode: shared)');
  assert.equal((await decide(p, { level: 0, shares: [{ level: 0, percent: 100 }], sequence: 1, ttl: '600ms' })).status, 200);
  assert.equal(await readyz(), 200);
  await p.waitFor((e) => e.type === 'decision_source' && e.source === 'local', 5000);
  assert.equal(await readyz(), 200, 'once ready, an expired decision does not take the proxy out of its Service');
});

test('a new config that makes the pool local drops its decision: the proxy decides alone at once and says so', async (t) => {
  const { p, primary, backup } = await setup(t);
  assert.equal((await decide(p, { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 4, ttl: '1m' })).status, 200);
  assert.equal(await served(p), 'backup');
  const head = 'listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0" }\n';
  assert.equal((await call(p, 'PUT', '/api/v1/config', `${head}${yaml(primary, backup, 'local')}`, { type: 'application/yaml' })).status, 200);
  const e = await p.waitFor((x) => x.type === 'decision_source' && x.source === 'local', 2000, 'the switch to local');
  assert.equal((e as { sequence: number }).sequence, 4);
  await p.waitFor((x) => x.type === 'failover_recovered' && x.pool === 'app', 2000, 'the level it serves alone announced');
  assert.equal(await served(p), 'primary');
  const st = (await call(p, 'GET', '/api/v1/failover/status?pool=app')).json.pools[0];
  assert.deepEqual(st.decision, { source: 'local', sequence: null, expiresAt: null });
  const refused = await decide(p, { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 5, ttl: '5s' });
  assert.deepEqual([refused.status, refused.json.error.code], [409, 'VF_ERR_DECISION_LOCAL']);
});

test('shared ramp gate: a gated pool reports its traffic by level on the event stream while the decision ramps; a paused decision shows in status, the metric and events', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await startTestProxy(`pools:
  - name: app
    consensus: { mode: shared }
    backends:
      - { address: "${primary.address}" }
      - { address: "${backup.address}", failover_level: 1 }
routes:
  - { host: "app.example.com", pool: app }
failover: { strategy: graceful, step_percent: 50, step_interval: "800ms", ramp_gate: { max_error_percent: 5, max_p99: "1s" } }
`, { proxyId: 'proxy-a' });
  const sse = await request(`${p.adminUrl}/api/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
  let stream = '';
  sse.body.on('data', (c: Buffer) => { stream += c.toString(); });
  t.after(async () => { sse.body.destroy(); await p.stop(); await primary.kill(); await backup.kill(); });
  await p.waitReady();
  const reports = (): { pool: string; levels: { level: number; requests: number; errors: number; buckets: { le: number | string; count: number }[] }[] }[] =>
    [...stream.matchAll(/event: traffic\nid: \d+\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1] as string));
  // Not ramping: no report.
  assert.equal((await decide(p, { level: 0, shares: [{ level: 0, percent: 100 }], sequence: 1, ttl: '10s' })).status, 200);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(reports().length, 0, 'no traffic report while the decision does not ramp');

  // The operator ramps onto level 1 and pauses there: every proxy shows it.
  const r = await decide(p, { level: 1, shares: [{ level: 1, percent: 50 }, { level: 0, percent: 50 }], sequence: 2, ttl: '10s', paused: { reason: 'level 1 answered 9.0% errors over the last step (max_error_percent 5)' } });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  const st = (await call(p, 'GET', '/api/v1/failover/status?pool=app')).json.pools[0];
  assert.deepEqual(st.ramp, { from: 0, to: 1, percent: 50, paused: { reason: 'level 1 answered 9.0% errors over the last step (max_error_percent 5)' } });
  assert.ok(await metric(p, 'veloflux_ramp_paused{pool="app"} 1'));
  const paused = await p.waitFor((e) => e.type === 'ramp_paused', 2000, 'ramp_paused');
  assert.deepEqual(paused.type === 'ramp_paused' && [paused.from, paused.to, paused.percent], [0, 1, 50]);
  for (let i = 0; i < 20; i++) await served(p);
  // Reports every step_interval / 4 (200 ms): cumulative counts by level, a histogram ending in +Inf, no address.
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !reports().some((x) => x.levels.reduce((n, l) => n + l.requests, 0) >= 20)) await new Promise((res) => setTimeout(res, 50));
  const last = reports().at(-1);
  assert.equal(last?.pool, 'app');
  assert.deepEqual(last?.levels.map((l) => l.level), [0, 1]);
  assert.equal(last?.levels.reduce((n, l) => n + l.requests, 0), 20);
  assert.equal(last?.levels[0]?.buckets.at(-1)?.le, '+Inf');
  assert.ok(reports().every((x) => !JSON.stringify(x).includes('127.0.0.1')), 'a report names no backend');

  // The same ramp, no longer paused: resumed; then the ramp ends and the reports stop.
  assert.equal((await decide(p, { level: 1, shares: [{ level: 1, percent: 50 }, { level: 0, percent: 50 }], sequence: 3, ttl: '10s' })).status, 200);
  await p.waitFor((e) => e.type === 'ramp_resumed', 2000, 'ramp_resumed');
  assert.equal((await call(p, 'GET', '/api/v1/failover/status?pool=app')).json.pools[0].ramp.paused, null);
  assert.ok(await metric(p, 'veloflux_ramp_paused{pool="app"} 0'));
  assert.equal((await decide(p, { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 4, ttl: '10s' })).status, 200);
  await new Promise((res) => setTimeout(res, 300));
  const n = reports().length;
  await new Promise((res) => setTimeout(res, 600));
  assert.equal(reports().length, n, 'no report once the ramp ended');
});

test('a lease timer that fires before the clock reaches expiresAt waits out the rest, then decides locally (node arms timers from a cached loop time)', async (t) => {
  const { Controller } = await import('../src/control/controller.ts');
  const { loadConfigText } = await import('@veloflux/config/load');
  const loaded = loadConfigText('pools:\n  - name: app\n    consensus: { mode: shared }\n    backends: [{ address: "127.0.0.1:9" }]\nroutes: [{ pool: app }]\n');
  assert.ok(loaded.ok);
  let now = 1_000_000;
  const c = new Controller(loaded.config, loaded.version, { probe: async () => ({ ok: true }), clock: { now: () => now } });
  t.after(() => c.stop());
  const sources: string[] = [];
  c.on('event', (e: { type: string; source?: string }) => { if (e.type === 'decision_source') sources.push(String(e.source)); });
  c.applyDecision('app', { level: 0, shares: [{ level: 0, percent: 100 }], sequence: 1, ttlMs: 100 });
  assert.deepEqual(sources, ['shared']);
  // The timer fires after 100 ms of real time, but the clock says only 50 ms went by: still fresh, nothing changes.
  now += 50;
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(sources, ['shared'], 'an early timer is not an expiry');
  assert.equal(c.status('app')[0]?.decision?.source, 'shared');
  // The clock passes expiresAt: the re-armed timer (50 ms) announces the switch to local decisions.
  now += 100;
  const deadline = Date.now() + 5000;
  while (sources.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(sources, ['shared', 'local']);
  assert.equal(c.status('app')[0]?.decision?.source, 'local');
});
