// Outlier detection end to end and as a table. The cell (dataplane/outlier.ts) counts what a backend answered;
// the proxy ejects it (status downBy "outlier", metric, events) and re-admits it after base_ejection, doubled
// on a repeat. Only backend faults count: clients that leave (499) never eject anything.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { OutlierPolicy } from '@veloflux/config/types';
import { OutlierCell } from '../src/dataplane/outlier.ts';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

const POLICY: OutlierPolicy = { consecutive5xx: 3, consecutiveGatewayErrors: 2, errorPercent: 50, minRequests: 4, intervalMs: 60_000, baseEjectionMs: 1000, maxEjectionMs: 4000, maxEjectionPercent: 50 };

function cell(policy: Partial<OutlierPolicy> = {}): { c: OutlierCell; trips: string[] } {
  const trips: string[] = [];
  return { c: new OutlierCell('p/b', { ...POLICY, ...policy }, (_id, reason) => trips.push(reason), performance.now()), trips };
}

test('cell: consecutive 5xx trip once and count afresh; any answer below 500 resets', () => {
  const { c, trips } = cell({ consecutiveGatewayErrors: 0 });
  for (const s of [500, 500, 200, 500, 500]) c.answered(s);
  assert.deepEqual(trips, []);
  c.answered(501);
  assert.equal(trips.length, 1);
  assert.match(String(trips[0]), /^3 consecutive 5xx or failures \(last: answered 501; consecutive_5xx 3\)$/);
  c.answered(500);
  c.answered(500);
  assert.equal(trips.length, 1, 'counting afresh after a trip');
  c.failed('ECONNRESET');
  assert.equal(trips.length, 2, 'a backend fault counts as a 5xx');
});

test('cell: gateway errors are 502/503/504 and backend faults; another 5xx resets their run', () => {
  const { c, trips } = cell({ consecutive5xx: 0 });
  c.answered(502);
  c.answered(500);
  c.answered(503);
  assert.deepEqual(trips, []);
  c.failed('ECONNREFUSED');
  assert.match(String(trips[0]), /^2 consecutive gateway errors \(last: failed \(ECONNREFUSED\); consecutive_gateway_errors 2\)$/);
});

test('cell: error_percent is judged at the end of an interval, only with min_requests', async () => {
  const { c, trips } = cell({ consecutive5xx: 0, consecutiveGatewayErrors: 0, intervalMs: 30, minRequests: 4 });
  for (const s of [500, 200, 500]) c.answered(s);
  await sleep(40);
  c.answered(200);
  assert.deepEqual(trips, [], '3 requests < min_requests');
  for (const s of [500, 500, 200, 500]) c.answered(s);
  await sleep(40);
  c.answered(200);
  assert.equal(trips.length, 1);
  assert.match(String(trips[0]), /^60% errors over 5 requests in 30ms \(error_percent 50\)$/);
  for (const s of [500, 200, 200, 200]) c.answered(s);
  await sleep(40);
  c.answered(200);
  assert.equal(trips.length, 1, '25% is under 50%');
});

// Probes lenient enough for a loaded machine: these tests are about real traffic, not probes.
const hc = 'health_check: { interval: "300ms", timeout: "250ms", healthy_threshold: 1, unhealthy_threshold: 3 }';

async function get(p: TestProxy, path = '/'): Promise<{ status: number; body: string }> {
  const res = await request(`${p.url}${path}`);
  return { status: res.statusCode, body: await res.body.text() };
}

async function status(p: TestProxy): Promise<any> {
  const res = await request(`${p.adminUrl}/api/v1/failover/status?pool=app`, { headers: { authorization: 'Bearer outlier-token' } });
  return (JSON.parse(await res.body.text()) as { pools: unknown[] }).pools[0];
}

