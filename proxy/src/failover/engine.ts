// Failover decisions for one pool, as a pure function of (state, level health, policy, now).
// No timers, no clock: the caller passes `now` and sleeps until `wakeAt`.
//
// Words. A level is *eligible* while at least one of its backends serves (not down, weight > 0). The *active*
// level is where the pool sends new requests; failover is active while it is > 0 or the pool is manual.
//
//   situation (auto mode)                         | immediate          | delayed                | graceful
//   ----------------------------------------------+--------------------+------------------------+------------------------
//   active level not eligible, a higher one is    | move now           | move after `delay`;    | ramp: +step% per step,
//                                                 |                    | nothing if it recovers | the failing level keeps
//                                                 |                    | before                 | only what it can serve
//   a lower level eligible for recovery_interval  | move back now      | ramp back step% / step | ramp back step% / step
//   active not eligible, a lower level eligible   | move now (no wait: the lower level is the best that can serve)
//   nothing eligible                              | stay; no share (the data plane answers 503)
//
// "Higher" and "lower" are level numbers: level 0 is the primary. Any failure of the returning level resets
// its recovery timer (eligibleSince) and cancels a ramp back onto it.
import type { FailoverPolicy } from '../config/types.ts';

export type Mode = 'auto' | 'manual';

export interface LevelHealth {
  readonly level: number;
  /** Backends of this level that serve (not down, weight > 0). */
  readonly serving: number;
}

export interface Ramp {
  /** Level traffic is leaving. */
  readonly from: number;
  /** Share of new requests on the active level, in percent (the rest stays on `from`). */
  readonly percent: number;
  readonly nextStepAt: number;
}

export interface PoolState {
  readonly mode: Mode;
  readonly active: number;
  readonly ramp: Ramp | undefined;
  /** delayed strategy: since when the active level has not been eligible. */
  readonly failingSince: number | undefined;
  /** Per level: since when it has been eligible without a break. */
  readonly eligibleSince: ReadonlyMap<number, number>;
  /** When the current failover started (active > 0 or manual), else undefined. */
  readonly failoverSince: number | undefined;
  readonly failovers: number;
}

export interface Share {
  readonly level: number;
  readonly percent: number;
  /**
   * Send to this level's backends even though none is known to serve: the pool's routing has not changed yet
   * (delayed strategy inside its delay, automatic failover disabled). Per-request rescue still saves requests
   * that fail there.
   */
  readonly evenIfDown?: true;
}

export type FailoverEvent =
  | { readonly type: 'failover_activated'; readonly pool: string; readonly from: number; readonly to: number; readonly reason: string; readonly at: number }
  | { readonly type: 'level_changed'; readonly pool: string; readonly from: number; readonly to: number; readonly reason: string; readonly at: number }
  | { readonly type: 'failover_recovered'; readonly pool: string; readonly from: number; readonly to: number; readonly durationMs: number; readonly reason: string; readonly at: number }
  | { readonly type: 'ramp_step'; readonly pool: string; readonly from: number; readonly to: number; readonly percent: number; readonly at: number };

export interface Decision {
  readonly state: PoolState;
  readonly events: readonly FailoverEvent[];
  /** Shares of new requests by level (empty: nothing can serve). */
  readonly shares: readonly Share[];
  /** When to evaluate again even if no health changes (a timer is due), or undefined. */
  readonly wakeAt: number | undefined;
}

export function initialPoolState(): PoolState {
  return { mode: 'auto', active: 0, ramp: undefined, failingSince: undefined, eligibleSince: new Map(), failoverSince: undefined, failovers: 0 };
}

export interface Input {
  readonly pool: string;
  readonly levels: readonly LevelHealth[];
  readonly policy: FailoverPolicy;
  readonly now: number;
}

/** Manual failover: the pool moves to its lowest eligible level above 0 (or the first level above 0) at once. */
export function activate(state: PoolState, input: Input): Decision {
  return evaluate({ ...state, mode: 'manual' }, input);
}

/** Back to automatic behaviour; the recovery rules decide when traffic returns. */
export function deactivate(state: PoolState, input: Input): Decision {
  return evaluate({ ...state, mode: 'auto' }, input);
}

