// The immutable routing snapshot the request path reads: per pool, which backends to pick for a new request and
// in which order to rescue a failed one. Rebuilt only when the config or the routing state changes.
import { preferRegion } from '../balance/locality.ts';
import { SmoothPicker } from '../balance/swrr.ts';
import type { BackendConfig, Config, PoolConfig } from '@veloflux/config/types';
import type { PoolRouting, RoutingState } from '../routing.ts';
import type { Dispatchers } from './dispatchers.ts';
import { Router } from './router.ts';
import type { OutlierCell, Outliers } from './outlier.ts';
import type { LatencyCell, Latencies } from './latency.ts';
import type { RetryPolicy } from '@veloflux/config/types';

/** Per-backend state of this process that outlives snapshots (outlier counts, latency estimates). */
export interface BackendCells {
  readonly outliers: Outliers;
  readonly latencies: Latencies;
}
import type { Upstream } from './h2-upstream.ts';

export interface Target {
  readonly backend: BackendConfig;
  readonly weight: number;
  readonly dispatcher: Upstream;
  /** outlier_detection: this backend's counts in this process, or undefined when the pool has none. */
  readonly outlier: OutlierCell | undefined;
  /** retry.per_try_timeout auto: this backend's observed time to response head, or undefined. */
  readonly latency: LatencyCell | undefined;
}

interface Tier {
  readonly level: number;
  readonly weight: number;
  readonly picker: SmoothPicker<Target>;
}

export class PoolPlan {
  readonly name: string;
  /** pools[].retry, or undefined (no per-try timeout, no hedging). */
  readonly retry: RetryPolicy | undefined;
  readonly #shares: SmoothPicker<Tier>;
  /** Per level: the tiers to try in order when a request that started on that level fails. */
  readonly #rescue: Map<number, Tier[]>;

  constructor(pool: PoolConfig, routing: PoolRouting | undefined, region: string | undefined, dispatchers: Dispatchers, cells?: BackendCells) {
    this.name = pool.name;
    this.retry = pool.retry;
    const auto = pool.retry?.perTryTimeoutMs === 'auto';
    const serving = new Set(routing?.serving ?? []);
    const tiers = new Map<number, Tier>();
    const target = (b: BackendConfig): Target => ({ backend: b, weight: b.weight, dispatcher: dispatchers.get(b), outlier: cells?.outliers.cell(b.id, pool.outlier), latency: cells?.latencies.cell(b.id, auto) });
    for (const level of pool.levels) {
      const up = pool.backends.filter((b) => b.level === level && b.weight > 0 && serving.has(b.id));
      if (up.length > 0) tiers.set(level, { level, weight: 0, picker: new SmoothPicker(preferRegion(up, region).map(target)) });
    }
    const shareTiers: Tier[] = [];
    for (const share of routing?.shares ?? []) {
      let tier = tiers.get(share.level);
      if (tier === undefined && share.evenIfDown) {
        const all = pool.backends.filter((b) => b.level === share.level && b.weight > 0);
        if (all.length > 0) tier = { level: share.level, weight: 0, picker: new SmoothPicker(preferRegion(all, region).map(target)) };
      }
      if (tier !== undefined && share.percent > 0) shareTiers.push({ ...tier, weight: share.percent });
    }
    this.#shares = new SmoothPicker(shareTiers);
    // Rescue order from level L: L itself (other backends), then higher levels ascending, then lower ones
    // (healthy but still inside their recovery interval) descending: the best remaining chance first.
    this.#rescue = new Map();
    const levels = [...new Set([...tiers.keys(), ...shareTiers.map((t) => t.level)])].sort((a, b) => a - b);
    for (const from of levels) {
      const own = shareTiers.find((t) => t.level === from) ?? tiers.get(from);
      const order = [
        ...(own ? [own] : []),
        ...levels.filter((l) => l > from).map((l) => tiers.get(l)),
        ...levels.filter((l) => l < from).reverse().map((l) => tiers.get(l)),
      ].filter((t): t is Tier => t !== undefined);
      this.#rescue.set(from, order);
    }
  }

  /** Backend for a new request, or undefined when nothing can serve (503). */
  first(): Target | undefined {
    const tier = this.#shares.pick();
    return tier?.picker.pick();
  }

  /** Next backend to rescue a request that started on `level`, skipping the ones tried. */
  next(level: number, tried: ReadonlySet<Target>): Target | undefined {
    for (const tier of this.#rescue.get(level) ?? []) {
      const t = tier.picker.pick(tried);
      if (t !== undefined) return t;
    }
    return undefined;
  }
}

export class Snapshot {
  readonly router: Router;
  readonly pools: ReadonlyMap<string, PoolPlan>;
  readonly config: Config;
  readonly routing: RoutingState;

  constructor(config: Config, routing: RoutingState, dispatchers: Dispatchers, cells?: BackendCells) {
    this.config = config;
    this.routing = routing;
    this.router = new Router(config.routes);
    const pools = new Map<string, PoolPlan>();
    for (const pool of config.pools) pools.set(pool.name, new PoolPlan(pool, routing.pools[pool.name], config.region, dispatchers, cells));
    this.pools = pools;
  }
}
