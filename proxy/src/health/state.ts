// The health of one backend as a pure threshold machine. No I/O, no clock: callers pass `at`.
//
//   status   | probe ok                         | probe or passive failure
//   ---------+----------------------------------+-----------------------------------------
//   unknown  | up                               | probe: down; passive: count, down at threshold
//   up       | failures = 0                     | failures + 1; down at unhealthy_threshold
//   down     | successes + 1; up at healthy_thr.| successes = 0
//
// A backend starts `unknown` and serves traffic; its first probe decides, so a proxy started next to a dead
// primary does not wait unhealthy_threshold probe rounds before failing over. Passive signals (refused,
// reset, timed out real requests) only ever count as failures: a backend that is down gets no traffic, so
// only probes can bring it back.

export type Status = 'unknown' | 'up' | 'down';
export type Source = 'probe' | 'passive';

export interface HealthState {
  readonly status: Status;
  readonly failures: number;
  readonly successes: number;
  /** When status last changed (ms). */
  readonly since: number;
  readonly lastCheckAt: number | undefined;
  readonly lastError: string | undefined;
  /** What marked it down. */
  readonly downBy: Source | undefined;
}

export interface Thresholds {
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
}

export type Outcome =
  | { readonly ok: true; readonly source: 'probe'; readonly at: number }
  | { readonly ok: false; readonly source: Source; readonly at: number; readonly error: string };

export function initialHealth(at: number): HealthState {
  return { status: 'unknown', failures: 0, successes: 0, since: at, lastCheckAt: undefined, lastError: undefined, downBy: undefined };
}

/** Serves traffic: not known to be down. (Weight 0 is a separate, admin decision.) */
export function isServing(s: HealthState): boolean {
  return s.status !== 'down';
}

export function observe(s: HealthState, o: Outcome, t: Thresholds): HealthState {
  const lastCheckAt = o.source === 'probe' ? o.at : s.lastCheckAt;
  if (o.ok) {
    if (s.status === 'down') {
      const successes = s.successes + 1;
      if (successes >= t.healthyThreshold) {
        return { status: 'up', failures: 0, successes: 0, since: o.at, lastCheckAt, lastError: undefined, downBy: undefined };
      }
      return { ...s, successes, lastCheckAt };
    }
    return { ...s, status: 'up', failures: 0, since: s.status === 'up' ? s.since : o.at, lastCheckAt, lastError: undefined };
  }
  if (s.status === 'down') return { ...s, successes: 0, lastCheckAt, lastError: o.error };
  const failures = s.failures + 1;
  const decide = failures >= t.unhealthyThreshold || (s.status === 'unknown' && o.source === 'probe');
  if (decide) {
    return { status: 'down', failures: 0, successes: 0, since: o.at, lastCheckAt, lastError: o.error, downBy: o.source };
  }
  return { ...s, failures, successes: 0, lastCheckAt, lastError: o.error };
}
