// State changes of the proxy, as plain data. Logs, metrics, notifications and the admin API subscribe to these;
// the decision modules produce them.
import type { FailoverEvent } from '@veloflux/engine/engine';

export type BackendEvent =
  | { readonly type: 'backend_down'; readonly pool: string; readonly backend: string; readonly level: number; readonly error: string; readonly by: 'probe' | 'passive' | 'outlier'; readonly at: number }
  | { readonly type: 'backend_up'; readonly pool: string; readonly backend: string; readonly level: number; readonly at: number };

export type ControlEvent =
  | { readonly type: 'config_applied'; readonly version: string; readonly previous: string; readonly at: number }
  | { readonly type: 'mode_changed'; readonly pool: string; readonly mode: 'auto' | 'manual'; readonly reason: string; readonly at: number }
  /** SPEC 9: the pool switched between following the operator's decision (shared) and deciding alone (local). */
  | { readonly type: 'decision_source'; readonly pool: string; readonly source: 'shared' | 'local'; readonly sequence: number; readonly reason: string; readonly at: number };

export type ProxyEvent = FailoverEvent | BackendEvent | ControlEvent;

/**
 * SPEC 9/10: the traffic of one shared pool by level, as this proxy's data plane counted it since it started
 * (cumulative, so a report the operator misses loses nothing: the next one carries it). Sent on the event stream
 * as `traffic` while the operator's decision ramps the pool under failover.ramp_gate: the operator judges a
 * shared ramp step on the sum over the proxies of the pool. Not a state change, so not a ProxyEvent (no log line,
 * no notification). Bounded: one entry per level of the pool, DURATION_BUCKETS + 1 buckets each.
 */
export interface TrafficReport {
  readonly pool: string;
  readonly levels: readonly LevelCounts[];
  readonly at: number;
}

export interface LevelCounts {
  readonly level: number;
  /** Requests answered by this level's backends, and those of them that were 5xx or cut. */
  readonly requests: number;
  readonly errors: number;
  /** Cumulative counts of the level's latency histogram by upper bound in seconds ("+Inf" last). */
  readonly buckets: readonly { readonly le: number | '+Inf'; readonly count: number }[];
}

/** One active probe's outcome (for metrics; not a state change, so not a ProxyEvent). */
export interface ProbeOutcome {
  readonly pool: string;
  readonly backend: string;
  readonly ok: boolean;
  readonly ms: number;
}
