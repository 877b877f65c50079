// Failover decisions for one pool, as a pure function of (state, level health, policy, now).
// No timers, no clock: the caller passes `now` and sleeps until `wakeAt`.
//
// Words. A level *serves* while at least one of its backends serves (not down, weight > 0). A level is *failing*
// when it cannot carry its traffic: under immediate and delayed, when it does not serve at all (SPEC 2: the active
// level is the lowest with a healthy backend); under graceful, already when less than half of its weight serves,
// so the backup can take traffic step by step while the rest of the failing level still answers. The *active*
// level is where the pool declares its traffic; failover is active while it is > 0 or the pool is manual.
//
//   situation (auto mode)                         | immediate          | delayed                | graceful
//   ----------------------------------------------+--------------------+------------------------+------------------------
//   active level failing, a later one is not      | move now           | move after `delay`;    | ramp: the next level gets
//                                                 |                    | nothing if it recovers | step% more every step;
//                                                 |                    | before                 | the failing level keeps the
//                                                 |                    |                        | rest while it serves at all
//   an earlier level not failing for              | move back now      | ramp back step% / step | ramp back step% / step
//   recovery_interval                             |                    |                        |
//   active failing, an earlier level is not       | move now (no wait: the earlier level is the best that can serve)
//   nothing serves                                | stay; no share (the data plane answers 503)
//
// "Earlier" and "later" are level numbers: level 0 is the primary. Any failure of the returning level resets
// its recovery timer (healthySince) and cancels a ramp back onto it. Manual mode (activate) puts the pool on its
// first serving level above 0 at once, whatever the health of level 0; deactivate hands it back to these rules.
//
// Engine v2 (SPEC 10), each rule off unless the policy carries it, so a v1 policy decides exactly as before:
//   hold_down   A level keeps traffic for min_dwell after it took it before traffic fails back from it (a failure
//               of the level itself still moves at once). flap_threshold automatic failovers (failover_activated)
//               inside flap_window make the pool *flapping*: one `flapping` event; from then on failing back needs
//               the earlier level healthy without a break for the hold, max(recovery_interval, 2 x min_dwell x
//               2^(failovers - flap_threshold)) capped at max_hold. flap_window without a failover ends the
//               episode (`flapping_ended`). Manual activations never count.
//   ramp_gate   When a ramp step is due and the caller passes the traffic of the last step, the step waits
//               (`ramp_paused`, once) while the level taking traffic answered more than max_error_percent errors
//               or was slower than max_p99; it is judged again every step_interval and resumes (`ramp_resumed`)
//               with one step. No traffic figures (or no request in the step): the ramp advances on time.
//   failback    manual: a failback the rules would make waits (`failback_awaiting_approval`, once per wait) until
//               approveFailback; the wait ends without a move if the level fails again. A level that fails
//               itself still moves, approved or not.
import type { Share } from './share.ts';

export type { Share };
import type { FailoverPolicy, HoldDownPolicy } from '@veloflux/config/types';

export type Mode = 'auto' | 'manual';

export interface LevelHealth {
  readonly level: number;
  /** Backends of this level that serve (not down, weight > 0). */
  readonly serving: number;
  /** Weight of the serving backends, and of all non-drained backends of the level. */
  readonly servingWeight: number;
  readonly totalWeight: number;
}

/** graceful: a level whose serving weight is below this fraction of its total is failing. */
export const GRACEFUL_FAILING_BELOW = 0.5;

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
  /** delayed strategy: since when the active level has been failing. */
  readonly failingSince: number | undefined;
  /** Per level: since when it has not been failing, without a break. */
  readonly healthySince: ReadonlyMap<number, number>;
  /** When the current failover started (active > 0 or manual), else undefined. */
  readonly failoverSince: number | undefined;
  readonly failovers: number;
  // Engine v2 (SPEC 10); optional so that states built by hand before it still type-check.
  /** When the active level took traffic (hold_down min_dwell). */
  readonly levelSince?: number | undefined;
  /** Times of the automatic failovers inside flap_window, oldest first. */
  readonly recentFailovers?: readonly number[] | undefined;
  readonly flapping?: Flapping | undefined;
  /** The ramp waits on its gate. */
  readonly rampPaused?: { readonly reason: string } | undefined;
  /** failback: manual: the failback that waits for approval. */
  readonly awaitingApproval?: AwaitingApproval | undefined;
  /** Set by approveFailback for one evaluation. */
  readonly failbackApproved?: boolean | undefined;
}

