// One keep-alive connection pool per backend origin, shared by every snapshot of this process and kept across
// config and health changes; pools of backends that left the config are closed (in-flight requests finish).
import { Pool } from 'undici';
import type { DataplaneConfig } from '@veloflux/config/types';

export class Dispatchers {
  readonly #pools = new Map<string, Pool>();
  #settings: DataplaneConfig;

  constructor(settings: DataplaneConfig) {
    this.#settings = settings;
  }

  get(origin: string): Pool {
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      const s = this.#settings;
      pool = new Pool(origin, {
        pipelining: 1,
        connectTimeout: s.connectTimeoutMs,
        headersTimeout: s.headerTimeoutMs,
        bodyTimeout: s.idleTimeoutMs,
        // Upstream keep-alive: reuse connections for a while, but not longer than backends usually keep them
        // (node's default server keepAliveTimeout is 5s); undici also honours the backend's Keep-Alive hint.
        keepAliveTimeout: 4000,
        keepAliveMaxTimeout: 60_000,
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }

  /** Closes pools whose origin is not in `keep`; settings apply to pools created from now on. */
  retain(keep: ReadonlySet<string>, settings: DataplaneConfig): void {
    const changed = JSON.stringify(settings) !== JSON.stringify(this.#settings);
    this.#settings = settings;
    for (const [origin, pool] of this.#pools) {
      if (!keep.has(origin) || changed) {
        this.#pools.delete(origin);
        void pool.close().catch(() => pool.destroy());
      }
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }
}