test('a primary that answers 500 to real requests while /health says 200 is ejected after consecutive_5xx, re-admitted after its ejection, ejected for twice as long on a repeat', async (t) => {
  const [bad, good, backup] = await startBackends('bad', 'good', 'backup') as [TestBackend, TestBackend, TestBackend];
  let failing = true;
  bad.handler = (_req, res) => { if (!failing) return false; res.writeHead(500).end('bad'); return true; };
  process.env.VELOFLUX_ADMIN_TOKEN = 'outlier-token';
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${bad.address}", ${hc} }
      - { address: "${good.address}", ${hc} }
      - { address: "${backup.address}", failover_level: 1, ${hc} }
    outlier_detection: { consecutive_5xx: 3, consecutive_gateway_errors: 0, error_percent: 100, base_ejection: "1500ms", max_ejection: "10s", max_ejection_percent: 50 }
routes:
  - pool: app
`);
  t.after(async () => { delete process.env.VELOFLUX_ADMIN_TOKEN; await p.stop(); await Promise.all([bad, good, backup].map((b) => b.kill())); });
  await p.waitReady();

  // Round-robin over two primaries: the ejection comes with the bad one's third 500 (synchronously: the next
  // request already goes elsewhere).
  const seen: string[] = [];
  for (let i = 0; i < 50 && !p.events.some((e) => e.type === 'backend_down'); i++) seen.push((await get(p)).body);
  assert.equal(seen.filter((b) => b === 'bad').length, 3, JSON.stringify(seen));
  const ejected = await p.waitFor((e) => e.type === 'backend_down' && e.by === 'outlier', 2000, 'the ejection');
  assert.match(ejected.type === 'backend_down' ? ejected.error : '', /^ejected for 1500ms: 3 consecutive 5xx or failures \(last: answered 500; consecutive_5xx 3\)$/);
  let st = await status(p);
  const b0 = st.backends.find((b: { address: string }) => b.address === bad.address);
  assert.equal(b0.health, 'down');
  assert.equal(b0.downBy, 'outlier');
  assert.equal(typeof b0.ejectedUntil, 'string');
  assert.equal(st.activeLevel, 0, 'the other primary still serves');
  for (let i = 0; i < 10; i++) assert.equal((await get(p)).body, 'good', 'an ejected backend gets no requests');
  const metrics = await (await request(`${p.adminUrl}/metrics`)).body.text();
  assert.match(metrics, new RegExp(`veloflux_outlier_ejections_total\\{pool="app",backend="${bad.address}"\\} 1`));

  // Re-admitted after its ejection (its probes said 200 all along).
  await p.waitFor((e) => e.type === 'backend_up' && e.backend === bad.address, 5000, 're-admission');
  st = await status(p);
  assert.equal(st.backends.find((b: { address: string }) => b.address === bad.address).downBy, null);
  // Still failing: ejected again, for twice as long.
  for (let i = 0; i < 50 && p.events.filter((e) => e.type === 'backend_down').length < 2; i++) await get(p);
  const again = await p.waitFor((e) => e.type === 'backend_down' && e.by === 'outlier' && e.error.startsWith('ejected for 3000ms'), 2000, 'the second ejection');
  assert.ok(again);
  failing = false;
  await p.waitFor((e) => e.type === 'backend_up' && e.backend === bad.address && p.events.filter((x) => x.type === 'backend_up').length >= 2, 8000, 'second re-admission');
  const back: string[] = [];
  for (let i = 0; i < 4; i++) back.push((await get(p)).body);
  assert.ok(back.includes('bad'), 'serving again after its ejection');
});

test('max_ejection_percent: a single-backend level at 50% is never ejected; clients that leave never count', async (t) => {
  const [only, backup] = await startBackends('only', 'backup') as [TestBackend, TestBackend];
  let mode: 'fail' | 'slow' = 'fail';
  only.handler = (_req, res) => {
    if (mode === 'fail') { res.writeHead(503).end('unavailable'); return true; }
    setTimeout(() => { if (!res.destroyed) res.end('slow'); }, 500);
    return true;
  };
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${only.address}", ${hc} }
      - { address: "${backup.address}", failover_level: 1, ${hc} }
    outlier_detection: { consecutive_5xx: 2, consecutive_gateway_errors: 2, max_ejection_percent: 50 }
  - name: all
    backends:
      - { address: "${only.address}", ${hc} }
      - { address: "${backup.address}", failover_level: 1, ${hc} }
    outlier_detection: { consecutive_5xx: 2, consecutive_gateway_errors: 2, max_ejection_percent: 100 }
routes:
  - { path_prefix: "/", pool: app }
  - { path_prefix: "/all", pool: all }
`);
  t.after(async () => { await p.stop(); await only.kill(); await backup.kill(); });
  await p.waitReady();
  for (let i = 0; i < 6; i++) assert.equal((await get(p)).status, 503);
  await sleep(200);
  assert.equal(p.events.filter((e) => e.type === 'backend_down').length, 0, '50% of one backend is none');

  // Clients that give up before the (slow) answer: 499s, never a backend fault.
  mode = 'slow';
  for (let i = 0; i < 6; i++) {
    await request(`${p.url}/all`, { signal: AbortSignal.timeout(50) }).then((r) => r.body.dump(), () => undefined);
  }
  await sleep(700);
  assert.equal(p.events.filter((e) => e.type === 'backend_down').length, 0, 'clients leaving ejected nothing');

  // The same backend failing under max_ejection_percent 100: ejected, and its pool fails over.
  mode = 'fail';
  for (let i = 0; i < 2; i++) await get(p, '/all');
  await p.waitFor((e) => e.type === 'backend_down' && e.by === 'outlier' && e.pool === 'all', 2000, 'ejection in pool all');
  await p.waitFor((e) => e.type === 'failover_activated' && e.pool === 'all', 2000, 'pool all fails over');
  assert.equal((await get(p, '/all')).body, 'backup');
  assert.equal(p.events.filter((e) => e.type === 'backend_down' && e.pool === 'app').length, 0, 'pool app: still not ejected');
});

