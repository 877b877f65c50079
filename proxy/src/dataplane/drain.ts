// Draining on failover (SPEC 8): long-lived exchanges (WebSocket tunnels, HTTP/2 streams such as gRPC streams)
// that are open on a level when it loses its traffic keep running up to failover.drain_timeout, then are closed,
// so their clients reconnect onto the level now serving. New requests already go elsewhere; without this a
// WebSocket or a gRPC stream would stay on the old level for as long as it lives (envoy#8867).
//
//   the level of an open exchange ...          | what happens
//   -------------------------------------------+------------------------------------------------------------
//   still has a share of new requests           | nothing
//   loses its share (failover, failback)        | a timer of drain_timeout starts for that pool and level
//   gets a share back before the timer fires    | the timer is cancelled: nothing is closed
//   timer fires                                 | every exchange open on that pool and level is closed:
//                                               | WebSocket close 1001 (going away), gRPC UNAVAILABLE in
//                                               | the trailers, any other HTTP/2 stream RST_STREAM(CANCEL)
// A drained exchange is counted with the proxy's own status (VF_ERR_DRAINED, 503) and never against a backend.
import type { RoutingState } from '../routing.ts';

/** Something long-lived the data plane can close for a drain. */
export interface Drainable {
  readonly poolName: string;
  /** The level of the backend it runs on. */
  readonly level: number;
  drain(): void;
}

/** The levels of a pool that get a share of its new requests (pure). */
export function levelsWithTraffic(routing: RoutingState, pool: string): Set<number> {
  const out = new Set<number>();
  for (const s of routing.pools[pool]?.shares ?? []) if (s.percent > 0) out.add(s.level);
  return out;
}

/** The (pool, level) pairs that hold open exchanges but no longer get traffic (pure). */
export function levelsToDrain(open: Iterable<Drainable>, routing: RoutingState): Map<string, { pool: string; level: number }> {
  const out = new Map<string, { pool: string; level: number }>();
  const cache = new Map<string, Set<number>>();
  for (const d of open) {
    let served = cache.get(d.poolName);
    if (served === undefined) { served = levelsWithTraffic(routing, d.poolName); cache.set(d.poolName, served); }
    if (!served.has(d.level)) out.set(`${d.poolName}\u0000${d.level}`, { pool: d.poolName, level: d.level });
  }
  return out;
}

/** The timers (the I/O edge): `open` is the live set; `check` runs on every routing change. */
export class Drainer {
  readonly open = new Set<Drainable>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #timeoutMs: number;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  set timeoutMs(ms: number) {
    this.#timeoutMs = ms;
  }

  check(routing: RoutingState): void {
    const due = levelsToDrain(this.open, routing);
    for (const [key, timer] of this.#timers) if (!due.has(key)) { clearTimeout(timer); this.#timers.delete(key); }
    for (const [key, { pool, level }] of due) {
      if (this.#timers.has(key)) continue;
      const timer = setTimeout(() => {
        this.#timers.delete(key);
        for (const d of [...this.open]) if (d.poolName === pool && d.level === level) d.drain();
      }, this.#timeoutMs);
      timer.unref();
      this.#timers.set(key, timer);
    }
  }

  close(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
  }
}
