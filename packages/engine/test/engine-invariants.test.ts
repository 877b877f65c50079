// The failover engine over many random health timelines, driven the way the controller drives it: evaluate on
// every health change, and in between whenever the engine asks to be woken (`wakeAt`). After every step the
// engine's invariants must hold; once health stops changing, the pool must settle where SPEC 2 says within a
// bounded time. A manual clock: `now` is a number. The generator is seeded; a failure prints the seed and the
// timeline so it can be replayed as a table test. Engine v2 (SPEC 10): each timeline may carry hold-down, a ramp gate
// (with random traffic figures, bad ones included) and manual failback (with random approvals); their own
// invariants are checked alongside.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FailoverPolicy, Strategy } from '@veloflux/config/types';
import { activate, approveFailback, deactivate, evaluate, GRACEFUL_FAILING_BELOW, holdFor, initialPoolState } from '../src/engine.ts';
import type { Decision, LevelHealth, LevelTraffic, PoolState } from '../src/engine.ts';
import { rng } from '../../../proxy/test/helpers/rng.ts';

const SEED = 0x5eed_2026;
const TIMELINES = 3000;
const CHANGES_PER_TIMELINE = 25;
/** Wake-ups the engine may ask for between two health changes before the test calls it a busy loop. */
const MAX_WAKES_BETWEEN_CHANGES = 200;

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

interface World {
  readonly policy: FailoverPolicy;
  /** Backends per level (weight 100 each). */
  readonly sizes: readonly number[];
}

function levelsOf(world: World, serving: readonly number[]): LevelHealth[] {
  return serving.map((n, level) => ({ level, serving: n, servingWeight: n * 100, totalWeight: (world.sizes[level] as number) * 100 }));
}

/** The test's own reading of SPEC 2, written apart from the engine: is this level carrying its traffic? */
function healthy(world: World, serving: number, level: number): boolean {
  if (serving === 0) return false;
  return world.policy.strategy !== 'graceful' || serving * 100 >= (world.sizes[level] as number) * 100 * GRACEFUL_FAILING_BELOW;
}

/** Time a ramp needs from its first step to 100%. */
function rampMs(policy: FailoverPolicy): number {
  return policy.stepPercent >= 100 ? 0 : Math.ceil((100 - policy.stepPercent) / policy.stepPercent) * policy.stepIntervalMs;
}

type Action = 'activate' | 'deactivate' | 'approve';

/** What the test follows of flapping episodes from the events alone. */
interface Episodes { open: boolean; started: number; ended: number }

