// Outlier detection from real traffic (SPEC 10, pools[].outlier_detection), the counting half: what each backend
// answered, in this data-plane process (each worker counts its own requests, as nginx's max_fails does). When a
// detector trips, the cell reports once and starts counting afresh; the control side decides the ejection (how
// long, whether the level's max_ejection_percent allows it) and publishes it as routing like any health change.
//
//   outcome of one attempt                              | consecutive_5xx | consecutive_gateway_errors | error_percent
//   ----------------------------------------------------+-----------------+----------------------------+--------------
//   backend answered < 500                              | reset           | reset                      | request
//   backend answered 500, 501, 505..599                 | +1              | reset                      | request, error
//   backend answered 502, 503, 504                      | +1              | +1                         | request, error
//   backend fault: refused, reset, timed out, bad HTTP  | +1              | +1                         | request, error
//   no response head within retry.per_try_timeout     | +1              | +1                         | request, error
//   client left, request refused as malformed (ours)    | nothing: not the backend's doing (fault.ts)
//
// error_percent is judged at the end of each `interval` (on the first outcome after it), with min_requests.
// Allocation-free per outcome: a few integer updates and, only while an interval may have ended, performance.now().
import type { OutlierPolicy } from '@veloflux/config/types';

export type OutlierReport = (backendId: string, reason: string) => void;

export class OutlierCell {
  readonly #id: string;
  readonly #policy: OutlierPolicy;
  readonly #report: OutlierReport;
  #consecutive5xx = 0;
  #consecutiveGateway = 0;
  #requests = 0;
  #errors = 0;
  #windowEnd: number;

  constructor(backendId: string, policy: OutlierPolicy, report: OutlierReport, now: number) {
    this.#id = backendId;
    this.#policy = policy;
    this.#report = report;
    this.#windowEnd = now + policy.intervalMs;
  }

  get policy(): OutlierPolicy {
    return this.#policy;
  }

  /** The backend answered with this status (its response head arrived). */
  answered(status: number): void {
    if (status < 500) {
      this.#consecutive5xx = 0;
      this.#consecutiveGateway = 0;
      this.#count(false);
    } else {
      this.#bad(status >= 502 && status <= 504, `answered ${status}`);
    }
  }

  /** The backend failed the attempt (fault.ts side "backend"). */
  failed(code: string): void {
    this.#bad(true, `failed (${code})`);
  }

  #bad(gateway: boolean, what: string): void {
    const p = this.#policy;
    this.#consecutive5xx++;
    this.#consecutiveGateway = gateway ? this.#consecutiveGateway + 1 : 0;
    if (p.consecutiveGatewayErrors > 0 && this.#consecutiveGateway >= p.consecutiveGatewayErrors) {
      this.#trip(`${this.#consecutiveGateway} consecutive gateway errors (last: ${what}; consecutive_gateway_errors ${p.consecutiveGatewayErrors})`);
      return;
    }
    if (p.consecutive5xx > 0 && this.#consecutive5xx >= p.consecutive5xx) {
      this.#trip(`${this.#consecutive5xx} consecutive 5xx or failures (last: ${what}; consecutive_5xx ${p.consecutive5xx})`);
      return;
    }
    this.#count(true);
  }

  #count(error: boolean): void {
    const now = performance.now();
    if (now >= this.#windowEnd) {
      const p = this.#policy;
      const requests = this.#requests;
      const errors = this.#errors;
      this.#requests = 0;
      this.#errors = 0;
      this.#windowEnd = now + p.intervalMs;
      if (p.errorPercent < 100 && requests >= p.minRequests && errors * 100 > p.errorPercent * requests) {
        this.#trip(`${Math.round((errors * 100) / requests)}% errors over ${requests} requests in ${p.intervalMs}ms (error_percent ${p.errorPercent})`);
        return;
      }
    }
    this.#requests++;
    if (error) this.#errors++;
  }

  #trip(reason: string): void {
    this.#consecutive5xx = 0;
    this.#consecutiveGateway = 0;
    this.#requests = 0;
    this.#errors = 0;
    this.#windowEnd = performance.now() + this.#policy.intervalMs;
    this.#report(this.#id, reason);
  }
}

/**
 * The cells of one data-plane process, by backend id: they outlive routing snapshots (a snapshot's targets point at
 * them), and a config that changes a pool's outlier_detection starts its backends' counts afresh.
 */
export class Outliers {
  readonly #report: OutlierReport;
  readonly #cells = new Map<string, OutlierCell>();

  constructor(report: OutlierReport) {
    this.#report = report;
  }

  cell(backendId: string, policy: OutlierPolicy | undefined): OutlierCell | undefined {
    if (policy === undefined) { this.#cells.delete(backendId); return undefined; }
    const c = this.#cells.get(backendId);
    // Configs arrive as new objects (a reload, an IPC message): same settings keep the counts.
    if (c !== undefined && (c.policy === policy || JSON.stringify(c.policy) === JSON.stringify(policy))) return c;
    const fresh = new OutlierCell(backendId, policy, this.#report, performance.now());
    this.#cells.set(backendId, fresh);
    return fresh;
  }

  /** Forgets backends no longer in the config. */
  retain(ids: ReadonlySet<string>): void {
    for (const id of this.#cells.keys()) if (!ids.has(id)) this.#cells.delete(id);
  }
}
