// Pure: what the proxies report about one FailoverPool -> its status, and the failover transitions to record
// as Kubernetes Events. `now` is passed in; nothing here reads a clock.
//
// The pool's activeLevel is the level most reporting proxies serve from (a tie goes to the higher level:
// the safer reading while replicas move). Transitions are counted against the *stored* status, so a
// restarted operator neither loses failoverCount nor records a transition twice.
//
// Conditions (lastTransitionTime changes only when status does):
//   Ready           True  Serving         accepted, and at least one selected proxy runs its current config
//                   False Conflict | SecretMissing | InvalidConfig | NoProxies | Pending
//   Synced          True  AllSynced       every selected ready proxy answered recently and reports the config rendered for it
//                   False Pending | PushFailed | Unauthorized | TokenSecretMissing | NoProxies | <refusal reason>
//                         (Unauthorized / TokenSecretMissing when every failing pod fails that way; the
//                         message names each failing pod and its error)
//   FailoverActive  True  Failover        serving from a level above 0
//                   True  ManualOverride  spec.override.mode active
//                   False Primary
//   Degraded        True  ReplicasDisagree | Unauthorized | TokenSecretMissing | ProxiesUnreachable | PushFailed |
//                         BackendsDown | NoProxies
//                   False AsExpected
//   Flapping        True  Flapping        a reporting proxy says the pool is flapping (spec.holdDown, SPEC 10)
//                   False Stable          (set only once spec.holdDown is given, or the condition exists)
//
// status.failback: spec.failback.mode, whether a reporting proxy awaits a failback approval, and the
// spec.failback.approve.approvedAt rendered; status.flapping: the episode of the reporting proxy that has
// seen the most failovers in it. Flapping's start and end are Events (FlappingStarted, FlappingEnded).
// Shared mode: a ramp the operator's ramp gate pauses is status.consensus.paused (written by the caller) and the
// Events RampPaused / RampResumed, counted against the stored status.
import type { Refusal } from '@veloflux/kube/render';
import type { Condition, FailoverPoolStatus, OverrideMode, ProxyPoolStatus } from '@veloflux/kube/types';

export interface ProxyReport {
  /** Pod name. */
  readonly pod: string;
  /** The pod reports the version rendered for it. */
  readonly synced: boolean;
  /** The operator could reach the pod's admin API. */
  readonly reachable: boolean;
  /** This pool in the pod's failover status, when the pod runs it. */
  readonly pool: ProxyPoolStatus | undefined;
  /** Last push failure, when the last push (or the read before it) failed. */
  readonly pushError?: string | undefined;
  /** Why it failed: the proxy refused the operator's token (401), the token Secret is missing, or anything else. */
  readonly errorReason?: PushErrorReason | undefined;
}

export type PushErrorReason = 'Unauthorized' | 'TokenSecretMissing' | 'PushFailed';

export interface StatusInput {
  readonly generation: number;
  readonly prev: FailoverPoolStatus | undefined;
  /** Set when the pool was refused on some selected pod. */
  readonly refused: Refusal | undefined;
  /** One per selected ready pod. */
  readonly proxies: readonly ProxyReport[];
  readonly override: { readonly mode: OverrideMode; readonly expired: boolean };
  /** spec.failback.mode and approve.approvedAt; spec.holdDown given. */
  readonly failback?: { readonly mode: 'auto' | 'manual'; readonly approvedAt: string | undefined } | undefined;
  readonly holdDown?: boolean | undefined;
  /**
   * Shared decisions (SPEC 9): the operator's own engine is the one that decides, so its wait for approval and its
   * flapping episode are the pool's (the proxies' local engines follow the decision and say nothing).
   */
  readonly shared?: {
    readonly awaitingApproval: boolean;
    readonly flapping: { readonly since: string; readonly failovers: number; readonly holdMs: number } | undefined;
    /** The shared decision's ramp waits on the ramp gate (status.consensus.paused), and why. */
    readonly paused?: { readonly reason: string } | undefined;
    /** The ramp the decision makes: from which level to which, and the share the level taking traffic has. */
    readonly ramp?: { readonly from: number; readonly to: number; readonly percent: number } | undefined;
  } | undefined;
  /** Unix milliseconds. */
  readonly now: number;
}

