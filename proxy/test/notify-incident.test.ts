// The incident tracker as tables: events in, at given times (a manual clock), verdicts out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IncidentTracker } from '../src/notify/incident.ts';
import type { TrackerLimits, Verdict } from '../src/notify/incident.ts';
import type { ProxyEvent } from '../src/control/events.ts';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const LIMITS: TrackerLimits = { dedupeWindowMs: 60_000, rateBurst: 4, rateRefillMs: 10_000, rateReserve: 1 };

const down = (backend: string, at: number, level = 0): ProxyEvent => ({ type: 'backend_down', pool: 'app', backend, level, error: 'ECONNREFUSED', by: 'probe', at });
const up = (backend: string, at: number, level = 0): ProxyEvent => ({ type: 'backend_up', pool: 'app', backend, level, at });
const activated = (at: number, to = 1): ProxyEvent => ({ type: 'failover_activated', pool: 'app', from: 0, to, reason: 'level 0 has no healthy backend', at });
const changed = (at: number, from = 1, to = 2): ProxyEvent => ({ type: 'level_changed', pool: 'app', from, to, reason: `level ${from} has no healthy backend`, at });
const recovered = (at: number, durationMs: number): ProxyEvent => ({ type: 'failover_recovered', pool: 'app', from: 1, to: 0, durationMs, reason: 'level 0 healthy', at });

/** Runs events at their own `at` as `now`; gives one compact row per verdict. */
function run(tracker: IncidentTracker, events: ProxyEvent[]): string[] {
  return events.map((e) => {
    const v: Verdict = tracker.observe(e, e.at);
    if (!v.send) return `${e.type}: ${v.why}`;
    const n = v.notice;
    return `${n.kind} incident=${n.incident?.id ?? '-'} down=[${n.backendsDown.map((d) => d.backend).join(',')}]${n.suppressed ? ` suppressed=${n.suppressed}` : ''}`;
  });
}

test('one incident: activation, cascade, backend notices and recovery share its id; the activation lists the backends down', () => {
  const t = new IncidentTracker({ ...LIMITS, rateBurst: 100 });
  assert.deepEqual(run(t, [
    down('a:80', T0), down('b:80', T0 + 1), activated(T0 + 2),
    { type: 'ramp_step', pool: 'app', from: 0, to: 1, percent: 50, at: T0 + 3 },
    down('c:80', T0 + 4, 1), changed(T0 + 5), up('a:80', T0 + 6), recovered(T0 + 7000, 6998),
  ]), [
    'backend_down incident=- down=[a:80]',
    'backend_down incident=- down=[a:80,b:80]',
    'failover_activated incident=app-20260102T030405Z down=[a:80,b:80]',
    'ramp_step: ignored',
    'backend_down incident=app-20260102T030405Z down=[a:80,b:80,c:80]',
    'level_changed incident=app-20260102T030405Z down=[a:80,b:80,c:80]',
    'backend_up incident=app-20260102T030405Z down=[b:80,c:80]',
    'failover_recovered incident=app-20260102T030405Z down=[b:80,c:80]',
  ]);
  assert.equal(t.openIncident('app'), undefined);
});

test('the recovery restates its activation; two incidents in one second get distinct ids', () => {
  const t = new IncidentTracker(LIMITS);
  const a = t.observe(activated(T0), T0);
  const r = t.observe(recovered(T0 + 500, 500), T0 + 500);
  const a2 = t.observe(activated(T0 + 600), T0 + 600);
  assert.ok(a.send && r.send && a2.send);
  assert.deepEqual(r.notice.incident, a.notice.incident);
  assert.equal(r.notice.durationMs, 500);
  assert.equal(a2.notice.incident?.id, 'app-20260102T030405Z-2');
  assert.notEqual(a.notice.id, r.notice.id);
});

