// The control side of one proxy: runs the active probes, takes passive signals from the data plane, feeds both
// into the pure health machine and failover engine, and publishes the resulting routing state and events.
// Exactly one runs per proxy (in the main process), whatever the worker count, so probes are not multiplied
// and every worker switches levels on the same message.
import { EventEmitter } from 'node:events';
import type { BackendConfig, Config, PoolConfig } from '../config/types.ts';
import { evaluate, initialPoolState } from '../failover/engine.ts';
import type { Decision, LevelHealth, PoolState, Share } from '../failover/engine.ts';
import { initialHealth, isServing, observe } from '../health/state.ts';
import type { HealthState, Outcome } from '../health/state.ts';
import type { ProbeResult } from '../health/prober.ts';
import type { PoolRouting, RoutingState } from '../routing.ts';
import type { ProxyEvent } from './events.ts';

export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface ControllerOptions {
  readonly clock?: Clock;
  readonly probe: (b: BackendConfig) => Promise<ProbeResult>;
  /** Random source for probe jitter, [0, 1). */
  readonly random?: () => number;
}

interface Events {
  routing: [RoutingState];
  event: [ProxyEvent];
  ready: [];
}

/** Probe jitter: each interval is stretched or shrunk by up to this fraction, so probes do not align. */
const JITTER = 0.1;

export class Controller extends EventEmitter<Events> {
  #config: Config;
  #version: string;
  readonly #clock: Clock;
  readonly #probe: ControllerOptions['probe'];
  readonly #random: () => number;
  readonly #health = new Map<string, HealthState>();
  readonly #pools = new Map<string, PoolState>();
  readonly #shares = new Map<string, readonly Share[]>();
  readonly #probeTimers = new Map<string, NodeJS.Timeout>();
  readonly #wakeTimers = new Map<string, NodeJS.Timeout>();
  readonly #unprobed = new Set<string>();
  #routing: RoutingState;
  #seq = 0;
  #ready = false;
  #stopped = false;

  constructor(config: Config, version: string, opts: ControllerOptions) {
    super();
    this.#config = config;
    this.#version = version;
    this.#clock = opts.clock ?? systemClock;
    this.#probe = opts.probe;
    this.#random = opts.random ?? Math.random;
    const now = this.#clock.now();
    for (const pool of config.pools) {
      this.#pools.set(pool.name, initialPoolState());
      for (const b of pool.backends) this.#health.set(b.id, initialHealth(now));
    }
    for (const pool of config.pools) this.#decide(pool, false);
    this.#routing = this.#buildRouting();
  }

  get routing(): RoutingState {
    return this.#routing;
  }

  get config(): Config {
    return this.#config;
  }

  get version(): string {
    return this.#version;
  }

  /** True once every backend has had its first probe. */
  get ready(): boolean {
    return this.#ready;
  }

  health(id: string): HealthState | undefined {
    return this.#health.get(id);
  }

  poolState(name: string): PoolState | undefined {
    return this.#pools.get(name);
  }

