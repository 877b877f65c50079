// Pure: one decision across the proxy replicas of a FailoverPool (SPEC 9). Views in, verdict and decision out;
// `now` is passed in, nothing here reads a clock or does I/O.
//
// A *view* is what one proxy sees of the pool's backends: each backend's health from that proxy's own probes
// and passive signals (up, down, or unknown before its first probe). The *verdict* on a backend combines the
// views of the reporting proxies (those that see it up or down; unknown is no vote):
//
//   quorum unset  down when a strict majority of the reporting proxies see it down (2 of 3, 3 of 4, 1 of 1)
//   quorum q      down when at least min(q, reporting) of them see it down
//   nobody votes  up (a backend no proxy has probed yet serves, as on a proxy: SPEC 2)
//
// The verdicts are the levels' health the same pure engine (@veloflux/engine) runs on, with the pool's policy
// and override exactly as one proxy would: strategies, recovery, manual activation. Its level and shares are the
// *decision*, numbered by a sequence that grows by one whenever level or shares change, and starts above the one
// stored in status.consensus.sequence, so it only grows across operator restarts and leader changes. Engine v2:
// hold-down comes with the policy; failback approval is a new token (ADR 0005); the ramp gate is judged on the
// traffic the proxies report while the decision ramps (traffic.ts: per proxy, the step's first and latest
// cumulative reading; the step's figures are their differences summed over the proxies), passed to the engine
// as a proxy passes its own, so a shared ramp pauses and resumes as a local one does. A paused ramp is part of
// the decision (`paused`, a new sequence), so every proxy's status shows it.
//
//   3 proxies, one sees the primary down      -> 1 of 3: up, level 0 for all (that proxy follows the majority)
//   3 proxies, two see it down                -> 2 of 3: down, level 1 for all
//   quorum 1, one sees it down                -> down (any one proxy suffices)
import { activate, approveFailback, deactivate, evaluate, initialPoolState } from '@veloflux/engine/engine';
import type { FailoverEvent, LevelHealth, PoolState } from '@veloflux/engine/engine';
import type { PoolConfig } from '@veloflux/config/types';
import { nextStep, observeReading, stepTraffic } from './traffic.ts';
import type { GateReadings, LevelReading } from './traffic.ts';

export type Health = 'unknown' | 'up' | 'down';

/** One proxy's view of one pool: its id and each backend's health as it sees it. */
export interface ProxyView {
  readonly proxy: string;
  readonly backends: readonly { readonly address: string; readonly health: Health }[];
}

export interface Verdict {
  readonly address: string;
  readonly level: number;
  readonly down: boolean;
  /** Proxies that see it down, and that report up or down at all. */
  readonly downVotes: number;
  readonly reporting: number;
}

export interface WireShare {
  readonly level: number;
  readonly percent: number;
}

/** What every proxy of the pool is sent (PUT /api/v1/pools/{pool}/decision), the ttl aside. */
export interface PoolDecision {
  readonly level: number;
  readonly shares: readonly WireShare[];
  readonly sequence: number;
  /** The ramp waits on failover.ramp_gate, and why (absent when it does not, or nothing ramps). */
  readonly paused?: { readonly reason: string } | undefined;
}

export interface ConsensusState {
  readonly engine: PoolState;
  /** The last decision made, or undefined before the first. */
  readonly decision: PoolDecision | undefined;
  /** The highest sequence known to be used (stored, sent, or held by a proxy): the next one is above it. */
  readonly floor: number;
  /**
   * failback: manual (SPEC 10): the approval token (FailoverPool spec.failback.approve.approvedAt) seen at the last
   * step; null before the first. A token that changes while the engine awaits approval approves that failback, as
   * on a proxy; the token present at the first step approves nothing (it was for an earlier wait).
   */
  readonly approval?: string | null | undefined;
  /** ramp_gate: the proxies' traffic readings of the step the ramp is in; undefined when no gated ramp runs. */
  readonly gate?: GateReadings | undefined;
}

/** Lease of a decision: 3 x the pool's check interval, at least 2 s (SPEC 9). Milliseconds. */
export const MIN_TTL_MS = 2000;
export function ttlMs(pool: PoolConfig): number {
  return Math.max(MIN_TTL_MS, 3 * pool.policy.checkIntervalMs);
}

