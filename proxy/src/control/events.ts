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

/** One active probe's outcome (for metrics; not a state change, so not a ProxyEvent). */
export interface ProbeOutcome {
  readonly pool: string;
  readonly backend: string;
  readonly ok: boolean;
  readonly ms: number;
}
