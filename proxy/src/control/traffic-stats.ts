// Reads a pool's request totals and latency histogram out of prom-client's JSON form (one process's registry
// or the cluster aggregate), for live drills: the difference between two readings is what the drill saw.
import type { MetricObjectWithValues, MetricValueWithName } from 'prom-client';

export interface TrafficReading {
  readonly requests: number;
  readonly errors: number;
  /** Cumulative counts by upper bound (seconds). */
  readonly buckets: readonly { readonly le: number; readonly count: number }[];
}

type Json = MetricObjectWithValues<MetricValueWithName<string>>[];

/**
 * A pool's totals, or with `level` those of one failover level only (requests answered by its backends, the
 * latency histogram's series of that level): the ramp gate judges the level taking traffic from the same figures
 * the drills report.
 */
export function readTraffic(metrics: Json, pool: string, level?: { readonly level: number; readonly backends: ReadonlySet<string> }): TrafficReading {
  let requests = 0;
  let errors = 0;
  const buckets = new Map<number, number>();
  const levelLabel = level === undefined ? undefined : String(level.level);
  for (const m of metrics) {
    if (m.name === 'veloflux_requests_total') {
      for (const v of m.values) {
        if (v.labels.pool !== pool) continue;
        if (level !== undefined && !level.backends.has(String(v.labels.backend))) continue;
        requests += v.value;
        if (v.labels.code === '5xx' || v.labels.code === 'error') errors += v.value;
      }
    } else if (m.name === 'veloflux_request_duration_seconds') {
      for (const v of m.values) {
        if (v.labels.pool !== pool || v.metricName !== 'veloflux_request_duration_seconds_bucket') continue;
        if (levelLabel !== undefined && String(v.labels.level) !== levelLabel) continue;
        const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
        buckets.set(le, (buckets.get(le) ?? 0) + v.value);
      }
    }
  }
  return { requests, errors, buckets: [...buckets].sort((a, b) => a[0] - b[0]).map(([le, count]) => ({ le, count })) };
}

/** What happened between two readings: counts, error rate, and latency quantiles (bucket upper bounds, ms). */
export function between(a: TrafficReading, b: TrafficReading): { requests: number; errors: number; errorRate: number; latencyMs: { p50: number | null; p99: number | null } } {
  const requests = b.requests - a.requests;
  const errors = b.errors - a.errors;
  const deltas = b.buckets.map((x) => ({ le: x.le, count: x.count - (a.buckets.find((y) => y.le === x.le)?.count ?? 0) }));
  const total = deltas.at(-1)?.count ?? 0;
  const q = (p: number): number | null => {
    if (total === 0) return null;
    const hit = deltas.find((d) => d.count >= total * p);
    return hit === undefined || hit.le === Infinity ? null : hit.le * 1000;
  };
  return { requests, errors, errorRate: requests === 0 ? 0 : errors / requests, latencyMs: { p50: q(0.5), p99: q(0.99) } };
}
