// The failover engine over many random health timelines, driven the way the controller drives it: evaluate on
// every health change, and in between whenever the engine asks to be woken (`wakeAt`). After every step the
// engine's invariants must hold; once health stops changing, the pool must settle where SPEC 2 says within a
// bounded time. A manual clock: `now` is a number. The generator is seeded; a failure prints the seed and the
// timeline so it can be replayed as a table test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FailoverPolicy, Strategy } from '@veloflux/config/types';
import { activate, deactivate, evaluate, GRACEFUL_FAILING_BELOW, initialPoolState } from '../src/engine.ts';
import type { Decision, LevelHealth, PoolState } from '../src/engine.ts';
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

function checkStep(world: World, serving: readonly number[], now: number, d: Decision, healthyFrom: ReadonlyMap<number, number>, prev: PoolState): void {
  const { state, shares, wakeAt } = d;
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
  // Whenever a transition is pending, the engine must ask to be woken.
  const earlierHealthy = serving.some((n, l) => l < state.active && healthy(world, n, l));
  if (earlierHealthy) assert.notEqual(wakeAt, undefined, `level below ${state.active} is healthy but no wakeAt`);
  if (state.ramp !== undefined) assert.notEqual(wakeAt, undefined, 'a ramp is running but no wakeAt');
  // (While nothing serves there is nowhere to go: the delay's start is kept, and the next health change decides.)
  if (state.failingSince !== undefined && serves.some(Boolean)) assert.notEqual(wakeAt, undefined, 'a delay is running but no wakeAt');

  // Failback only after recovery_interval of continuous health (the test keeps its own record of since when).
  if (prev.mode === 'auto' && state.active < prev.active && healthy(world, serving[prev.active] ?? 0, prev.active)) {
    const since = healthyFrom.get(state.active);
    assert.ok(since !== undefined && now - since >= world.policy.recoveryIntervalMs,
      `failback ${prev.active}->${state.active} at ${now}, level healthy since ${since}, recovery ${world.policy.recoveryIntervalMs}`);
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
  const step = (action?: 'activate' | 'deactivate'): void => {
    const input = { pool: 'p', levels: levelsOf(world, serving), policy, now };
    const prev = state;
    d = action === 'activate' ? activate(state, input) : action === 'deactivate' ? deactivate(state, input) : evaluate(state, input);
    state = d.state;
    log.push(`t=${now} serving=${serving.join(',')}${action ? ` ${action}` : ''} -> active ${state.active} shares ${d.shares.map((s) => `${s.level}:${s.percent}`).join(' ')} wake ${d.wakeAt}`);
    checkStep(world, serving, now, d, healthyFrom, prev);
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
    serving = serving.slice();
    const l = Math.floor(r() * nLevels);
    serving[l] = Math.floor(r() * ((sizes[l] as number) + 1));
    track();
    step();
  }

  // Health stops changing. Back to automatic mode, then let the engine run on its timers alone.
  now += 1;
  step('deactivate');
  const settledFrom = now;
  const lowest = serving.findIndex((n, l) => healthy(world, n, l));
  const bound = settledFrom + policy.delayMs + policy.recoveryIntervalMs + rampMs(policy) + policy.stepIntervalMs;
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