/**
 * The starting state of a pool the operator had no state for (it just started or took the lead): the sequence
 * continues above `storedSequence`, and the engine starts on the level the pool was last decided to be on
 * (`storedLevel`), so a restart neither jumps back to level 0 nor skips a recovery interval.
 */
export function initialConsensus(storedSequence: number, storedLevel: number, now: number, storedShares?: readonly WireShare[]): ConsensusState {
  const engine: PoolState = storedLevel > 0 ? { ...initialPoolState(), active: storedLevel, failoverSince: now } : initialPoolState();
  // The stored decision is the last one made, as far as anyone wrote down: when the engine decides the same again,
  // its sequence is reused, so an operator restart changes nothing the proxies hold. Reusing it is safe: a proxy
  // that holds a higher sequence (a decision whose status write was lost) refuses it and the floor rises above.
  const decision = storedShares !== undefined && storedSequence > 0 ? { level: storedLevel, shares: storedShares, sequence: storedSequence } : undefined;
  return { engine, decision, floor: storedSequence, approval: null };
}

export function verdicts(pool: PoolConfig, views: readonly ProxyView[], quorum?: number): Verdict[] {
  // One pass over the views (O(proxies x backends)), indexed by address.
  const votes = new Map<string, { down: number; reporting: number }>();
  for (const b of pool.backends) votes.set(b.address, { down: 0, reporting: 0 });
  for (const v of views) {
    for (const b of v.backends) {
      const t = votes.get(b.address);
      if (t === undefined || b.health === 'unknown') continue;
      t.reporting++;
      if (b.health === 'down') t.down++;
    }
  }
  return pool.backends.map((b) => {
    const t = votes.get(b.address) as { down: number; reporting: number };
    const needed = quorum === undefined ? Math.floor(t.reporting / 2) + 1 : Math.min(quorum, t.reporting);
    return { address: b.address, level: b.level, down: t.reporting > 0 && t.down >= needed, downVotes: t.down, reporting: t.reporting };
  });
}

/** The levels' health the engine reads, from the verdicts (weight 0 drains, as on a proxy). */
export function levelHealth(pool: PoolConfig, verdict: readonly Verdict[]): LevelHealth[] {
  const down = new Set(verdict.filter((v) => v.down).map((v) => v.address));
  return pool.levels.map((level) => {
    let serving = 0;
    let servingWeight = 0;
    let totalWeight = 0;
    for (const b of pool.backends) {
      if (b.level !== level || b.weight === 0) continue;
      totalWeight += b.weight;
      if (!down.has(b.address)) { serving++; servingWeight += b.weight; }
    }
    return { level, serving, servingWeight, totalWeight };
  });
}

export interface StepInput {
  readonly pool: PoolConfig;
  readonly views: readonly ProxyView[];
  readonly quorum?: number | undefined;
  readonly now: number;
}

export interface StepResult {
  readonly state: ConsensusState;
  readonly verdict: readonly Verdict[];
  readonly decision: PoolDecision;
  /** The decision differs from the previous one (a new sequence). */
  readonly changed: boolean;
  /** When to step again even if no view changes (a recovery interval or ramp step is due). */
  readonly wakeAt: number | undefined;
  /** The engine's events of this step (ramp_paused, ramp_resumed...: the operator's log and Kubernetes Events). */
  readonly events: readonly FailoverEvent[];
}

const sameShares = (a: readonly WireShare[], b: readonly WireShare[]): boolean =>
  a.length === b.length && a.every((s, i) => s.level === b[i]?.level && s.percent === b[i]?.percent);

/**
 * A proxy's traffic report (already checked: traffic.ts parseTraffic) while the decision ramps under a gate; any
 * other time there is no step to judge and it is dropped. Levels the pool does not have are ignored.
 */
export function observeTraffic(state: ConsensusState, pool: PoolConfig, proxy: string, levels: readonly LevelReading[]): ConsensusState {
  if (state.gate === undefined || pool.policy.rampGate === undefined) return state;
  return { ...state, gate: observeReading(state.gate, proxy, levels.filter((l) => pool.levels.includes(l.level))) };
}