export type Transition =
  | { readonly type: 'FailoverActivated'; readonly from: number; readonly to: number }
  | { readonly type: 'LevelChanged'; readonly from: number; readonly to: number }
  | { readonly type: 'FailoverRecovered'; readonly from: number; readonly to: number }
  | { readonly type: 'FlappingStarted'; readonly from: number; readonly to: number; readonly failovers: number; readonly holdMs: number }
  | { readonly type: 'FlappingEnded'; readonly from: number; readonly to: number }
  | { readonly type: 'RampPaused'; readonly from: number; readonly to: number; readonly percent: number; readonly reason: string }
  | { readonly type: 'RampResumed'; readonly from: number; readonly to: number; readonly percent: number };

export interface StatusResult {
  readonly status: FailoverPoolStatus;
  readonly transitions: readonly Transition[];
}

const iso = (ms: number): string => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

/** Sets `next` into `conditions`, keeping lastTransitionTime when the status did not change. */
export function setCondition(conditions: readonly Condition[], next: Omit<Condition, 'lastTransitionTime'>, now: number): Condition[] {
  const prev = conditions.find((c) => c.type === next.type);
  const lastTransitionTime = prev && prev.status === next.status ? prev.lastTransitionTime : iso(now);
  const merged: Condition = { ...next, lastTransitionTime };
  return prev ? conditions.map((c) => (c.type === next.type ? merged : c)) : [...conditions, merged];
}

/** Most common level; ties go to the higher level. */
function majority(levels: readonly number[]): number | undefined {
  const counts = new Map<number, number>();
  for (const l of levels) counts.set(l, (counts.get(l) ?? 0) + 1);
  let best: number | undefined;
  let bestCount = 0;
  for (const [level, count] of counts) {
    if (count > bestCount || (count === bestCount && level > (best ?? -1))) { best = level; bestCount = count; }
  }
  return best;
}

