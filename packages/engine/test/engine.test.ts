// The failover engine as timelines: at each time, the serving backends per level (and an optional manual
// action) go in; the active level, the shares and the events come out. A manual clock: `now` is just a number.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FailoverPolicy } from '@veloflux/config/types';
import { activate, deactivate, evaluate, initialPoolState } from '../src/engine.ts';
import type { Decision, PoolState } from '../src/engine.ts';

const POLICY: FailoverPolicy = { enabled: true, strategy: 'immediate', checkIntervalMs: 1000, recoveryIntervalMs: 10_000, delayMs: 30_000, stepPercent: 25, stepIntervalMs: 5000 };

interface Step {
  at: number;
  /** Serving backends at levels 0, 1, 2 (each of weight 100; level sizes from the timeline, default 1 each). */
  serving: [number, number, number];
  action?: 'activate' | 'deactivate';
  /** Expected: active level, shares as "level:percent", events as "type from->to". */
  active: number;
  shares: string;
  events?: string[];
  wakeAt?: number;
}

function timeline(policy: FailoverPolicy, steps: Step[], sizes: [number, number, number] = [1, 1, 1]): PoolState {
  let state = initialPoolState();
  for (const s of steps) {
    const levels = s.serving.map((n, level) => ({ level, serving: n, servingWeight: n * 100, totalWeight: (sizes[level] as number) * 100 }));
    const input = { pool: 'p', levels, policy, now: s.at };
    const d: Decision = s.action === 'activate' ? activate(state, input) : s.action === 'deactivate' ? deactivate(state, input) : evaluate(state, input);
    state = d.state;
    const label = `t=${s.at}`;
    assert.equal(d.state.active, s.active, `${label}: active level`);
    assert.equal(d.shares.map((x) => `${x.level}:${x.percent}${x.evenIfDown ? '!' : ''}`).join(' '), s.shares, `${label}: shares`);
    assert.deepEqual(d.events.map((e) => `${e.type} ${e.from}->${e.to}${e.type === 'ramp_step' ? ` ${e.percent}%` : ''}`), s.events ?? [], `${label}: events`);
    if ('wakeAt' in s) assert.equal(d.wakeAt, s.wakeAt, `${label}: wakeAt`);
  }
  return state;
}