test('a primary that stops answering (per_try_timeout with hedging): each try without an answer is a gateway error, so it is ejected after consecutive_gateway_errors and no request fails', async (t) => {
  const [stalling, backup] = await startBackends('stalling', 'backup') as [TestBackend, TestBackend];
  let stalled = false;
  stalling.handler = () => stalled; // true: read, never answered (its /health still answers)
  // Probes slow enough that only real traffic can take the primary out during the test.
  const slow = 'health_check: { interval: "30s", timeout: "1s" }';
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${stalling.address}", ${slow} }
      - { address: "${backup.address}", failover_level: 1, ${slow} }
    retry: { per_try_timeout: "100ms", hedge: true }
    outlier_detection: { consecutive_5xx: 0, consecutive_gateway_errors: 3, base_ejection: "30s", max_ejection_percent: 100 }
routes:
  - pool: app
`);
  t.after(async () => { await p.stop(); await stalling.kill(); await backup.kill(); });
  await p.waitReady();
  assert.equal((await get(p)).body, 'stalling');
  stalled = true;
  const bodies: { status: number; body: string }[] = [];
  for (let i = 0; i < 6; i++) bodies.push(await get(p));
  assert.deepEqual(bodies.map((b) => b.status), [200, 200, 200, 200, 200, 200], 'every request answered (by the hedge)');
  assert.ok(bodies.every((b) => b.body === 'backup'), JSON.stringify(bodies));
  const ejected = await p.waitFor((e) => e.type === 'backend_down' && e.by === 'outlier', 2000, 'the ejection');
  assert.match(ejected.type === 'backend_down' ? ejected.error : '', /3 consecutive gateway errors \(last: failed \(no response within per_try_timeout\); consecutive_gateway_errors 3\)/);
  await p.waitFor((e) => e.type === 'failover_activated', 2000, 'the pool fails over');
  const before = stalling.seen.length;
  for (let i = 0; i < 5; i++) assert.equal((await get(p)).body, 'backup');
  assert.equal(stalling.seen.length, before, 'an ejected primary gets no more tries');
});