export interface Flapping {
  readonly since: number;
  /** Automatic failovers in the episode (from the flap_threshold-th on). */
  readonly failovers: number;
  /** How long an earlier level must be healthy without a break before traffic fails back to it. */
  readonly holdMs: number;
}

export interface AwaitingApproval {
  readonly since: number;
  /** The level traffic would return to. */
  readonly to: number;
}

/** What the level taking traffic answered during the last step_interval (ramp_gate). */
export interface LevelTraffic {
  readonly level: number;
  readonly requests: number;
  /** 5xx answers and cut responses. */
  readonly errors: number;
  /** p99 latency in ms, null when unknown (no request, or beyond the histogram). */
  readonly p99Ms: number | null;
}

export type FailoverEvent =
  | { readonly type: 'failover_activated'; readonly pool: string; readonly from: number; readonly to: number; readonly reason: string; readonly at: number }
  | { readonly type: 'level_changed'; readonly pool: string; readonly from: number; readonly to: number; readonly reason: string; readonly at: number }
  | { readonly type: 'failover_recovered'; readonly pool: string; readonly from: number; readonly to: number; readonly durationMs: number; readonly reason: string; readonly at: number }
  | { readonly type: 'ramp_step'; readonly pool: string; readonly from: number; readonly to: number; readonly percent: number; readonly at: number }
  | { readonly type: 'ramp_paused'; readonly pool: string; readonly from: number; readonly to: number; readonly percent: number; readonly reason: string; readonly at: number }
  | { readonly type: 'ramp_resumed'; readonly pool: string; readonly from: number; readonly to: number; readonly percent: number; readonly reason: string; readonly at: number }
  // from/to: the failover that made the pool flapping; at its end, the level the pool is on (both).
  | { readonly type: 'flapping'; readonly pool: string; readonly from: number; readonly to: number; readonly failovers: number; readonly holdMs: number; readonly windowMs: number; readonly reason: string; readonly at: number }
  | { readonly type: 'flapping_ended'; readonly pool: string; readonly from: number; readonly to: number; readonly failovers: number; readonly durationMs: number; readonly reason: string; readonly at: number }
  | { readonly type: 'failback_awaiting_approval'; readonly pool: string; readonly from: number; readonly to: number; readonly reason: string; readonly at: number };

export interface Decision {
  readonly state: PoolState;
  readonly events: readonly FailoverEvent[];
  /** Shares of new requests by level (empty: nothing can serve). */
  readonly shares: readonly Share[];
  /** When to evaluate again even if no health changes (a timer is due), or undefined. */
  readonly wakeAt: number | undefined;
}

export function initialPoolState(): PoolState {
  return { mode: 'auto', active: 0, ramp: undefined, failingSince: undefined, healthySince: new Map(), failoverSince: undefined, failovers: 0 };
}

export interface Input {
  readonly pool: string;
  readonly levels: readonly LevelHealth[];
  readonly policy: FailoverPolicy;
  readonly now: number;
  /** ramp_gate: the traffic of each level over the last step_interval; absent, ramps advance on time alone. */
  readonly traffic?: readonly LevelTraffic[] | undefined;
  /**
   * ramp_gate: the caller is gathering the figures of a due step (an evaluation for another reason, e.g. a health
   * change, arrived first): a due step waits for them instead of advancing on time, and asks no timer for
   * itself (the caller evaluates again with `traffic`).
   */
  readonly trafficPending?: boolean | undefined;
}

/** Manual failover: the pool moves to its first serving level above 0 (or the first level above 0) at once. */
export function activate(state: PoolState, input: Input): Decision {
  return evaluate({ ...state, mode: 'manual' }, input);
}

/** Back to automatic behaviour; the recovery rules decide when traffic returns. */
export function deactivate(state: PoolState, input: Input): Decision {
  return evaluate({ ...state, mode: 'auto' }, input);
}

/**
 * failback: manual: approve the failback the pool awaits (state.awaitingApproval); it happens in this decision.
 * Without one awaiting, nothing is approved (an approval is not kept for a later wait).
 */