test('immediate: failover to level 1, cascade to 2, failback after recovery_interval', () => {
  const end = timeline(POLICY, [
    { at: 0, serving: [1, 1, 1], active: 0, shares: '0:100' },
    { at: 1000, serving: [0, 1, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 2000, serving: [0, 0, 1], active: 2, shares: '2:100', events: ['level_changed 1->2'] },
    { at: 3000, serving: [1, 0, 1], active: 2, shares: '2:100', wakeAt: 13_000 },
    { at: 12_999, serving: [1, 0, 1], active: 2, shares: '2:100' },
    { at: 13_000, serving: [1, 0, 1], active: 0, shares: '0:100', events: ['failover_recovered 2->0'], wakeAt: undefined },
  ]);
  assert.equal(end.failovers, 1);
  assert.equal(end.failoverSince, undefined);
});

test('recovery: any failure of the returning level resets its timer', () => {
  timeline(POLICY, [
    { at: 0, serving: [0, 1, 0], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 1000, serving: [1, 1, 0], active: 1, shares: '1:100', wakeAt: 11_000 },
    { at: 5000, serving: [0, 1, 0], active: 1, shares: '1:100', wakeAt: undefined },
    { at: 6000, serving: [1, 1, 0], active: 1, shares: '1:100', wakeAt: 16_000 },
    { at: 11_000, serving: [1, 1, 0], active: 1, shares: '1:100' },
    { at: 16_000, serving: [1, 1, 0], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
  ]);
});

test('recovery: when the active level dies, a healthy lower level takes over without waiting', () => {
  timeline(POLICY, [
    { at: 0, serving: [0, 1, 1], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 1000, serving: [1, 1, 1], active: 1, shares: '1:100' },
    { at: 2000, serving: [1, 0, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
  ]);
});

test('recovery: the best level that has been healthy long enough comes first', () => {
  timeline(POLICY, [
    { at: 0, serving: [0, 0, 1], active: 2, shares: '2:100', events: ['failover_activated 0->2'] },
    { at: 1000, serving: [0, 1, 1], active: 2, shares: '2:100' },
    { at: 5000, serving: [1, 1, 1], active: 2, shares: '2:100' },
    { at: 11_000, serving: [1, 1, 1], active: 1, shares: '1:100', events: ['level_changed 2->1'] },
    { at: 15_000, serving: [1, 1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'] },
  ]);
});

test('nothing serves: no share (the data plane answers 503), and no event', () => {
  timeline(POLICY, [
    { at: 0, serving: [1, 1, 0], active: 0, shares: '0:100' },
    { at: 1000, serving: [0, 0, 0], active: 0, shares: '' },
    { at: 2000, serving: [0, 1, 0], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
  ]);
});

test('failover disabled: the pool stays declared on level 0; requests still go where they can be served', () => {
  timeline({ ...POLICY, enabled: false }, [
    { at: 0, serving: [0, 1, 0], active: 0, shares: '0:100!' },
    { at: 60_000, serving: [0, 1, 0], active: 0, shares: '0:100!' },
  ]);
});

test('manual: activate moves to level 1 regardless of health; deactivate returns by the recovery rules', () => {
  const end = timeline(POLICY, [
    { at: 0, serving: [1, 1, 1], active: 0, shares: '0:100' },
    { at: 1000, serving: [1, 1, 1], action: 'activate', active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 50_000, serving: [1, 1, 1], active: 1, shares: '1:100' },
    { at: 51_000, serving: [1, 0, 1], active: 2, shares: '2:100', events: ['level_changed 1->2'] },
    { at: 52_000, serving: [1, 0, 1], action: 'deactivate', active: 0, shares: '0:100', events: ['failover_recovered 2->0'] },
  ]);
  assert.equal(end.mode, 'auto');
});

test('delayed: a failure that clears within the delay declares nothing; one that lasts fails over', () => {
  const policy = { ...POLICY, strategy: 'delayed' as const };
  timeline(policy, [
    { at: 0, serving: [0, 1, 0], active: 0, shares: '0:100!', wakeAt: 30_000 },
    { at: 20_000, serving: [1, 1, 0], active: 0, shares: '0:100', wakeAt: undefined },
    { at: 25_000, serving: [0, 1, 0], active: 0, shares: '0:100!', wakeAt: 55_000 },
    { at: 55_000, serving: [0, 1, 0], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
  ]);
});

test('graceful failback: traffic returns step_percent per step_interval; a failure cancels the ramp', () => {
  const policy = { ...POLICY, strategy: 'graceful' as const };
  timeline(policy, [
    { at: 0, serving: [0, 1, 0], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 1000, serving: [1, 1, 0], active: 1, shares: '1:100' },
    { at: 11_000, serving: [1, 1, 0], active: 0, shares: '0:25 1:75', events: ['failover_recovered 1->0'], wakeAt: 16_000 },
    { at: 16_000, serving: [1, 1, 0], active: 0, shares: '0:50 1:50', events: ['ramp_step 1->0 50%'] },
    { at: 31_000, serving: [1, 1, 0], active: 0, shares: '0:100', events: ['ramp_step 1->0 100%'], wakeAt: undefined },
  ]);
});

test('graceful failover: a level below half capacity hands traffic over step by step; it keeps the rest while it serves', () => {
  const policy = { ...POLICY, strategy: 'graceful' as const };
  timeline(policy, [
    { at: 0, serving: [4, 1, 1], active: 0, shares: '0:100' },
    { at: 1000, serving: [2, 1, 1], active: 0, shares: '0:100' },
    { at: 2000, serving: [1, 1, 1], active: 1, shares: '1:25 0:75', events: ['failover_activated 0->1'], wakeAt: 7000 },
    { at: 7000, serving: [1, 1, 1], active: 1, shares: '1:50 0:50', events: ['ramp_step 0->1 50%'], wakeAt: 12_000 },
    { at: 9000, serving: [0, 1, 1], active: 1, shares: '1:100', wakeAt: undefined },
  ], [4, 1, 1]);
});

test('graceful: a ramp evaluated late catches up the steps it missed', () => {
  const policy = { ...POLICY, strategy: 'graceful' as const };
  timeline(policy, [
    { at: 0, serving: [4, 1, 0], active: 0, shares: '0:100' },
    { at: 1000, serving: [1, 1, 0], active: 1, shares: '1:25 0:75', events: ['failover_activated 0->1'], wakeAt: 6000 },
    { at: 16_000, serving: [1, 1, 0], active: 1, shares: '1:100', events: ['ramp_step 0->1 100%'], wakeAt: undefined },
  ], [4, 1, 1]);
});

test('delayed: flapping inside the delay declares nothing and keeps restarting the delay', () => {
  const policy = { ...POLICY, strategy: 'delayed' as const, delayMs: 10_000 };
  const end = timeline(policy, [
    { at: 0, serving: [1, 1, 0], active: 0, shares: '0:100' },
    { at: 1000, serving: [0, 1, 0], active: 0, shares: '0:100!', wakeAt: 11_000 },
    { at: 3000, serving: [1, 1, 0], active: 0, shares: '0:100', wakeAt: undefined },
    { at: 4000, serving: [0, 1, 0], active: 0, shares: '0:100!', wakeAt: 14_000 },
    { at: 6000, serving: [1, 1, 0], active: 0, shares: '0:100' },
    { at: 7000, serving: [0, 1, 0], active: 0, shares: '0:100!', wakeAt: 17_000 },
    { at: 16_999, serving: [0, 1, 0], active: 0, shares: '0:100!' },
    { at: 17_000, serving: [0, 1, 0], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
  ]);
  assert.equal(end.failovers, 1);
});

test('manual activate during a failback ramp puts all traffic on level 1; deactivate during a ramp resumes the rules', () => {
  const policy = { ...POLICY, strategy: 'graceful' as const };
  timeline(policy, [
    { at: 0, serving: [0, 1, 0], active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 1000, serving: [1, 1, 0], active: 1, shares: '1:100' },
    { at: 11_000, serving: [1, 1, 0], active: 0, shares: '0:25 1:75', events: ['failover_recovered 1->0'] },
    { at: 12_000, serving: [1, 1, 0], action: 'activate', active: 1, shares: '1:100', events: ['failover_activated 0->1'] },
    { at: 13_000, serving: [1, 1, 0], action: 'deactivate', active: 0, shares: '0:25 1:75', events: ['failover_recovered 1->0'], wakeAt: 18_000 },
    { at: 18_000, serving: [1, 1, 0], active: 0, shares: '0:50 1:50', events: ['ramp_step 1->0 50%'] },
  ]);
});

test('automatic failover turned off while failed over (override inactive): traffic returns to level 0 at once', () => {
  let state = initialPoolState();
  const levels = (n0: number) => [{ level: 0, serving: n0, servingWeight: n0 * 100, totalWeight: 100 }, { level: 1, serving: 1, servingWeight: 100, totalWeight: 100 }];
  state = evaluate(state, { pool: 'p', levels: levels(0), policy: POLICY, now: 0 }).state;
  assert.equal(state.active, 1);
  state = evaluate(state, { pool: 'p', levels: levels(1), policy: POLICY, now: 1000 }).state;
  assert.equal(state.active, 1, 'still waiting for recovery_interval');
  const off = evaluate(state, { pool: 'p', levels: levels(1), policy: { ...POLICY, enabled: false }, now: 2000 });
  assert.equal(off.state.active, 0);
  assert.deepEqual(off.events.map((e) => `${e.type} ${e.type === 'ramp_step' ? '' : e.reason}`), ['failover_recovered automatic failover is off']);
});

// Issue #20: a cascade whose levels recover close together. Level 1 is back at 1000, level 0 at 1300; the
// pool first returns to level 1 (healthy for recovery_interval first) and must still wake for level 0 at 3300:
// before the fix, the move to level 1 left no timer and the pool stayed on the backup for good.
const RECOVERY_2S = { ...POLICY, recoveryIntervalMs: 2000 };

test('failback through an intermediate level: the earlier level still pending keeps a timer (immediate)', () => {
  timeline(RECOVERY_2S, [
    { at: 0, serving: [0, 0, 1], active: 2, shares: '2:100', events: ['failover_activated 0->2'], wakeAt: undefined },
    { at: 1000, serving: [0, 1, 1], active: 2, shares: '2:100', wakeAt: 3000 },
    { at: 1300, serving: [1, 1, 1], active: 2, shares: '2:100', wakeAt: 3000 },
    { at: 3000, serving: [1, 1, 1], active: 1, shares: '1:100', events: ['level_changed 2->1'], wakeAt: 3300 },
    { at: 3300, serving: [1, 1, 1], active: 0, shares: '0:100', events: ['failover_recovered 1->0'], wakeAt: undefined },
  ]);
});

test('failback through an intermediate level: the earlier level still pending keeps a timer (graceful ramps)', () => {
  timeline({ ...RECOVERY_2S, strategy: 'graceful' }, [
    { at: 0, serving: [0, 0, 1], active: 2, shares: '2:100', events: ['failover_activated 0->2'] },
    { at: 1000, serving: [0, 1, 1], active: 2, shares: '2:100', wakeAt: 3000 },
    { at: 1300, serving: [1, 1, 1], active: 2, shares: '2:100', wakeAt: 3000 },
    // The ramp back onto level 1 would step at 8000; level 0's interval ends first.
    { at: 3000, serving: [1, 1, 1], active: 1, shares: '1:25 2:75', events: ['level_changed 2->1'], wakeAt: 3300 },
    // Level 0 takes over the return: a ramp from level 1 (level 2 keeps nothing from here on).
    { at: 3300, serving: [1, 1, 1], active: 0, shares: '0:25 1:75', events: ['failover_recovered 1->0'], wakeAt: 8300 },
    { at: 8300, serving: [1, 1, 1], active: 0, shares: '0:50 1:50', events: ['ramp_step 1->0 50%'], wakeAt: 13_300 },
    { at: 18_300, serving: [1, 1, 1], active: 0, shares: '0:100', events: ['ramp_step 1->0 100%'], wakeAt: undefined },
  ]);
});

test('failback through an intermediate level: the earlier level still pending keeps a timer (delayed)', () => {
  timeline({ ...RECOVERY_2S, strategy: 'delayed', delayMs: 5000 }, [
    { at: 0, serving: [1, 1, 1], active: 0, shares: '0:100' },
    { at: 1000, serving: [0, 0, 1], active: 0, shares: '0:100!', wakeAt: 6000 },
    { at: 6000, serving: [0, 0, 1], active: 2, shares: '2:100', events: ['failover_activated 0->2'], wakeAt: undefined },
    { at: 7000, serving: [0, 1, 1], active: 2, shares: '2:100', wakeAt: 9000 },
    { at: 7300, serving: [1, 1, 1], active: 2, shares: '2:100', wakeAt: 9000 },
    { at: 9000, serving: [1, 1, 1], active: 1, shares: '1:25 2:75', events: ['level_changed 2->1'], wakeAt: 9300 },
    { at: 9300, serving: [1, 1, 1], active: 0, shares: '0:25 1:75', events: ['failover_recovered 1->0'], wakeAt: 14_300 },
  ]);
});
