// Engine v2 rules (SPEC 10) as timelines over a manual clock: hold-down (min_dwell, flapping, exponential hold),
// the ramp gate, failback approval, and how each plays with delayed/graceful strategies and manual mode.
// Each step gives the serving backends per level (one backend of weight 100 per level unless sized), an optional
// action and the traffic of the last step; it expects the active level, the shares and the events.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FailoverPolicy } from '@veloflux/config/types';
import { activate, approveFailback, deactivate, evaluate, holdFor, initialPoolState } from '../src/engine.ts';
import type { Decision, LevelTraffic, PoolState } from '../src/engine.ts';

const BASE: FailoverPolicy = { enabled: true, strategy: 'immediate', checkIntervalMs: 1000, recoveryIntervalMs: 1000, delayMs: 5000, stepPercent: 25, stepIntervalMs: 5000 };
const HOLD = { minDwellMs: 10_000, flapThreshold: 3, flapWindowMs: 60_000, maxHoldMs: 80_000 };

interface Step {
  at: number;
  serving: [number, number] | [number, number, number];
  action?: 'activate' | 'deactivate' | 'approve';
  /** Traffic of the last step, per level: [requests, errors, p99Ms]. */
  traffic?: Record<number, [number, number, number | null]>;
  active: number;
  shares: string;
  events?: string[];
  wakeAt?: number;
  check?: (s: PoolState) => void;
}

function describeEvent(e: Decision['events'][number]): string {
  const base = `${e.type} ${e.from}->${e.to}`;
  if (e.type === 'ramp_step' || e.type === 'ramp_paused' || e.type === 'ramp_resumed') return `${base} ${e.percent}%`;
  if (e.type === 'flapping') return `${base} x${e.failovers} hold ${e.holdMs}`;
  return base;
}

function timeline(policy: FailoverPolicy, steps: Step[], sizes: number[] = [1, 1, 1]): PoolState {
  let state = initialPoolState();
  for (const s of steps) {
    const levels = s.serving.map((n, level) => ({ level, serving: n, servingWeight: n * 100, totalWeight: (sizes[level] as number) * 100 }));
    const traffic: LevelTraffic[] | undefined = s.traffic && Object.entries(s.traffic).map(([level, [requests, errors, p99Ms]]) => ({ level: Number(level), requests, errors, p99Ms }));
    const input = { pool: 'p', levels, policy, now: s.at, traffic };
    const act = s.action === 'activate' ? activate : s.action === 'deactivate' ? deactivate : s.action === 'approve' ? approveFailback : evaluate;
    const d = act(state, input);
    state = d.state;
    const label = `t=${s.at}`;
    assert.equal(d.state.active, s.active, `${label}: active level`);
    assert.equal(d.shares.map((x) => `${x.level}:${x.percent}${x.evenIfDown ? '!' : ''}`).join(' '), s.shares, `${label}: shares`);
    assert.deepEqual(d.events.map(describeEvent), s.events ?? [], `${label}: events`);
    if ('wakeAt' in s) assert.equal(d.wakeAt, s.wakeAt, `${label}: wakeAt`);
    s.check?.(state);
  }
  return state;
}

test('hold: 2 x min_dwell at the flap_threshold-th failover, doubled at each further one, capped at max_hold', () => {
  assert.deepEqual([3, 4, 5, 6, 7].map((n) => holdFor(HOLD, n)), [20_000, 40_000, 80_000, 80_000, 80_000]);
  assert.equal(holdFor({ ...HOLD, flapThreshold: 1 }, 1), 20_000);
  assert.equal(holdFor(HOLD, 10_000), 80_000, 'a huge count does not overflow the cap');
});