export function approveFailback(state: PoolState, input: Input): Decision {
  const d = evaluate({ ...state, failbackApproved: state.awaitingApproval !== undefined }, input);
  return { ...d, state: { ...d.state, failbackApproved: undefined } };
}

/** The hold of a flapping pool after `failovers` failovers in its episode (SPEC 10). */
export function holdFor(h: HoldDownPolicy, failovers: number): number {
  const doublings = Math.max(0, failovers - h.flapThreshold);
  // 2^doublings overflows nothing that matters: the cap applies long before (min_dwell >= 1 ms).
  return Math.min(h.maxHoldMs, 2 * h.minDwellMs * 2 ** Math.min(doublings, 40));
}

/**
 * One evaluation in progress: what the levels' health says (fixed for the evaluation) and the state, events and
 * wake-up times produced so far. The steps below each read and extend it; `evaluate` decides which run.
 */
interface Evaluation {
  readonly input: Input;
  /** Levels with at least one serving backend. */
  readonly serves: ReadonlySet<number>;
  /** Levels that are not failing (under the pool's strategy). */
  readonly healthy: ReadonlySet<number>;
  readonly healthySince: ReadonlyMap<number, number>;
  /** Every level of the pool, ascending. */
  readonly known: readonly number[];
  state: PoolState;
  readonly events: FailoverEvent[];
  readonly timers: number[];
}

function observeLevels(prev: PoolState, input: Input): Evaluation {
  const { levels, policy, now } = input;
  const serves = new Set(levels.filter((l) => l.serving > 0).map((l) => l.level));
  const failing = (l: LevelHealth): boolean =>
    policy.strategy === 'graceful' ? l.servingWeight < l.totalWeight * GRACEFUL_FAILING_BELOW || l.serving === 0 : l.serving === 0;
  const healthy = new Set(levels.filter((l) => !failing(l)).map((l) => l.level));
  const healthySince = new Map<number, number>();
  for (const level of healthy) healthySince.set(level, prev.healthySince.get(level) ?? now);
  const known = levels.map((l) => l.level).sort((a, b) => a - b);
  return { input, serves, healthy, healthySince, known, state: { ...prev, healthySince }, events: [], timers: [] };
}

function moveTo(e: Evaluation, to: number, reason: string, ramp: Ramp | undefined): void {
  const { pool, now } = e.input;
  const from = e.state.active;
  if (to === from) return;
  const wasActive = e.state.failoverSince !== undefined;
  const nowActive = to > 0 || e.state.mode === 'manual';
  if (!wasActive && nowActive) {
    e.events.push({ type: 'failover_activated', pool, from, to, reason, at: now });
    e.state = { ...e.state, failoverSince: now, failovers: e.state.failovers + 1 };
    if (e.state.mode === 'auto') countFailover(e, from, to);
  } else if (wasActive && !nowActive) {
    e.events.push({ type: 'failover_recovered', pool, from, to, durationMs: now - (e.state.failoverSince as number), reason, at: now });
    e.state = { ...e.state, failoverSince: undefined };
  } else {
    e.events.push({ type: 'level_changed', pool, from, to, reason, at: now });
  }
  e.state = { ...e.state, active: to, ramp, failingSince: undefined, levelSince: now, rampPaused: undefined, awaitingApproval: undefined };
}

/** hold_down: an automatic failover; the flap_threshold-th inside flap_window starts an episode. */
function countFailover(e: Evaluation, from: number, to: number): void {
  const h = e.input.policy.holdDown;
  if (h === undefined) return;
  const { now, pool } = e.input;
  const recent = [...(e.state.recentFailovers ?? []), now];
  const f = e.state.flapping;
  if (f !== undefined) {
    const failovers = f.failovers + 1;
    e.state = { ...e.state, recentFailovers: recent, flapping: { ...f, failovers, holdMs: holdFor(h, failovers) } };
  } else if (recent.length >= h.flapThreshold) {
    const flapping = { since: now, failovers: recent.length, holdMs: holdFor(h, recent.length) };
    e.events.push({ type: 'flapping', pool, from, to, failovers: recent.length, holdMs: flapping.holdMs, windowMs: h.flapWindowMs, reason: `${recent.length} failovers within ${h.flapWindowMs}ms; failback now needs ${flapping.holdMs}ms of health without a break`, at: now });
    e.state = { ...e.state, recentFailovers: recent, flapping };
  } else {
    e.state = { ...e.state, recentFailovers: recent };
  }
}