/** The readings the next step measures from: none once the ramp ends, afresh for a new ramp, moved on per step. */
function followGate(prev: GateReadings | undefined, pool: PoolConfig, ramp: PoolState['ramp'], to: number): GateReadings | undefined {
  if (pool.policy.rampGate === undefined || ramp === undefined) return undefined;
  if (prev === undefined || prev.from !== ramp.from || prev.to !== to) return { from: ramp.from, to, stepAt: ramp.nextStepAt, proxies: new Map() };
  return prev.stepAt === ramp.nextStepAt ? prev : nextStep(prev, ramp.nextStepAt);
}

/** One evaluation: views -> verdict -> the engine (override applied as activate/deactivate) -> decision. */
export function step(prev: ConsensusState, input: StepInput): StepResult {
  const { pool, now } = input;
  const verdict = verdicts(pool, input.views, input.quorum);
  // ramp_gate: the figures of the step in progress; the engine reads them only when the step is due.
  const gated = pool.policy.rampGate !== undefined && prev.engine.ramp !== undefined && prev.gate !== undefined;
  const traffic = gated ? stepTraffic(prev.gate as GateReadings, pool.levels) : undefined;
  const engineInput = { pool: pool.name, levels: levelHealth(pool, verdict), policy: pool.policy, now, traffic };
  const manual = pool.override.mode === 'active';
  const approval = pool.override.failbackApproval;
  const approves = prev.approval !== null && prev.approval !== undefined ? approval !== undefined && approval !== prev.approval : false;
  const run = manual && prev.engine.mode !== 'manual' ? activate
    : !manual && prev.engine.mode === 'manual' ? deactivate
    : approves && prev.engine.awaitingApproval !== undefined ? approveFailback
    : evaluate;
  const d = run(prev.engine, engineInput);
  const shares = d.shares.map((s) => ({ level: s.level, percent: s.percent }));
  const level = d.state.active;
  const paused = d.state.ramp !== undefined && d.state.rampPaused !== undefined ? { reason: d.state.rampPaused.reason } : undefined;
  const last = prev.decision;
  // A pause (or its reason) changing is a new decision too: every proxy shows it (status ramp.paused).
  const changed = last === undefined || last.level !== level || !sameShares(last.shares, shares) || last.paused?.reason !== paused?.reason;
  const sequence = changed ? Math.max(prev.floor, last?.sequence ?? 0) + 1 : (last as PoolDecision).sequence;
  const decision: PoolDecision = { level, shares, sequence, ...(paused ? { paused } : {}) };
  const gate = followGate(prev.gate, pool, d.state.ramp, level);
  // Seen from now on; "" stands for no token, so a first token after the first step approves.
  return { state: { engine: d.state, decision, floor: Math.max(prev.floor, sequence), approval: approval ?? '', gate }, verdict, decision, changed, wakeAt: d.wakeAt, events: d.events };
}

/**
 * A proxy holds a higher sequence than ours (it refused ours with 409: an earlier leader sent it and the status
 * write was lost). The next decision goes above it; the current one is re-issued under a new sequence.
 */
export function raiseFloor(state: ConsensusState, held: number): ConsensusState {
  if (held < state.floor) return state;
  const decision = state.decision === undefined ? undefined : { ...state.decision, sequence: held + 1 };
  return { ...state, decision, floor: held + 1 };
}

/** One proxy as the agreement count sees it: what it reports serving, and the decision it acknowledged. */
export interface ProxyServing {
  readonly level: number | undefined;
  readonly source: 'shared' | 'local' | undefined;
  readonly sequence: number | null | undefined;
}

/**
 * How many proxies serve the pool's decision: in shared mode those serving the current sequence from a shared
 * decision; in local mode those on the most common level (the others disagree).
 */
export function agreeing(mode: 'shared' | 'local', decision: PoolDecision | undefined, proxies: readonly ProxyServing[]): number {
  if (mode === 'shared') {
    if (decision === undefined) return 0;
    return proxies.filter((p) => p.source === 'shared' && p.sequence === decision.sequence).length;
  }
  const counts = new Map<number, number>();
  for (const p of proxies) if (p.level !== undefined) counts.set(p.level, (counts.get(p.level) ?? 0) + 1);
  return Math.max(0, ...counts.values());
}