test('dedupe: repeats inside the window are dropped, outside it they are sent again; alternating states are never repeats', () => {
  const W = LIMITS.dedupeWindowMs;
  const rows: Array<[string, ProxyEvent[], string[]]> = [
    ['the same activation twice (a reload) while the incident is open', [activated(T0), activated(T0 + 10)],
      ['failover_activated incident=app-20260102T030405Z down=[]', 'failover_activated: duplicate']],
    ['an activation to another level while open reads as a level change', [activated(T0), activated(T0 + 10, 2)],
      ['failover_activated incident=app-20260102T030405Z down=[]', 'level_changed incident=app-20260102T030405Z down=[]']],
    ['the same recovery twice', [activated(T0), recovered(T0 + 100, 100), recovered(T0 + 200, 200)],
      ['failover_activated incident=app-20260102T030405Z down=[]', 'failover_recovered incident=app-20260102T030405Z down=[]', 'failover_recovered: duplicate']],
    ['backend down twice inside the window, then again after it', [down('a:80', T0), down('a:80', T0 + 10), down('a:80', T0 + W)],
      ['backend_down incident=- down=[a:80]', 'backend_down: duplicate', 'backend_down incident=- down=[a:80]']],
    ['down, up, down: each a change, none a repeat', [down('a:80', T0), up('a:80', T0 + 10), down('a:80', T0 + 20)],
      ['backend_down incident=- down=[a:80]', 'backend_up incident=- down=[]', 'backend_down incident=- down=[a:80]']],
  ];
  for (const [name, events, want] of rows) assert.deepEqual(run(new IncidentTracker(LIMITS), events), want, name);
});

test('rate limit per pool: backend churn keeps a reserve for the failover; a suppressed activation suppresses its recovery', () => {
  // burst 4, reserve 1: backend notices may take 3 tokens, the activation the last one.
  const t = new IncidentTracker(LIMITS);
  assert.deepEqual(run(t, [
    down('a:80', T0), down('b:80', T0), down('c:80', T0), down('d:80', T0), activated(T0 + 1), up('a:80', T0 + 2),
  ]), [
    'backend_down incident=- down=[a:80]',
    'backend_down incident=- down=[a:80,b:80]',
    'backend_down incident=- down=[a:80,b:80,c:80]',
    'backend_down: rate_limited',
    'failover_activated incident=app-20260102T030405Z down=[a:80,b:80,c:80,d:80] suppressed=1',
    'backend_up: rate_limited',
  ]);
  // The recovery needs no token (its activation was sent) and says how many were held back since the last
  // notice. A backend notice needs more than the reserve (1): after 2 x rateRefillMs there are 2 tokens.
  assert.deepEqual(run(t, [recovered(T0 + 10_001, 10_000), up('b:80', T0 + 10_002), up('b:80', T0 + 20_000)]), [
    'failover_recovered incident=app-20260102T030405Z down=[b:80,c:80,d:80] suppressed=1',
    'backend_up: rate_limited',
    'backend_up incident=- down=[c:80,d:80] suppressed=1',
  ]);

  // An empty bucket suppresses the activation, then its level change and its recovery: no half incidents.
  const t2 = new IncidentTracker({ ...LIMITS, rateBurst: 1, rateReserve: 0 });
  assert.deepEqual(run(t2, [down('a:80', T0), activated(T0 + 1), changed(T0 + 2), recovered(T0 + 3, 2)]), [
    'backend_down incident=- down=[a:80]', 'failover_activated: rate_limited', 'level_changed: rate_limited', 'failover_recovered: rate_limited',
  ]);
  // Pools have their own buckets.
  const other: ProxyEvent = { type: 'failover_activated', pool: 'other', from: 0, to: 1, reason: 'r', at: T0 + 4 };
  assert.equal(t2.observe(other, T0 + 4).send, true);
});

test('refill: one token per rateRefillMs, never above the burst; drills bypass the bucket', () => {
  const t = new IncidentTracker({ ...LIMITS, rateBurst: 2, rateReserve: 0 });
  const rows: Array<[number, boolean]> = [[0, true], [0, true], [0, false], [9_999, false], [10_000, true], [10_000, false], [100_000, true], [100_000, true], [100_000, false]];
  rows.forEach(([dt, sent], i) => {
    const v = t.observe(down(`b${i}:80`, T0 + dt), T0 + dt);
    assert.equal(v.send, sent, `row ${i} at +${dt}ms`);
  });
  const drill = t.drill('app', 'drill', T0 + 100_000);
  assert.equal(drill.test, true);
  assert.equal(drill.kind, 'drill');
});
