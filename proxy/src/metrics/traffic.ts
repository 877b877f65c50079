// Request metrics of one data-plane process (the only process in single mode, each worker in cluster mode).
// No prom-client here: workers would pay ~20 MB to load it. The families speak prom-client's metric interface,
// so the main process registers them (single mode) or adds up the workers' JSON (cluster mode).
import type { MetricObjectWithValues, MetricValueWithName } from 'prom-client';
import type { Config } from '@veloflux/config/types';
import type { Target } from '../dataplane/plan.ts';
import { CounterFamily, HistogramFamily } from './fast.ts';
import type { CounterCell, HistogramCell } from './fast.ts';

const CLASSES = ['2xx', '3xx', '4xx', '5xx', 'error'] as const;
/** Seconds; from a fast local hop to a slow upstream near the default header_timeout. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** gRPC status codes by number (grpc/doc/statuscodes.md); anything else a backend sends counts as UNKNOWN, as
 *  gRPC clients take it, so a backend cannot grow the label set. */
export const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'] as const;

/** The canonical name of a grpc-status header value. */
export function grpcCodeName(status: string): string {
  const n = /^\d{1,2}$/.test(status) ? Number(status) : -1;
  return GRPC_CODES[n] ?? 'UNKNOWN';
}

interface BackendCells { readonly byClass: CounterCell[]; readonly level: number; readonly duration: HistogramCell }
interface PoolCells { readonly duration: HistogramCell; readonly retries: CounterCell; readonly rescued: CounterCell; readonly hedged: CounterCell; readonly noBackend: CounterCell[] }

export class TrafficMetrics {
  readonly requests = new CounterFamily('veloflux_requests_total', 'Requests answered, by pool, backend (empty when none was reached) and status class ("error": connection cut).');
  readonly duration = new HistogramFamily('veloflux_request_duration_seconds', 'Time from request to the end of the response, by pool and failover level of the backend that answered (empty when none was reached), in seconds.', DURATION_BUCKETS);
  readonly retries = new CounterFamily('veloflux_retries_total', 'Extra attempts made to rescue failed requests, by pool.');
  readonly rescued = new CounterFamily('veloflux_rescued_requests_total', 'Requests that failed on a backend and were answered by another (per-request rescue), by pool.');
  readonly hedged = new CounterFamily('veloflux_hedged_requests_total', 'Requests that got a hedged second try after pools[].retry.per_try_timeout (the first answer wins), by pool.');
  readonly grpc = new CounterFamily('veloflux_grpc_responses_total', 'gRPC calls answered, by pool and grpc_code (the grpc-status the client got, by name: OK, UNAVAILABLE...).');
  readonly passive = new CounterFamily('veloflux_passive_failures_total', 'Real requests refused, reset or timed out by a backend (passive health signals), by pool and backend.');
  readonly tlsReloads = new CounterFamily('veloflux_tls_certificate_reloads_total', 'Re-reads of a TLS listener certificate that found new files, by cert_file and result ("ok": now served; "error": refused, the previous certificate stays).');
  readonly accessLogDropped = new CounterFamily('veloflux_access_log_dropped_total', 'Access log lines dropped because the destination (stdout or the file) did not keep up or failed.');
  readonly #dropped = this.accessLogDropped.cell({});
  readonly #backends = new Map<string, BackendCells>();
  readonly #pools = new Map<string, PoolCells>();
  readonly #passive = new Map<string, CounterCell>();
  /** Per pool, cells by grpc-status value as received (a string of one or two digits in practice). */
  readonly #grpc = new Map<string, Map<string, CounterCell>>();

  get families(): readonly (CounterFamily | HistogramFamily)[] {
    return [this.requests, this.duration, this.retries, this.rescued, this.hedged, this.passive, this.grpc, this.accessLogDropped, this.tlsReloads];
  }

  /** The same form as prom-client's `registry.getMetricsAsJSON()`. */
  async json(): Promise<MetricObjectWithValues<MetricValueWithName<string>>[]> {
    return Promise.all(this.families.map((f) => f.get() as Promise<MetricObjectWithValues<MetricValueWithName<string>>>));
  }