export function computeStatus(input: StatusInput): StatusResult {
  const { prev, proxies, refused, now, generation } = input;
  const selected = proxies.length;
  const synced = proxies.filter((p) => p.synced).length;
  // Prefer what synced proxies say; a proxy still on an older config says less about this generation.
  const reporting = proxies.filter((p) => p.pool !== undefined && p.synced);
  const reports = reporting.length ? reporting : proxies.filter((p) => p.pool !== undefined);
  const levels = reports.map((p) => (p.pool as ProxyPoolStatus).activeLevel);
  const prevLevel = prev?.activeLevel ?? 0;
  const level = majority(levels) ?? prevLevel;

  const transitions: Transition[] = [];
  let failoverCount = prev?.failoverCount ?? 0;
  let lastFailoverTime = prev?.lastFailoverTime;
  if (levels.length > 0 && level !== prevLevel) {
    if (prevLevel === 0) {
      transitions.push({ type: 'FailoverActivated', from: prevLevel, to: level });
      failoverCount++;
      lastFailoverTime = iso(now);
    } else if (level === 0) {
      transitions.push({ type: 'FailoverRecovered', from: prevLevel, to: level });
    } else {
      transitions.push({ type: 'LevelChanged', from: prevLevel, to: level });
    }
  }

  let conditions: Condition[] = prev?.conditions ?? [];
  const set = (type: string, ok: boolean, reason: string, message: string): void => {
    conditions = setCondition(conditions, { type, status: ok ? 'True' : 'False', observedGeneration: generation, reason, message }, now);
  };

  const pushErrors = proxies.filter((p) => p.pushError !== undefined);
  const errorText = pushErrors.map((p) => `${p.pod}: ${p.pushError}`).join('; ');
  // One reason for the failing pods: the specific one when they all share it, else PushFailed.
  const reasons = new Set(pushErrors.map((p) => p.errorReason ?? 'PushFailed'));
  const errorReason = reasons.size === 1 ? [...reasons][0] as PushErrorReason : 'PushFailed';
  const unreachable = proxies.filter((p) => !p.reachable && p.pushError === undefined);
  const syncedText = `${synced}/${selected} proxies run the current config`;

  if (refused) set('Ready', false, refused.reason, refused.message);
  else if (selected === 0) set('Ready', false, 'NoProxies', 'proxySelector selects no ready proxy pod');
  else if (reports.length > 0 && synced > 0) set('Ready', true, 'Serving', `serving from level ${level} (${syncedText})`);
  else set('Ready', false, 'Pending', syncedText);

  if (refused) set('Synced', false, refused.reason, refused.message);
  else if (selected === 0) set('Synced', false, 'NoProxies', 'proxySelector selects no ready proxy pod');
  else if (synced === selected) set('Synced', true, 'AllSynced', syncedText);
  else if (pushErrors.length > 0) set('Synced', false, errorReason, `${syncedText}; ${errorText}`);
  else set('Synced', false, 'Pending', syncedText);

  const manual = input.override.mode === 'active';
  if (level > 0) set('FailoverActive', true, manual ? 'ManualOverride' : 'Failover', `serving from failover level ${level}${manual ? ' (spec.override.mode active)' : ''}`);
  else if (manual && reports.some((p) => p.pool?.failoverActive)) set('FailoverActive', true, 'ManualOverride', 'spec.override.mode is active');
  else set('FailoverActive', false, 'Primary', 'serving from level 0');

  const distinct = new Set(levels);
  const down = reports.flatMap((p) => (p.pool?.backends ?? []).filter((b) => b.health === 'down').map((b) => b.address));
  if (selected === 0) {
    set('Degraded', true, 'NoProxies', 'proxySelector selects no ready proxy pod: nothing serves this pool');
  } else if (distinct.size > 1) {
    set('Degraded', true, 'ReplicasDisagree', `proxies report different active levels: ${reports.map((p) => `${p.pod}=${p.pool?.activeLevel}`).sort().join(', ')}`);
  } else if (pushErrors.length > 0) {
    set('Degraded', true, errorReason, errorText);
  } else if (unreachable.length > 0) {
    set('Degraded', true, 'ProxiesUnreachable', `admin API unreachable on ${unreachable.map((p) => p.pod).sort().join(', ')}`);
  } else if (down.length > 0) {
    set('Degraded', true, 'BackendsDown', `backends down: ${[...new Set(down)].sort().join(', ')}`);
  } else {
    set('Degraded', false, 'AsExpected', 'all backends healthy and all proxies agree');
  }

  // Flapping (spec.holdDown): the reporting proxy with the most failovers in its episode speaks for the pool.
  const flaps = reports.map((p) => p.pool?.flapping).filter((f): f is NonNullable<typeof f> => f !== undefined && f !== null);
  const flapping = input.shared !== undefined ? input.shared.flapping : flaps.sort((a, b) => b.failovers - a.failovers)[0];
  const wasFlapping = prev?.conditions?.find((c) => c.type === 'Flapping')?.status === 'True';
  if (input.holdDown || conditions.some((c) => c.type === 'Flapping')) {
    if (flapping) set('Flapping', true, 'Flapping', `${flapping.failovers} failovers since ${flapping.since}; failback needs ${flapping.holdMs}ms of health without a break`);
    else set('Flapping', false, 'Stable', 'no proxy reports the pool flapping');
  }
  if (reports.length > 0 || input.shared !== undefined) {
    if (flapping && !wasFlapping) transitions.push({ type: 'FlappingStarted', from: level, to: level, failovers: flapping.failovers, holdMs: flapping.holdMs });
    else if (!flapping && wasFlapping) transitions.push({ type: 'FlappingEnded', from: level, to: level });
  }

  // Shared ramp gate (SPEC 10): a pause that starts or ends against the stored status.consensus.paused, so a
  // restarted operator records neither twice. Local mode: each proxy's status and events say it (as before).
  if (input.shared !== undefined) {
    const was = prev?.consensus?.paused !== undefined;
    const p = input.shared.paused;
    const r = input.shared.ramp;
    if (p !== undefined && !was) transitions.push({ type: 'RampPaused', from: r?.from ?? level, to: r?.to ?? level, percent: r?.percent ?? 100, reason: p.reason });
    else if (p === undefined && was) transitions.push({ type: 'RampResumed', from: r?.from ?? level, to: r?.to ?? level, percent: r?.percent ?? 100 });
  }

  const order = ['Ready', 'Synced', 'FailoverActive', 'Degraded', 'Flapping'];
  conditions.sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));

  const status: FailoverPoolStatus = {
    observedGeneration: generation,
    activeLevel: level,
    failoverCount,
    ...(lastFailoverTime ? { lastFailoverTime } : {}),
    syncedProxies: `${synced}/${selected}`,
    proxies: { selected, synced },
    override: { mode: input.override.mode, expired: input.override.expired },
    ...(input.failback ? { failback: {
      mode: input.failback.mode,
      awaitingApproval: input.shared !== undefined ? input.shared.awaitingApproval : reports.some((p) => p.pool?.failback?.awaitingApproval === true),
      ...(input.failback.approvedAt ? { approvedAt: input.failback.approvedAt } : {}),
    } } : {}),
    ...(flapping ? { flapping: { since: flapping.since, failovers: flapping.failovers, holdMs: flapping.holdMs } } : {}),
    conditions,
  };
  return { status, transitions };
}