function checkStep(world: World, serving: readonly number[], now: number, d: Decision, healthyFrom: ReadonlyMap<number, number>, prev: PoolState, action: Action | undefined, episodes: Episodes): void {
  const { state, shares, wakeAt } = d;
  const { policy } = world;

  // v2 state is consistent with the policy.
  if (state.rampPaused !== undefined) assert.notEqual(state.ramp, undefined, 'a paused ramp without a ramp');
  if (state.rampPaused !== undefined) assert.notEqual(policy.rampGate, undefined, 'a ramp paused without a gate');
  if (state.awaitingApproval !== undefined) {
    assert.equal(policy.failback, 'manual', 'awaiting approval under failback auto');
    assert.equal(state.mode, 'auto', 'awaiting approval in manual mode');
    assert.ok(state.awaitingApproval.to < state.active, 'awaiting a failback to a later level');
  }
  assert.equal(state.failbackApproved, undefined, 'an approval outlived its decision');
  if (policy.holdDown === undefined) assert.equal(state.flapping, undefined, 'flapping without hold_down');
  // One flapping event per episode, and an end only after a start.
  for (const e of d.events) {
    if (e.type === 'flapping') { assert.ok(!episodes.open, 'a second flapping event in one episode'); episodes.open = true; episodes.started++; }
    if (e.type === 'flapping_ended') { assert.ok(episodes.open, 'flapping_ended without an episode'); episodes.open = false; episodes.ended++; }
    if (e.type === 'ramp_paused') assert.ok(prev.rampPaused === undefined, 'ramp_paused twice in a row');
    if (e.type === 'ramp_resumed') assert.ok(prev.rampPaused !== undefined, 'ramp_resumed without a pause');
    if (e.type === 'failback_awaiting_approval') assert.equal(policy.failback, 'manual');
  }
  assert.equal(episodes.open, state.flapping !== undefined, 'flapping state and events disagree');
  if (state.flapping !== undefined && policy.holdDown !== undefined) {
    assert.equal(state.flapping.holdMs, holdFor(policy.holdDown, state.flapping.failovers));
    assert.ok(state.flapping.holdMs <= policy.holdDown.maxHoldMs, 'hold above max_hold');
  }
  const serves = serving.map((n) => n > 0);

  // Shares: empty exactly when nothing serves; else they sum to 100 and name serving levels (or the declared
  // level, flagged evenIfDown, while the pool's routing has not moved yet).
  if (!serves.some(Boolean)) assert.deepEqual(shares, [], 'nothing serves: no share');
  else {
    assert.equal(shares.reduce((s, x) => s + x.percent, 0), 100, 'shares sum to 100');
    for (const s of shares) {
      assert.ok(s.percent > 0 && s.percent <= 100, `share of level ${s.level} is ${s.percent}%`);
      if (s.evenIfDown) assert.equal(s.level, state.active, 'only the declared level is used while down');
      else assert.ok(serves[s.level], `share on level ${s.level}, which serves nothing`);
    }
  }

  // A timer in the past (or now) would be a busy loop or a missed step.
  if (wakeAt !== undefined) assert.ok(wakeAt > now, `wakeAt ${wakeAt} is not after now ${now}`);

  if (state.mode !== 'auto') return;
  // Whenever a transition is pending, the engine must ask to be woken (a failback awaiting approval waits for
  // the approval, not for a time).
  const earlierHealthy = serving.some((n, l) => l < state.active && healthy(world, n, l));
  if (earlierHealthy && state.awaitingApproval === undefined) assert.notEqual(wakeAt, undefined, `level below ${state.active} is healthy but no wakeAt`);
  if (state.ramp !== undefined) assert.notEqual(wakeAt, undefined, 'a ramp is running but no wakeAt');
  // (While nothing serves there is nowhere to go: the delay's start is kept, and the next health change decides.)
  if (state.failingSince !== undefined && serves.some(Boolean)) assert.notEqual(wakeAt, undefined, 'a delay is running but no wakeAt');

  // Failback only after recovery_interval of continuous health (the test keeps its own record of since when),
  // and with hold-down only after min_dwell on the level left and, while flapping, the hold; with failback
  // manual only on an approval of a failback that was awaited.
  if (prev.mode === 'auto' && state.active < prev.active && healthy(world, serving[prev.active] ?? 0, prev.active)) {
    const since = healthyFrom.get(state.active);
    // (An episode that ends in this decision, flap_window after its last failover, no longer holds.)
    const need = state.flapping === undefined ? policy.recoveryIntervalMs : Math.max(policy.recoveryIntervalMs, state.flapping.holdMs);
    assert.ok(since !== undefined && now - since >= need,
      `failback ${prev.active}->${state.active} at ${now}, level healthy since ${since}, needs ${need}`);
    if (policy.holdDown !== undefined && prev.levelSince !== undefined) {
      assert.ok(now - prev.levelSince >= policy.holdDown.minDwellMs, `failback ${prev.active}->${state.active} at ${now}, ${now - prev.levelSince}ms after the level took traffic (min_dwell ${policy.holdDown.minDwellMs})`);
    }
    if (policy.failback === 'manual') {
      assert.equal(action, 'approve', `failback ${prev.active}->${state.active} at ${now} without an approval`);
      assert.notEqual(prev.awaitingApproval, undefined, 'approved a failback that was not awaited');
    }
  }
}

