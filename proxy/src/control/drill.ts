// Failover drills (POST /api/v1/failover/test). Dry run: check the level the pool would move to, now (every
// backend probed, with latency), send a clearly marked test notification through every channel, and report
// what would happen. Live: really move the pool (manual activation) for the duration, then hand it back, and
// report the requests, errors and latency the pool saw meanwhile.
import { setTimeout as sleep } from 'node:timers/promises';
import type { MetricObjectWithValues, MetricValueWithName } from 'prom-client';
import { formatDuration } from '@veloflux/config/duration';
import { ERRORS } from '../errors.ts';
import type { ErrorDef } from '../errors.ts';
import type { Prober } from '../health/prober.ts';
import type { Clock } from './clock.ts';
import type { Controller } from './controller.ts';
import { between, readTraffic } from './traffic-stats.ts';

export interface DrillOptions {
  readonly mode: 'dry-run' | 'live';
  readonly durationMs: number;
}

/** A drill refused (unknown pool, one already running): a domain error the admin API answers with `def`. */
export class DrillError extends Error {
  readonly def: ErrorDef;
  constructor(def: ErrorDef, message: string) {
    super(message);
    this.def = def;
  }
}

export interface DrillNotifier {
  drill(pool: string, summary: string): Promise<readonly unknown[]>;
}

export interface DrillDeps {
  readonly controller: () => Controller;
  readonly prober: Prober;
  readonly traffic: () => Promise<MetricObjectWithValues<MetricValueWithName<string>>[]>;
  readonly notifier: () => DrillNotifier | undefined;
  readonly clock: Clock;
}

export class Drills {
  readonly #deps: DrillDeps;
  readonly #running = new Set<string>();
  readonly #abort = new AbortController();

  constructor(deps: DrillDeps) {
    this.#deps = deps;
  }

  /** Ends live drills early (shutdown). */
  close(): void {
    this.#abort.abort();
  }

  async run(pool: string, opts: DrillOptions): Promise<unknown> {
    return opts.mode === 'live' ? this.#live(pool, opts.durationMs) : this.#dryRun(pool);
  }

  async #dryRun(poolName: string): Promise<unknown> {
    const c = this.#deps.controller();
    const pool = c.config.pools.find((p) => p.name === poolName);
    const status = c.status(poolName)[0];
    if (!pool || !status) throw new DrillError(ERRORS.UNKNOWN_POOL, `unknown pool "${poolName}"`);
    const next = pool.levels.find((l) => l > status.activeLevel);
    const checks = await Promise.all(pool.backends.filter((b) => b.level === next).map(async (b) => {
      const t0 = performance.now();
      const r = await this.#deps.prober.probe(b);
      return { address: b.address, ok: r.ok, latencyMs: Math.round(performance.now() - t0), ...(r.ok ? {} : { error: r.error }) };
    }));
    const up = checks.filter((x) => x.ok);
    const wouldHappen = next === undefined
      ? `level ${status.activeLevel} is the last level of pool "${poolName}": no level could take over`
      : up.length > 0
        ? `level ${next} would take over: ${up.length} of ${checks.length} backend${checks.length === 1 ? '' : 's'} answer (slowest ${Math.max(...up.map((x) => x.latencyMs))} ms)`
        : `level ${next} could not take over: none of its ${checks.length} backend${checks.length === 1 ? '' : 's'} answers`;
    const notifications = await this.#notify(poolName, `TEST (dry run) of failover for pool ${poolName}: ${wouldHappen}`);
    return { test: true, pool: poolName, mode: 'dry-run', activeLevel: status.activeLevel, failoverActive: status.failoverActive, nextLevel: next ?? null, nextLevelBackends: checks, wouldHappen, notifications, at: new Date(this.#deps.clock.now()).toISOString() };
  }

  async #live(poolName: string, durationMs: number): Promise<unknown> {
    if (this.#running.has(poolName)) throw new DrillError(ERRORS.DRILL_RUNNING, `a live drill is already running on pool "${poolName}"`);
    this.#running.add(poolName);
    try {
      const c = this.#deps.controller();
      const before = c.status(poolName)[0];
      const wasManual = before?.mode === 'manual';
      const notifications = await this.#notify(poolName, `TEST (live drill) of failover for pool ${poolName}: the pool moves to its backup level for ${formatDuration(durationMs)}`);
      const r0 = readTraffic(await this.#deps.traffic(), poolName);
      const moved = c.activate(poolName, `live drill for ${formatDuration(durationMs)}`);
      const t0 = this.#deps.clock.now();
      await sleep(durationMs, undefined, { signal: this.#abort.signal }).catch(() => {});
      const back = wasManual ? c.status(poolName)[0] : c.deactivate(poolName, 'live drill ended');
      const r1 = readTraffic(await this.#deps.traffic(), poolName);
      return {
        test: true, pool: poolName, mode: 'live', durationMs: this.#deps.clock.now() - t0,
        from: before?.activeLevel ?? 0, to: moved.activeLevel, after: back?.activeLevel ?? null,
        ...between(r0, r1), notifications, at: new Date(this.#deps.clock.now()).toISOString(),
      };
    } finally {
      this.#running.delete(poolName);
    }
  }

  async #notify(pool: string, summary: string): Promise<readonly unknown[]> {
    const n = this.#deps.notifier();
    return n ? n.drill(pool, summary) : [];
  }
}