/** hold_down: forget failovers older than flap_window; an episode ends flap_window after its last failover. */
function holdDownStep(e: Evaluation): void {
  const h = e.input.policy.holdDown;
  const { now, pool } = e.input;
  if (h === undefined) {
    // hold_down removed from the policy (a reload): an episode in progress ends here.
    const f = e.state.flapping;
    if (f !== undefined) e.events.push({ type: 'flapping_ended', pool, from: e.state.active, to: e.state.active, failovers: f.failovers, durationMs: now - f.since, reason: 'failover.hold_down removed', at: now });
    if (f !== undefined || e.state.recentFailovers !== undefined) e.state = { ...e.state, flapping: undefined, recentFailovers: undefined };
    return;
  }
  const before = e.state.recentFailovers ?? [];
  const recent = before.filter((t) => t > now - h.flapWindowMs);
  if (recent.length !== before.length) e.state = { ...e.state, recentFailovers: recent };
  const f = e.state.flapping;
  if (f !== undefined && recent.length === 0) {
    e.events.push({ type: 'flapping_ended', pool, from: e.state.active, to: e.state.active, failovers: f.failovers, durationMs: now - f.since, reason: `no failover for ${h.flapWindowMs}ms`, at: now });
    e.state = { ...e.state, flapping: undefined };
  }
}

/** How long an earlier level must be healthy before traffic fails back to it, and the earliest time it may. */
function failbackNeed(e: Evaluation): { healthyMs: number; notBefore: number } {
  const { policy } = e.input;
  const h = policy.holdDown;
  const f = e.state.flapping;
  const healthyMs = f === undefined ? policy.recoveryIntervalMs : Math.max(policy.recoveryIntervalMs, f.holdMs);
  const notBefore = h === undefined || e.state.levelSince === undefined ? -Infinity : e.state.levelSince + h.minDwellMs;
  return { healthyMs, notBefore };
}

function rampFrom(e: Evaluation, from: number): Ramp | undefined {
  const { policy, now } = e.input;
  return policy.stepPercent >= 100 ? undefined : { from, percent: policy.stepPercent, nextStepAt: now + policy.stepIntervalMs };
}

/** Manual: the first serving level above 0, else the first level above 0 (regardless of health). */
function manualStep(e: Evaluation): void {
  const { pool, now } = e.input;
  const target = e.known.find((l) => l > 0 && e.serves.has(l)) ?? e.known.find((l) => l > 0) ?? e.state.active;
  if (e.state.failoverSince === undefined) {
    e.events.push({ type: 'failover_activated', pool, from: e.state.active, to: target, reason: 'manual activation', at: now });
    e.state = { ...e.state, failoverSince: now, failovers: e.state.failovers + 1, active: target, ramp: undefined, failingSince: undefined, levelSince: now };
  } else if (target !== e.state.active) {
    moveTo(e, target, e.serves.has(e.state.active) ? 'manual activation' : `level ${e.state.active} has no healthy backend`, undefined);
  }
  // Manual means all of it: a ramp in progress ends with the whole pool on the manual level.
  e.state = { ...e.state, ramp: undefined, rampPaused: undefined, awaitingApproval: undefined };
}

/** The active level is failing and `best` is where traffic should be: move there, by the pool's strategy. */
function failStep(e: Evaluation, best: number): void {
  const { policy, now } = e.input;
  const active = e.state.active;
  const reason = e.serves.has(active) ? `level ${active} has less than half of its capacity` : `level ${active} has no healthy backend`;
  if (best < active) {
    moveTo(e, best, `${reason}; level ${best} is healthy`, undefined);
  } else if (!policy.enabled) {
    // No automatic failover: the pool stays declared on its level (per-request rescue still applies).
  } else if (policy.strategy === 'delayed') {
    const since = e.state.failingSince ?? now;
    if (now - since >= policy.delayMs) moveTo(e, best, `${reason} for ${policy.delayMs}ms`, undefined);
    else { e.state = { ...e.state, failingSince: since }; e.timers.push(since + policy.delayMs); }
  } else if (policy.strategy === 'graceful') {
    moveTo(e, best, reason, rampFrom(e, active));
  } else {
    moveTo(e, best, reason, undefined);
  }
}