  start(): void {
    for (const pool of this.#config.pools) {
      for (const b of pool.backends) {
        this.#unprobed.add(b.id);
        this.#scheduleProbe(pool, b, 0);
      }
    }
    if (this.#unprobed.size === 0) this.#markReady();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#probeTimers.values()) clearTimeout(t);
    for (const t of this.#wakeTimers.values()) clearTimeout(t);
    this.#probeTimers.clear();
    this.#wakeTimers.clear();
  }

  /** A passive signal from real traffic (connection refused, reset, timed out). */
  passive(backendId: string, error: string): void {
    const found = this.#find(backendId);
    if (!found) return;
    this.#observe(found.pool, found.backend, { ok: false, source: 'passive', at: this.#clock.now(), error });
  }

  #find(id: string): { pool: PoolConfig; backend: BackendConfig } | undefined {
    for (const pool of this.#config.pools) {
      const backend = pool.backends.find((b) => b.id === id);
      if (backend) return { pool, backend };
    }
    return undefined;
  }

  #scheduleProbe(pool: PoolConfig, b: BackendConfig, delayMs: number): void {
    const timer = setTimeout(() => {
      this.#probeTimers.delete(b.id);
      void this.#probe(b).then((result) => {
        if (this.#stopped || this.#health.get(b.id) === undefined) return;
        const at = this.#clock.now();
        this.#observe(pool, b, result.ok ? { ok: true, source: 'probe', at } : { ok: false, source: 'probe', at, error: result.error });
        if (this.#unprobed.delete(b.id) && this.#unprobed.size === 0) this.#markReady();
        const interval = b.healthCheck.intervalMs;
        this.#scheduleProbe(pool, b, Math.round(interval * (1 - JITTER + 2 * JITTER * this.#random())));
      });
    }, delayMs);
    timer.unref();
    this.#probeTimers.set(b.id, timer);
  }

  #markReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    this.emit('ready');
  }

  #observe(pool: PoolConfig, b: BackendConfig, outcome: Outcome): void {
    const before = this.#health.get(b.id);
    if (!before) return;
    const after = observe(before, outcome, b.healthCheck);
    this.#health.set(b.id, after);
    if (before.status === after.status || (before.status === 'unknown' && after.status === 'up')) return;
    const at = outcome.at;
    if (after.status === 'down') {
      this.emit('event', { type: 'backend_down', pool: pool.name, backend: b.address, level: b.level, error: after.lastError ?? 'unknown error', by: after.downBy ?? outcome.source, at });
    } else {
      this.emit('event', { type: 'backend_up', pool: pool.name, backend: b.address, level: b.level, at });
    }
    this.#decide(pool, true);
  }

  #levels(pool: PoolConfig): LevelHealth[] {
    return pool.levels.map((level) => ({
      level,
      serving: pool.backends.filter((b) => b.level === level && b.weight > 0 && isServing(this.#health.get(b.id) ?? initialHealth(0))).length,
    }));
  }

  /** Runs the engine for one pool; publishes routing when anything the data plane sees changed. */
  #decide(pool: PoolConfig, publish: boolean, step?: (s: PoolState, input: Parameters<typeof evaluate>[1]) => Decision): Decision {
    const state = this.#pools.get(pool.name) ?? initialPoolState();
    const input = { pool: pool.name, levels: this.#levels(pool), policy: pool.policy, now: this.#clock.now() };
    const decision = (step ?? evaluate)(state, input);
    this.#pools.set(pool.name, decision.state);
    this.#shares.set(pool.name, decision.shares);
    for (const e of decision.events) this.emit('event', e);
    this.#arm(pool, decision.wakeAt);
    if (publish) {
      this.#routing = this.#buildRouting();
      this.emit('routing', this.#routing);
    }
    return decision;
  }

  #arm(pool: PoolConfig, wakeAt: number | undefined): void {
    const old = this.#wakeTimers.get(pool.name);
    if (old) clearTimeout(old);
    this.#wakeTimers.delete(pool.name);
    if (wakeAt === undefined || this.#stopped) return;
    const timer = setTimeout(() => {
      this.#wakeTimers.delete(pool.name);
      const current = this.#config.pools.find((p) => p.name === pool.name);
      if (current) this.#decide(current, true);
    }, Math.max(0, wakeAt - this.#clock.now()));
    timer.unref();
    this.#wakeTimers.set(pool.name, timer);
  }

  #buildRouting(): RoutingState {
    const pools: Record<string, PoolRouting> = {};
    for (const pool of this.#config.pools) {
      pools[pool.name] = {
        shares: this.#shares.get(pool.name) ?? [],
        serving: pool.backends.filter((b) => isServing(this.#health.get(b.id) ?? initialHealth(0))).map((b) => b.id),
      };
    }
    return { seq: ++this.#seq, configVersion: this.#version, pools };
  }
}