export function evaluate(prev: PoolState, input: Input): Decision {
  const { levels, policy, now, pool } = input;
  const eligible = new Set(levels.filter((l) => l.serving > 0).map((l) => l.level));
  const eligibleSince = new Map<number, number>();
  for (const level of eligible) eligibleSince.set(level, prev.eligibleSince.get(level) ?? now);
  const known = levels.map((l) => l.level).sort((a, b) => a - b);
  const lowest = known.find((l) => eligible.has(l));

  let state: PoolState = { ...prev, eligibleSince };
  const events: FailoverEvent[] = [];
  const timers: number[] = [];

  const moveTo = (to: number, reason: string, ramp: Ramp | undefined): void => {
    const from = state.active;
    if (to === from) return;
    const wasActive = state.failoverSince !== undefined;
    const nowActive = to > 0 || state.mode === 'manual';
    if (!wasActive && nowActive) {
      events.push({ type: 'failover_activated', pool, from, to, reason, at: now });
      state = { ...state, failoverSince: now, failovers: state.failovers + 1 };
    } else if (wasActive && !nowActive) {
      events.push({ type: 'failover_recovered', pool, from, to, durationMs: now - (state.failoverSince as number), reason, at: now });
      state = { ...state, failoverSince: undefined };
    } else {
      events.push({ type: 'level_changed', pool, from, to, reason, at: now });
    }
    state = { ...state, active: to, ramp, failingSince: undefined };
  };

  const rampFrom = (from: number): Ramp | undefined =>
    policy.stepPercent >= 100 ? undefined : { from, percent: policy.stepPercent, nextStepAt: now + policy.stepIntervalMs };

  if (state.mode === 'manual') {
    // Manual: the lowest eligible level above 0, else the first level above 0 (ordered regardless of health).
    const target = known.find((l) => l > 0 && eligible.has(l)) ?? known.find((l) => l > 0) ?? state.active;
    if (state.failoverSince === undefined) {
      events.push({ type: 'failover_activated', pool, from: state.active, to: target, reason: 'manual activation', at: now });
      state = { ...state, failoverSince: now, failovers: state.failovers + 1, active: target, ramp: undefined, failingSince: undefined };
    } else if (target !== state.active) {
      moveTo(target, eligible.has(state.active) ? 'manual activation' : `level ${state.active} has no healthy backend`, undefined);
    }
  } else if (lowest === undefined) {
    // Nothing can serve: keep the declared level; the data plane answers 503 until something recovers.
    state = { ...state, ramp: undefined };
  } else if (!eligible.has(state.active)) {
    const reason = `level ${state.active} has no healthy backend`;
    if (!policy.enabled) {
      // No automatic failover: the pool stays declared on its level (per-request rescue still applies).
    } else if (lowest < state.active) {
      moveTo(lowest, `${reason}; level ${lowest} is healthy`, undefined);
    } else if (policy.strategy === 'delayed') {
      const since = state.failingSince ?? now;
      if (now - since >= policy.delayMs) moveTo(lowest, `${reason} for ${policy.delayMs}ms`, undefined);
      else { state = { ...state, failingSince: since }; timers.push(since + policy.delayMs); }
    } else if (policy.strategy === 'graceful') {
      moveTo(lowest, reason, rampFrom(state.active));
    } else {
      moveTo(lowest, reason, undefined);
    }
  } else {
    // The active level serves. Failback: the lowest level below it that has been eligible for recovery_interval.
    state = { ...state, failingSince: undefined };
    const back = known.find((l) => l < state.active && eligible.has(l) && now - (eligibleSince.get(l) as number) >= policy.recoveryIntervalMs);
    if (back !== undefined && policy.enabled) {
      const reason = `level ${back} healthy for ${policy.recoveryIntervalMs}ms`;
      moveTo(back, reason, policy.strategy === 'immediate' ? undefined : rampFrom(state.active));
    } else if (policy.enabled) {
      for (const l of known) {
        if (l < state.active && eligible.has(l)) timers.push((eligibleSince.get(l) as number) + policy.recoveryIntervalMs);
      }
    }
  }

  // Advance a ramp; a ramp whose source level no longer serves is over (nothing left to move).
  const ramp = state.ramp;
  if (ramp !== undefined) {
    if (!eligible.has(ramp.from) || !eligible.has(state.active)) {
      state = { ...state, ramp: undefined };
    } else if (now >= ramp.nextStepAt) {
      const steps = 1 + Math.floor((now - ramp.nextStepAt) / policy.stepIntervalMs);
      const percent = Math.min(100, ramp.percent + steps * policy.stepPercent);
      events.push({ type: 'ramp_step', pool, from: ramp.from, to: state.active, percent, at: now });
      state = { ...state, ramp: percent >= 100 ? undefined : { ...ramp, percent, nextStepAt: ramp.nextStepAt + steps * policy.stepIntervalMs } };
    }
    if (state.ramp !== undefined) timers.push(state.ramp.nextStepAt);
  }

  return { state, events, shares: shares(state, eligible, lowest), wakeAt: timers.length ? Math.min(...timers) : undefined };
}

function shares(state: PoolState, eligible: ReadonlySet<number>, lowest: number | undefined): Share[] {
  if (lowest === undefined) return [];
  const r = state.ramp;
  if (r !== undefined && eligible.has(r.from) && eligible.has(state.active)) {
    return [{ level: state.active, percent: r.percent }, { level: r.from, percent: 100 - r.percent }];
  }
  if (eligible.has(state.active)) return [{ level: state.active, percent: 100 }];
  return [{ level: state.active, percent: 100, evenIfDown: true }];
}