test('min_dwell: the backup keeps traffic for min_dwell although the primary is healthy earlier; its own failure still moves', () => {
  const policy = { ...BASE, holdDown: HOLD };
  timeline(policy, [
    { at: 0, serving: [0, 1, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    // Level 0 healthy at 1000: recovery_interval (1 s) is over at 2000, min_dwell only at 10 000.
    { at: 1000, serving: [1, 1, 1], active: 1, shares: '1:100', wakeAt: 10_000 },
    { at: 2000, serving: [1, 1, 1], active: 1, shares: '1:100', wakeAt: 10_000 },
    { at: 10_000, serving: [1, 1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
    // Level 0 just took traffic; it fails itself: it moves at once (min_dwell holds failback only).
    { at: 10_500, serving: [0, 1, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    // The backup dies within its dwell: traffic goes on to level 2 at once.
    { at: 11_000, serving: [0, 0, 1], active: 2, shares: '2:100', events: ['level_changed 1->2'] },
  ]);
});

test('hold-down off (no hold_down block): the v1 rules exactly, no flapping however often the pool fails over', () => {
  const steps: Step[] = [];
  for (let i = 0; i < 6; i++) {
    steps.push({ at: i * 4000, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] });
    steps.push({ at: i * 4000 + 1000, serving: [1, 1], active: 1, shares: '1:100', wakeAt: i * 4000 + 2000 });
    steps.push({ at: i * 4000 + 2000, serving: [1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] });
  }
  const end = timeline(BASE, steps);
  assert.equal(end.failovers, 6);
  assert.equal(end.flapping, undefined);
});

test('flapping: the flap_threshold-th failover inside flap_window starts one episode; the hold keeps traffic on the backup', () => {
  const policy = { ...BASE, holdDown: { ...HOLD, minDwellMs: 1000 } };
  const end = timeline(policy, [
    { at: 0, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 500, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 1500 },
    { at: 1500, serving: [1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
    { at: 3000, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 3500, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 4500 },
    { at: 4500, serving: [1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
    // Third failover within 60 s: flapping; the hold is 2 x min_dwell = 2 s.
    { at: 6000, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1', 'flapping 0->1 x3 hold 2000'],
      check: (s) => assert.deepEqual(s.flapping, { since: 6000, failovers: 3, holdMs: 2000 }) },
    // Level 0 healthy at 6500: recovery_interval and min_dwell would allow 7500; the hold says 8500.
    { at: 6500, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 8500 },
    { at: 7500, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 8500 },
    // A break resets the hold's count.
    { at: 8000, serving: [0, 1], active: 1, shares: '1:100', wakeAt: 66_000 },
    { at: 8200, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 10_200 },
    { at: 10_200, serving: [1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
    // A fourth failover in the episode: no second `flapping`, the hold doubles.
    { at: 11_000, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'],
      check: (s) => assert.deepEqual(s.flapping, { since: 6000, failovers: 4, holdMs: 4000 }) },
    { at: 11_500, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 15_500 },
    { at: 15_500, serving: [1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'], wakeAt: 71_000 },
    // flap_window (60 s) after the last failover: the episode ends, once.
    { at: 71_000, serving: [1, 1], active: 0, shares: '0:100', events: ['flapping_ended 0->0'], wakeAt: undefined },
    { at: 72_000, serving: [1, 1], active: 0, shares: '0:100' },
  ]);
  assert.equal(end.flapping, undefined);
  assert.deepEqual(end.recentFailovers, []);
});

test('flapping: failovers older than flap_window do not count', () => {
  const policy = { ...BASE, holdDown: { ...HOLD, minDwellMs: 1000, flapWindowMs: 10_000 } };
  const cycle = (t: number, events: string[] = ['failover_activated 0->1']): Step[] => [
    { at: t, serving: [0, 1], active: 1, shares: '1:100', events },
    { at: t + 500, serving: [1, 1], active: 1, shares: '1:100' },
    { at: t + 1500, serving: [1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
  ];
  timeline(policy, [...cycle(0), ...cycle(11_000), ...cycle(16_000), ...cycle(20_000, ['failover_activated 0->1', 'flapping 0->1 x3 hold 2000']).slice(0, 1)]);
});

test('flapping, the acceptance shape: down/up every 2 s for a minute gives at most 3 failovers and one flapping event', () => {
  // The e2e test's settings: 1 s recovery, min_dwell 5 s, threshold 3; health seen at once.
  const policy = { ...BASE, holdDown: { minDwellMs: 5000, flapThreshold: 3, flapWindowMs: 60_000, maxHoldMs: 60_000 } };
  let state = initialPoolState();
  const events: string[] = [];
  let wake: number | undefined;
  const run = (now: number, up: boolean): void => {
    const d = evaluate(state, { pool: 'p', levels: [{ level: 0, serving: up ? 1 : 0, servingWeight: up ? 100 : 0, totalWeight: 100 }, { level: 1, serving: 1, servingWeight: 100, totalWeight: 100 }], policy, now });
    state = d.state;
    wake = d.wakeAt;
    events.push(...d.events.map((e) => e.type));
  };
  let up = true;
  run(0, up);
  for (let t = 2000; t <= 60_000; t += 2000) {
    while (wake !== undefined && wake < t) run(wake, up);
    up = !up;
    run(t, up);
  }
  assert.ok(state.failovers <= 3, `${state.failovers} failovers`);
  assert.equal(events.filter((e) => e === 'flapping').length, 1);
  assert.equal(state.active, 1, 'held on the backup while the primary flaps');
});

test('flapping with graceful: the hold applies to the failback ramp too; a manual activation never counts', () => {
  const policy = { ...BASE, strategy: 'graceful' as const, stepPercent: 50, stepIntervalMs: 1000, holdDown: { ...HOLD, minDwellMs: 1000, flapThreshold: 2 } };
  timeline(policy, [
    { at: 0, serving: [1, 1], action: 'activate', active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 100, serving: [1, 1], action: 'deactivate', active: 1, shares: '1:100', wakeAt: 1000 },
    { at: 1000, serving: [1, 1], active: 0, shares: '0:50 1:50', events: ['failover_recovered 1->0'] },
    { at: 2000, serving: [1, 1], active: 0, shares: '0:100', events: ['ramp_step 1->0 100%'] },
    { at: 3000, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'], check: (s) => assert.equal(s.flapping, undefined, 'the manual one did not count') },
    { at: 3100, serving: [1, 1], active: 1, shares: '1:100' },
    { at: 4100, serving: [1, 1], active: 0, shares: '0:50 1:50', events: ['failover_recovered 1->0'] },
    { at: 4500, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1', 'flapping 0->1 x2 hold 2000'] },
    { at: 5000, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 7000 },
    { at: 7000, serving: [1, 1], active: 0, shares: '0:50 1:50', events: ['failover_recovered 1->0'] },
  ]);
});

test('flapping with delayed: failures inside the delay declare nothing and count nothing', () => {
  const policy = { ...BASE, strategy: 'delayed' as const, delayMs: 3000, holdDown: { ...HOLD, minDwellMs: 1000, flapThreshold: 1 } };
  timeline(policy, [
    { at: 0, serving: [0, 1], active: 0, shares: '0:100!', wakeAt: 3000 },
    { at: 2000, serving: [1, 1], active: 0, shares: '0:100' },
    { at: 2500, serving: [0, 1], active: 0, shares: '0:100!', wakeAt: 5500 },
    { at: 5500, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1', 'flapping 0->1 x1 hold 2000'] },
  ]);
});

const GATE = { maxErrorPercent: 5, maxP99Ms: 500 };

test('ramp gate: a graceful failover ramp pauses while the backup errs, resumes one step when it recovers', () => {
  const policy = { ...BASE, strategy: 'graceful' as const, rampGate: GATE };
  timeline(policy, [
    { at: 0, serving: [4, 1], active: 0, shares: '0:100' },
    { at: 1000, serving: [1, 1], active: 1, shares: '1:25 0:75', events: ['failover_activated 0->1'], wakeAt: 6000 },
    { at: 6000, serving: [1, 1], traffic: { 0: [300, 0, 20], 1: [100, 1, 30] }, active: 1, shares: '1:50 0:50', events: ['ramp_step 0->1 50%'], wakeAt: 11_000 },
    // 30 of 200 answers were errors (15% > 5%): the step waits.
    { at: 11_000, serving: [1, 1], traffic: { 1: [200, 30, 40] }, active: 1, shares: '1:50 0:50', events: ['ramp_paused 0->1 50%'], wakeAt: 16_000,
      check: (s) => assert.match(s.rampPaused?.reason ?? '', /level 1 answered 15\.0% errors .*max_error_percent 5/) },
    // Still bad (slow now): still paused, no second event; the reason follows.
    { at: 16_000, serving: [1, 1], traffic: { 1: [200, 0, 900] }, active: 1, shares: '1:50 0:50', wakeAt: 21_000,
      check: (s) => assert.match(s.rampPaused?.reason ?? '', /p99 900ms .*max_p99 500ms/) },
    // A health change between steps does not bypass the gate.
    { at: 18_000, serving: [1, 1], active: 1, shares: '1:50 0:50', wakeAt: 21_000 },
    { at: 21_000, serving: [1, 1], traffic: { 1: [200, 2, 100] }, active: 1, shares: '1:75 0:25', events: ['ramp_resumed 0->1 75%', 'ramp_step 0->1 75%'], wakeAt: 26_000,
      check: (s) => assert.equal(s.rampPaused, undefined) },
    { at: 26_000, serving: [1, 1], traffic: { 1: [200, 0, 100] }, active: 1, shares: '1:100', events: ['ramp_step 0->1 100%'], wakeAt: undefined },
  ], [4, 1]);
});

test('ramp gate: a failback ramp is judged on the level taking traffic back; no traffic figures or no requests: on time', () => {
  const policy = { ...BASE, strategy: 'graceful' as const, rampGate: GATE };
  timeline(policy, [
    { at: 0, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 100, serving: [1, 1], active: 1, shares: '1:100' },
    { at: 1100, serving: [1, 1], active: 0, shares: '0:25 1:75', events: ['failover_recovered 1->0'], wakeAt: 6100 },
    // The backup is bad, the primary fine: the primary is the one judged.
    { at: 6100, serving: [1, 1], traffic: { 0: [100, 0, 10], 1: [300, 90, 2000] }, active: 0, shares: '0:50 1:50', events: ['ramp_step 1->0 50%'] },
    { at: 11_100, serving: [1, 1], traffic: { 0: [0, 0, null] }, active: 0, shares: '0:75 1:25', events: ['ramp_step 1->0 75%'] },
    { at: 16_100, serving: [1, 1], active: 0, shares: '0:100', events: ['ramp_step 1->0 100%'] },
  ]);
});

test('ramp gate: p99 beyond the histogram counts as too slow; a paused ramp whose level fails ends with the usual rules', () => {
  const policy = { ...BASE, strategy: 'graceful' as const, rampGate: GATE };
  timeline(policy, [
    { at: 0, serving: [4, 1, 1], active: 0, shares: '0:100' },
    { at: 1000, serving: [1, 1, 1], active: 1, shares: '1:25 0:75', events: ['failover_activated 0->1'] },
    { at: 6000, serving: [1, 1, 1], traffic: { 1: [10, 0, null] }, active: 1, shares: '1:25 0:75', events: ['ramp_paused 0->1 25%'] },
    { at: 7000, serving: [1, 0, 1], active: 2, shares: '2:100', events: ['level_changed 1->2'], check: (s) => assert.equal(s.rampPaused, undefined) },
  ], [4, 1, 1]);
});

test('ramp gate with manual mode: activate ends a paused ramp at once (manual means all of it)', () => {
  const policy = { ...BASE, strategy: 'graceful' as const, rampGate: GATE };
  timeline(policy, [
    { at: 0, serving: [4, 1], active: 0, shares: '0:100' },
    { at: 1000, serving: [1, 1], active: 1, shares: '1:25 0:75', events: ['failover_activated 0->1'] },
    { at: 6000, serving: [1, 1], traffic: { 1: [100, 50, 10] }, active: 1, shares: '1:25 0:75', events: ['ramp_paused 0->1 25%'] },
    { at: 7000, serving: [1, 1], action: 'activate', active: 1, shares: '1:100', check: (s) => { assert.equal(s.rampPaused, undefined); assert.equal(s.ramp, undefined); } },
  ], [4, 1]);
});

test('failback manual: traffic stays on the backup until approved; one awaiting event per wait', () => {
  const policy = { ...BASE, failback: 'manual' as const };
  timeline(policy, [
    { at: 0, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 500, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 1500 },
    { at: 1500, serving: [1, 1], active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'], wakeAt: undefined,
      check: (s) => assert.deepEqual(s.awaitingApproval, { since: 1500, to: 0 }) },
    { at: 60_000, serving: [1, 1], active: 1, shares: '1:100' },
    // The primary fails again: the wait ends without a move; healthy again, a new wait, a new event.
    { at: 61_000, serving: [0, 1], active: 1, shares: '1:100', check: (s) => assert.equal(s.awaitingApproval, undefined) },
    { at: 62_000, serving: [1, 1], active: 1, shares: '1:100' },
    { at: 63_000, serving: [1, 1], active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'] },
    { at: 64_000, serving: [1, 1], action: 'approve', active: 0, shares: '0:100', events: ['failover_recovered 1->0'],
      check: (s) => { assert.equal(s.awaitingApproval, undefined); assert.equal(s.failbackApproved, undefined); } },
  ]);
});

test('failback manual: an approval while nothing awaits is not kept for later', () => {
  const policy = { ...BASE, failback: 'manual' as const };
  timeline(policy, [
    { at: 0, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 100, serving: [0, 1], action: 'approve', active: 1, shares: '1:100' },
    { at: 500, serving: [1, 1], action: 'approve', active: 1, shares: '1:100', wakeAt: 1500 },
    { at: 1500, serving: [1, 1], active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'] },
  ]);
});

test('failback manual: a failing active level still moves to a healthy earlier one without approval', () => {
  const policy = { ...BASE, failback: 'manual' as const };
  timeline(policy, [
    { at: 0, serving: [0, 1, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 500, serving: [1, 1, 1], active: 1, shares: '1:100' },
    { at: 1500, serving: [1, 1, 1], active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'] },
    { at: 2000, serving: [1, 0, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
  ]);
});

test('failback manual, cascade: each failback waits for its own approval', () => {
  const policy = { ...BASE, failback: 'manual' as const };
  timeline(policy, [
    { at: 0, serving: [0, 0, 1], active: 2, shares: '2:100', events: ['failover_activated 0->2'] },
    { at: 500, serving: [0, 1, 1], active: 2, shares: '2:100' },
    { at: 1500, serving: [0, 1, 1], active: 2, shares: '2:100', events: ['failback_awaiting_approval 2->1'] },
    { at: 1600, serving: [0, 1, 1], action: 'approve', active: 1, shares: '1:100', events: ['level_changed 2->1'] },
    { at: 2000, serving: [1, 1, 1], active: 1, shares: '1:100' },
    { at: 3000, serving: [1, 1, 1], active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'] },
    { at: 3100, serving: [1, 1, 1], action: 'approve', active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
  ]);
});

test('failback manual: the wait moves to a better level that becomes ready (a new event names it)', () => {
  const policy = { ...BASE, failback: 'manual' as const };
  timeline(policy, [
    { at: 0, serving: [0, 0, 1], active: 2, shares: '2:100', events: ['failover_activated 0->2'] },
    { at: 500, serving: [0, 1, 1], active: 2, shares: '2:100' },
    { at: 1500, serving: [0, 1, 1], active: 2, shares: '2:100', events: ['failback_awaiting_approval 2->1'] },
    { at: 2000, serving: [1, 1, 1], active: 2, shares: '2:100', wakeAt: 3000 },
    { at: 3000, serving: [1, 1, 1], active: 2, shares: '2:100', events: ['failback_awaiting_approval 2->0'] },
    { at: 3100, serving: [1, 1, 1], action: 'approve', active: 0, shares: '0:100', events: ['failover_recovered 2->0'] },
  ]);
});

test('failback manual with manual mode: activate clears the wait; deactivate hands the pool to the rules (a wait again)', () => {
  const policy = { ...BASE, failback: 'manual' as const };
  timeline(policy, [
    { at: 0, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 500, serving: [1, 1], active: 1, shares: '1:100' },
    { at: 1500, serving: [1, 1], active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'] },
    { at: 2000, serving: [1, 1], action: 'activate', active: 1, shares: '1:100', check: (s) => assert.equal(s.awaitingApproval, undefined) },
    { at: 2100, serving: [1, 1], action: 'approve', active: 1, shares: '1:100' },
    { at: 3000, serving: [1, 1], action: 'deactivate', active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'] },
    { at: 3100, serving: [1, 1], action: 'approve', active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
  ]);
});

test('failback manual with graceful and a gate: approval starts the ramp back; the gate then judges it', () => {
  const policy = { ...BASE, strategy: 'graceful' as const, failback: 'manual' as const, rampGate: GATE, stepPercent: 50 };
  timeline(policy, [
    { at: 0, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 500, serving: [1, 1], active: 1, shares: '1:100' },
    { at: 1500, serving: [1, 1], active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'] },
    { at: 2000, serving: [1, 1], action: 'approve', active: 0, shares: '0:50 1:50', events: ['failover_recovered 1->0'], wakeAt: 7000 },
    { at: 7000, serving: [1, 1], traffic: { 0: [100, 40, 10] }, active: 0, shares: '0:50 1:50', events: ['ramp_paused 1->0 50%'] },
    { at: 12_000, serving: [1, 1], traffic: { 0: [100, 0, 10] }, active: 0, shares: '0:100', events: ['ramp_resumed 1->0 100%', 'ramp_step 1->0 100%'] },
  ]);
});

test('failback manual with hold-down: the wait begins only when min_dwell and the hold allow the failback', () => {
  const policy = { ...BASE, failback: 'manual' as const, holdDown: { ...HOLD, minDwellMs: 4000 } };
  timeline(policy, [
    { at: 0, serving: [0, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 500, serving: [1, 1], active: 1, shares: '1:100', wakeAt: 4000 },
    { at: 4000, serving: [1, 1], active: 1, shares: '1:100', events: ['failback_awaiting_approval 1->0'] },
  ]);
});

test('ramp gate: a due step evaluated while its figures are being gathered (trafficPending) waits for them', () => {
  const policy = { ...BASE, strategy: 'graceful' as const, rampGate: GATE };
  const levels = (n0: number) => [{ level: 0, serving: n0, servingWeight: n0 * 100, totalWeight: 400 }, { level: 1, serving: 1, servingWeight: 100, totalWeight: 100 }];
  const started = evaluate(initialPoolState(), { pool: 'p', levels: levels(1), policy, now: 1000 });
  assert.equal(started.state.ramp?.nextStepAt, 6000);
  const pending = evaluate(started.state, { pool: 'p', levels: levels(1), policy, now: 6500, trafficPending: true });
  assert.equal(pending.state.ramp?.percent, 25, 'no step on time alone');
  assert.deepEqual(pending.events, []);
  assert.equal(pending.wakeAt, undefined, 'no timer for the pending step: the caller comes back with the figures');
  const judged = evaluate(pending.state, { pool: 'p', levels: levels(1), policy, now: 6510, traffic: [{ level: 1, requests: 10, errors: 0, p99Ms: 5 }] });
  assert.equal(judged.state.ramp?.percent, 50);
  // Without a gate, trafficPending changes nothing.
  const ungated = evaluate(started.state, { pool: 'p', levels: levels(1), policy: { ...policy, rampGate: undefined }, now: 6500, trafficPending: true });
  assert.equal(ungated.state.ramp?.percent, 50);
});

test('hold-down removed by a reload mid-episode: the episode ends with flapping_ended', () => {
  const policy = { ...BASE, holdDown: { ...HOLD, flapThreshold: 1 } };
  const levels = [{ level: 0, serving: 0, servingWeight: 0, totalWeight: 100 }, { level: 1, serving: 1, servingWeight: 100, totalWeight: 100 }];
  const d = evaluate(initialPoolState(), { pool: 'p', levels, policy, now: 0 });
  assert.ok(d.state.flapping);
  const off = evaluate(d.state, { pool: 'p', levels, policy: BASE, now: 1000 });
  assert.deepEqual(off.events.map((e) => `${e.type} ${e.type === 'ramp_step' ? '' : e.reason}`), ['flapping_ended failover.hold_down removed']);
  assert.equal(off.state.flapping, undefined);
});