function runTimeline(r: () => number, log: string[]): void {
  const strategy = pick<Strategy>(r, ['immediate', 'graceful', 'delayed']);
  const policy: FailoverPolicy = {
    enabled: true,
    strategy,
    checkIntervalMs: 1000,
    recoveryIntervalMs: pick(r, [500, 2000, 10_000]),
    delayMs: pick(r, [1000, 5000]),
    stepPercent: pick(r, [10, 25, 34, 50, 100]),
    stepIntervalMs: pick(r, [300, 2000]),
    holdDown: r() < 0.5 ? undefined : { minDwellMs: pick(r, [100, 1000, 5000]), flapThreshold: pick(r, [1, 2, 3]), flapWindowMs: pick(r, [5000, 30_000]), maxHoldMs: pick(r, [2000, 20_000]) },
    rampGate: r() < 0.5 ? undefined : { maxErrorPercent: pick(r, [0, 5, 50]), maxP99Ms: pick(r, [10, 500]) },
    failback: pick(r, ['auto', 'auto', 'manual'] as const),
  };
  const nLevels = pick(r, [2, 3, 4]);
  const sizes = Array.from({ length: nLevels }, () => pick(r, [1, 1, 2, 4]));
  const world: World = { policy, sizes };
  log.push(`policy ${JSON.stringify(policy)} sizes ${JSON.stringify(sizes)}`);

  let state = initialPoolState();
  let serving = sizes.slice();
  let now = 0;
  // Since when each level has been healthy without a break, as the test sees it.
  const healthyFrom = new Map<number, number>();
  const track = (): void => {
    serving.forEach((n, l) => {
      if (!healthy(world, n, l)) healthyFrom.delete(l);
      else if (!healthyFrom.has(l)) healthyFrom.set(l, now);
    });
  };
  let d: Decision;
  const episodes: Episodes = { open: false, started: 0, ended: 0 };
  // Traffic figures of the last step, random (bad ones included) while health changes; good ones once it settles.
  let settling = false;
  const traffic = (): LevelTraffic[] | undefined => {
    if (settling) return r() < 0.5 ? undefined : serving.map((_, level) => ({ level, requests: 100, errors: 0, p99Ms: 1 }));
    if (r() < 0.3) return undefined;
    return serving.map((_, level) => ({ level, requests: pick(r, [0, 10, 100]), errors: pick(r, [0, 0, 1, 50]), p99Ms: pick(r, [1, 100, 1000, null]) })).map((t) => ({ ...t, errors: Math.min(t.errors, t.requests) }));
  };
  const step = (action?: Action): void => {
    const input = { pool: 'p', levels: levelsOf(world, serving), policy, now, traffic: traffic() };
    const prev = state;
    d = action === 'activate' ? activate(state, input) : action === 'deactivate' ? deactivate(state, input) : action === 'approve' ? approveFailback(state, input) : evaluate(state, input);
    state = d.state;
    log.push(`t=${now} serving=${serving.join(',')}${action ? ` ${action}` : ''} -> active ${state.active} shares ${d.shares.map((s) => `${s.level}:${s.percent}`).join(' ')} wake ${d.wakeAt}${state.flapping ? ' flapping' : ''}${state.rampPaused ? ' paused' : ''}${state.awaitingApproval ? ' awaiting' : ''} events ${d.events.map((e) => e.type).join(',')}`);
    checkStep(world, serving, now, d, healthyFrom, prev, action, episodes);
  };
  // Wake the pool whenever it asks, up to (and excluding) `until`.
  const follow = (until: number): void => {
    for (let i = 0; d.wakeAt !== undefined && d.wakeAt < until; i++) {
      assert.ok(i < MAX_WAKES_BETWEEN_CHANGES, 'the engine keeps asking to be woken');
      now = d.wakeAt;
      step();
    }
  };

  track();
  step();
  for (let c = 0; c < CHANGES_PER_TIMELINE; c++) {
    const next = now + pick(r, [1, 100, 300, 700, 1500, 4000, 12_000]);
    follow(next);
    now = next;
    const roll = r();
    if (roll < 0.05) { step('activate'); continue; }
    if (roll < 0.1) { step('deactivate'); continue; }
    if (roll < 0.15) { step('approve'); continue; }
    serving = serving.slice();
    const l = Math.floor(r() * nLevels);
    serving[l] = Math.floor(r() * ((sizes[l] as number) + 1));
    track();
    step();
  }

  // Health stops changing. Back to automatic mode, then let the engine run on its timers alone (approving each
  // failback that waits, with failback manual); the traffic is good from here on.
  settling = true;
  now += 1;
  step('deactivate');
  const settledFrom = now;
  const lowest = serving.findIndex((n, l) => healthy(world, n, l));
  const h = policy.holdDown;
  // Each failback of a cascade may wait for min_dwell and the hold; the flapping episode ends within its window.
  const holdMs = h === undefined ? 0 : Math.max(h.minDwellMs, h.maxHoldMs, h.flapWindowMs) * nLevels;
  const bound = settledFrom + policy.delayMs + (policy.recoveryIntervalMs + rampMs(policy) + policy.stepIntervalMs) * nLevels + holdMs + policy.stepIntervalMs;
  for (let i = 0; i <= nLevels; i++) {
    follow(bound + 1);
    if (state.awaitingApproval === undefined) break;
    now += 1;
    step('approve');
  }
  follow(bound + 1);
  assert.equal(d!.wakeAt, undefined, `still waking after ${bound - settledFrom}ms of stable health`);
  if (lowest >= 0) {
    assert.equal(state.active, lowest, `settled on ${state.active}, lowest healthy level is ${lowest}`);
    assert.deepEqual(d!.shares.map((s) => [s.level, s.percent]), [[lowest, 100]], 'all traffic on the lowest healthy level');
  }
}

test(`engine invariants hold over ${TIMELINES} random health timelines (seed ${SEED})`, () => {
  const r = rng(SEED);
  for (let i = 0; i < TIMELINES; i++) {
    const log: string[] = [];
    try {
      runTimeline(r, log);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      assert.fail(`timeline ${i} of seed ${SEED}: ${msg}\n${log.slice(-40).join('\n')}`);
    }
  }
});