/** The active level carries its traffic. Failback: the first earlier level healthy for recovery_interval. */
function recoverStep(e: Evaluation): void {
  const { policy, now } = e.input;
  e.state = { ...e.state, failingSince: undefined };
  const first = e.known.find((l) => e.serves.has(l));
  if (!policy.enabled && first !== undefined && first < e.state.active) {
    // Automatic failover off (failover.enabled: false, override inactive): traffic returns at once.
    moveTo(e, first, 'automatic failover is off', undefined);
  } else if (policy.enabled) {
    const need = failbackNeed(e);
    const back = now < need.notBefore ? undefined : e.known.find((l) => l < e.state.active && e.healthy.has(l) && now - (e.healthySince.get(l) as number) >= need.healthyMs);
    if (back === undefined) {
      e.state = { ...e.state, awaitingApproval: undefined };
      return;
    }
    const reason = `level ${back} healthy for ${need.healthyMs}ms${e.state.flapping ? ' (flapping: hold)' : ''}`;
    if (policy.failback === 'manual' && e.state.failbackApproved !== true) {
      const waiting = e.state.awaitingApproval;
      if (waiting === undefined || waiting.to !== back) {
        e.events.push({ type: 'failback_awaiting_approval', pool: e.input.pool, from: e.state.active, to: back, reason, at: now });
        e.state = { ...e.state, awaitingApproval: { since: now, to: back } };
      }
      return;
    }
    moveTo(e, back, policy.failback === 'manual' ? `${reason}; failback approved` : reason, policy.strategy === 'immediate' ? undefined : rampFrom(e, e.state.active));
  }
}

/**
 * Failback still to come: every earlier level that is healthy but not yet for recovery_interval wakes the pool
 * when it will be. This is computed against the level the pool ends on, not the one it started from: a failback
 * 2 -> 1 while level 0 is 300 ms into its own interval must leave a timer for level 0, or nothing wakes the pool
 * again until some backend's health changes (issue #20). Any such time is in the future: a level past its
 * interval would have been chosen by recoverStep (`back` is the first one).
 */
function failbackTimers(e: Evaluation): void {
  const { policy, now } = e.input;
  if (e.state.mode !== 'auto' || !policy.enabled) return;
  const need = failbackNeed(e);
  for (const l of e.known) {
    if (l >= e.state.active || !e.healthy.has(l)) continue;
    const due = Math.max((e.healthySince.get(l) as number) + need.healthyMs, need.notBefore);
    if (due > now) e.timers.push(due);
  }
  // The end of a flapping episode changes the hold: wake for it (recentFailovers holds its last failover).
  const h = policy.holdDown;
  const last = e.state.recentFailovers?.at(-1);
  if (h !== undefined && e.state.flapping !== undefined && last !== undefined) e.timers.push(last + h.flapWindowMs);
}

/**
 * Advance a ramp. It ends when it reaches 100%, when its source stops serving (nothing left to move), or when
 * its target stops being healthy (the rules above then decide again).
 */
function rampStep(e: Evaluation): void {
  const { policy, now, pool } = e.input;
  const ramp = e.state.ramp;
  if (ramp === undefined) return;
  if (!e.serves.has(ramp.from) || !e.serves.has(e.state.active)) {
    e.state = { ...e.state, ramp: undefined, rampPaused: undefined };
  } else if (now >= ramp.nextStepAt && policy.rampGate !== undefined && e.input.trafficPending === true && e.input.traffic === undefined) {
    return; // The step is judged when the figures arrive.
  } else if (now >= ramp.nextStepAt && gateStep(e, ramp)) {
    // Paused: judged again one step_interval from now.
  } else if (now >= ramp.nextStepAt) {
    const steps = 1 + Math.floor((now - ramp.nextStepAt) / policy.stepIntervalMs);
    const percent = Math.min(100, ramp.percent + steps * policy.stepPercent);
    e.events.push({ type: 'ramp_step', pool, from: ramp.from, to: e.state.active, percent, at: now });
    e.state = { ...e.state, ramp: percent >= 100 ? undefined : { ...ramp, percent, nextStepAt: ramp.nextStepAt + steps * policy.stepIntervalMs } };
  }
  if (e.state.ramp === undefined && e.state.rampPaused !== undefined) e.state = { ...e.state, rampPaused: undefined };
  if (e.state.ramp !== undefined) e.timers.push(e.state.ramp.nextStepAt);
}