  /** Creates every label set of the config at zero and forgets those of pools and backends that left. */
  prepare(config: Config): void {
    const pools = new Set(config.pools.map((p) => p.name));
    const backends = new Set(config.pools.flatMap((p) => p.backends.map((b) => `${p.name}\u0000${b.address}`)));
    const keep = (l: Record<string, string>): boolean => (l.pool === '' || pools.has(l.pool as string)) && (!l.backend || backends.has(`${l.pool}\u0000${l.backend}`));
    for (const f of [this.requests, this.retries, this.rescued, this.hedged, this.passive, this.grpc]) f.drop(keep);
    for (const [name] of this.#grpc) if (!pools.has(name)) this.#grpc.delete(name);
    const levels = new Set(config.pools.flatMap((p) => p.levels.map((l) => `${p.name}\u0000${l}`)));
    this.duration.drop((l) => (l.pool === '' || pools.has(l.pool as string)) && (l.level === '' || levels.has(`${l.pool}\u0000${l.level}`)));
    // A backend that changed level keeps its id: its cells are made again for the new level.
    const levelOf = new Map(config.pools.flatMap((p) => p.backends.map((b) => [b.id, b.level] as const)));
    for (const [id, c] of this.#backends) if (levelOf.get(id) !== c.level) this.#backends.delete(id);
    for (const [name] of this.#pools) if (!pools.has(name)) this.#pools.delete(name);
    this.#pool('');
    for (const p of config.pools) {
      this.#pool(p.name);
      for (const b of p.backends) { this.#backend(p.name, b.address, b.level); this.#passiveCell(p.name, b.address); }
    }
  }

  #pool(pool: string): PoolCells {
    let c = this.#pools.get(pool);
    if (!c) {
      c = {
        duration: this.duration.cell({ pool, level: '' }),
        retries: this.retries.cell({ pool }),
        rescued: this.rescued.cell({ pool }),
        hedged: this.hedged.cell({ pool }),
        noBackend: CLASSES.map((code) => this.requests.cell({ pool, backend: '', code })),
      };
      this.#pools.set(pool, c);
    }
    return c;
  }

  /** Cells by backend id (`<pool>/<address>`, as BackendConfig.id: no string is built on the request path). */
  #backend(pool: string, address: string, level: number, id = `${pool}/${address}`): BackendCells {
    let c = this.#backends.get(id);
    if (!c) {
      // The histogram by level: the ramp gate (failover.ramp_gate) reads the p99 of the level taking traffic.
      c = { byClass: CLASSES.map((code) => this.requests.cell({ pool, backend: address, code })), level, duration: this.duration.cell({ pool, level: String(level) }) };
      this.#backends.set(id, c);
    }
    return c;
  }

  #passiveCell(pool: string, address: string): CounterCell {
    const id = `${pool}\u0000${address}`;
    let c = this.#passive.get(id);
    if (!c) { c = this.passive.cell({ pool, backend: address }); this.#passive.set(id, c); }
    return c;
  }

  /** A request finished (hot path). */
  done(pool: string, target: Target | undefined, status: number, attempts: number, startedAt: number): void {
    const p = this.#pool(pool);
    const cls = status === 0 ? 4 : status >= 500 ? 3 : status >= 400 ? 2 : status >= 300 ? 1 : 0;
    const b = target === undefined ? undefined : this.#backend(pool, target.backend.address, target.backend.level, target.backend.id);
    ((b === undefined ? p.noBackend : b.byClass)[cls] as CounterCell).value++;
    this.duration.observe(b === undefined ? p.duration : b.duration, (performance.now() - startedAt) / 1000);
    if (attempts > 1) {
      p.retries.value += attempts - 1;
      if (cls < 2) p.rescued.value++;
    }
  }

  /** A gRPC call ended with this grpc-status (from a backend or the proxy itself). */
  grpcStatus(pool: string, status: string): void {
    let byStatus = this.#grpc.get(pool);
    if (byStatus === undefined) { byStatus = new Map(); this.#grpc.set(pool, byStatus); }
    let c = byStatus.get(status);
    if (c === undefined) {
      // Bounded: every value outside 0-16 shares the UNKNOWN cell, and only the first few raw spellings get a key.
      const name = grpcCodeName(status);
      c = this.grpc.cell({ pool, grpc_code: name });
      if (byStatus.size < 64) byStatus.set(status, c);
    }
    c.value++;
  }

  /** An access log line was dropped. */
  accessLogDrop(): void {
    this.#dropped.value++;
  }

  /** A hedged try was sent (pools[].retry.hedge). */
  hedge(pool: string): void {
    this.#pool(pool).hedged.value++;
  }

  passiveFailure(pool: string, target: Target): void {
    this.#passiveCell(pool, target.backend.address).value++;
  }

  /** Not on the request path: a cell lookup per reload is fine. */
  tlsReload(certFile: string, result: 'ok' | 'error'): void {
    this.tlsReloads.cell({ cert_file: certFile, result }).value++;
  }
}