/**
 * ramp_gate, at a due step: true when the step must wait (the level taking traffic answered badly during the
 * last step). A resumed ramp moves by one step from now: its missed steps were not missed, they were held.
 */
function gateStep(e: Evaluation, ramp: Ramp): boolean {
  const { policy, now, pool, traffic } = e.input;
  const gate = policy.rampGate;
  if (gate === undefined || traffic === undefined) return false;
  const to = e.state.active;
  const t = traffic.find((x) => x.level === to);
  let reason: string | undefined;
  if (t !== undefined && t.requests > 0) {
    const errorPercent = (t.errors * 100) / t.requests;
    if (errorPercent > gate.maxErrorPercent) reason = `level ${to} answered ${errorPercent.toFixed(1)}% errors over the last step (max_error_percent ${gate.maxErrorPercent})`;
    else if (t.p99Ms === null || t.p99Ms > gate.maxP99Ms) reason = `level ${to} p99 ${t.p99Ms === null ? 'beyond the histogram' : `${t.p99Ms}ms`} over the last step (max_p99 ${gate.maxP99Ms}ms)`;
  }
  if (reason === undefined) {
    if (e.state.rampPaused !== undefined) {
      const percent = Math.min(100, ramp.percent + policy.stepPercent);
      e.events.push({ type: 'ramp_resumed', pool, from: ramp.from, to, percent, reason: `level ${to} is within the ramp gate again`, at: now });
      e.events.push({ type: 'ramp_step', pool, from: ramp.from, to, percent, at: now });
      e.state = { ...e.state, rampPaused: undefined, ramp: percent >= 100 ? undefined : { ...ramp, percent, nextStepAt: now + policy.stepIntervalMs } };
      return true;
    }
    return false;
  }
  if (e.state.rampPaused === undefined) e.events.push({ type: 'ramp_paused', pool, from: ramp.from, to, percent: ramp.percent, reason, at: now });
  e.state = { ...e.state, rampPaused: { reason }, ramp: { ...ramp, nextStepAt: now + policy.stepIntervalMs } };
  return true;
}

export function evaluate(prev: PoolState, input: Input): Decision {
  const e = observeLevels(prev, input);
  holdDownStep(e);
  // Where traffic should be: the first level that is not failing, else the first that serves at all.
  const best = e.known.find((l) => e.healthy.has(l)) ?? e.known.find((l) => e.serves.has(l));
  if (e.state.mode === 'manual') manualStep(e);
  // Nothing can serve: keep the declared level; the data plane answers 503 until something recovers.
  else if (best === undefined) e.state = { ...e.state, ramp: undefined };
  else if (!e.healthy.has(e.state.active) && best !== e.state.active) failStep(e, best);
  else recoverStep(e);
  failbackTimers(e);
  rampStep(e);
  return { state: e.state, events: e.events, shares: shares(e.state, e.serves), wakeAt: e.timers.length ? Math.min(...e.timers) : undefined };
}

function shares(state: PoolState, serves: ReadonlySet<number>): Share[] {
  if (serves.size === 0) return [];
  const r = state.ramp;
  // The part that stays on a ramp's source goes only to its serving backends: a source that serves keeps its share.
  if (r !== undefined && serves.has(r.from) && serves.has(state.active)) {
    return [{ level: state.active, percent: r.percent }, { level: r.from, percent: 100 - r.percent }];
  }
  if (serves.has(state.active)) return [{ level: state.active, percent: 100 }];
  // The declared level does not serve and the pool has not moved (delayed, inside its delay; failover disabled):
  // its routing is unchanged, and per-request rescue takes each request on to the next level.
  return [{ level: state.active, percent: 100, evenIfDown: true }];
}
