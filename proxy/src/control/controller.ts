// The control side of one proxy: runs the active probes, takes passive signals from the data plane, feeds both
// into the pure health machine and failover engine, and publishes the resulting routing state and events.
// Exactly one runs per proxy (in the main process), whatever the worker count, so probes are not multiplied
// and every worker switches levels on the same message.
import { EventEmitter } from 'node:events';
import type { BackendConfig, Config, PoolConfig } from '@veloflux/config/types';
import { activate, approveFailback, deactivate, evaluate, initialPoolState } from '@veloflux/engine/engine';
import type { Decision, LevelHealth, LevelTraffic, PoolState } from '@veloflux/engine/engine';
import type { Share } from '@veloflux/engine/share';
import { initialHealth, isServing, observe } from '../health/state.ts';
import type { HealthState, Outcome } from '../health/state.ts';
import type { ProbeResult } from '../health/prober.ts';
import type { PoolRouting, RoutingState } from '../routing.ts';
import type { ProbeOutcome, ProxyEvent, TrafficReport } from './events.ts';
import { systemClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { between, readTraffic } from './traffic-stats.ts';
import type { TrafficReading } from './traffic-stats.ts';
import type { MetricObjectWithValues, MetricValueWithName } from 'prom-client';


export interface ControllerOptions {
  readonly clock?: Clock;
  /** This proxy's id (SPEC 2, 9: the pod name in Kubernetes, else the host name); status and views carry it. */
  readonly proxyId?: string;
  readonly probe: (b: BackendConfig) => Promise<ProbeResult>;
  /** Random source for probe jitter, [0, 1). */
  readonly random?: () => number;
  /**
   * The data plane's request metrics (the drills' source): the ramp gate (failover.ramp_gate) reads the traffic
   * of the level taking traffic over each step from them. Without it ramps advance on time alone.
   */
  readonly traffic?: () => Promise<MetricObjectWithValues<MetricValueWithName<string>>[]>;
}

interface Events {
  routing: [RoutingState];
  event: [ProxyEvent];
  probe: [ProbeOutcome];
  /** SPEC 9/10: a shared pool's traffic by level, while the operator's decision ramps it under a gate. */
  traffic: [TrafficReport];
  ready: [];
}

export interface BackendStatus {
  readonly address: string;
  readonly level: number;
  readonly region: string | null;
  readonly weight: number;
  readonly health: 'unknown' | 'up' | 'down';
  readonly since: string;
  readonly lastCheck: string | null;
  readonly lastError: string | null;
  readonly downBy: 'probe' | 'passive' | 'outlier' | null;
  /** outlier_detection: while ejected, until when (ISO), else null. */
  readonly ejectedUntil: string | null;
}

/** Where the pool's level and shares come from (SPEC 9): the operator's fresh decision, or this proxy alone. */
export interface DecisionStatus {
  readonly source: 'shared' | 'local';
  /** Sequence of the decision held (fresh or expired), or null when none came. */
  readonly sequence: number | null;
  /** When the held decision stops being fresh (ISO), or null. */
  readonly expiresAt: string | null;
}

/** A decision for one pool, as the operator sends it (PUT /api/v1/pools/{pool}/decision), already validated. */
export interface SharedDecision {
  readonly level: number;
  readonly shares: readonly Share[];
  readonly sequence: number;
  readonly ttlMs: number;
  /** The operator's ramp waits on failover.ramp_gate (judged on the traffic all proxies reported), and why. */
  readonly paused?: { readonly reason: string } | undefined;
}

interface HeldDecision {
  readonly level: number;
  readonly shares: readonly Share[];
  readonly sequence: number;
  readonly expiresAt: number;
  readonly paused?: { readonly reason: string } | undefined;
}

/** What the pool serves, as announced in events: its level and since when it is failed over. */
interface Served {
  readonly level: number;
  readonly since: number | undefined;
}

/** A decision the proxy refuses (the admin API answers 409): older than the one held, or a pool that decides alone. */
export class DecisionRefused extends Error {
  readonly reason: 'stale' | 'local';
  /** The sequence held (stale only). */
  readonly held: number | undefined;
  constructor(reason: 'stale' | 'local', message: string, held?: number) {
    super(message);
    this.reason = reason;
    this.held = held;
  }
}

export interface PoolStatus {
  readonly name: string;
  readonly activeLevel: number;
  readonly mode: 'auto' | 'manual';
  readonly override: { readonly mode: string; readonly reason: string | null };
  readonly strategy: string;
  readonly failoverActive: boolean;
  readonly failoverCount: number;
  /** When the current failover started (ISO), or null. */
  readonly activeSince: string | null;
  readonly lastFailoverTime: string | null;
  readonly ramp: { readonly from: number; readonly to: number; readonly percent: number; readonly paused: { readonly reason: string } | null } | null;
  /** failover.hold_down: the flapping episode (SPEC 10), or null. */
  readonly flapping: { readonly since: string; readonly failovers: number; readonly holdMs: number } | null;
  /** failover.failback; `awaitingApproval`: a failback waits for POST /api/v1/failover/failback (or the CR). */
  readonly failback: { readonly mode: 'auto' | 'manual'; readonly awaitingApproval: boolean; readonly to: number | null; readonly since: string | null; readonly message: string | null };
  readonly shares: readonly Share[];
  readonly levels: readonly { readonly level: number; readonly serving: number; readonly backends: number }[];
  readonly backends: readonly BackendStatus[];
  readonly decision: DecisionStatus;
}

/** failback approval asked of a pool that awaits none (the admin API answers 409). */
export class NothingToApproveError extends Error {
  readonly pool: string;
  constructor(pool: string, detail: string) {
    super(`pool "${pool}" awaits no failback approval: ${detail}`);
    this.pool = pool;
  }
}

/** Unknown pool, for callers that report it (the admin API answers 404). */
export class UnknownPoolError extends Error {
  readonly pool: string;
  readonly known: readonly string[];
  constructor(pool: string, known: readonly string[]) {
    super(`unknown pool "${pool}" (pools: ${known.map((k) => `"${k}"`).join(', ')})`);
    this.pool = pool;
    this.known = known;
  }
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/**
 * Engine events about the traffic the pool serves: while a shared decision is served, those of the local engine
 * are not announced (its moves are not what traffic does, and a shared ramp's pause is the operator's: it comes
 * with the decision, judged on the traffic of every proxy).
 */
const MOVES: ReadonlySet<string> = new Set(['failover_activated', 'level_changed', 'failover_recovered', 'ramp_step', 'ramp_paused', 'ramp_resumed']);

/**
 * How often a proxy reports a shared pool's traffic while the operator's decision ramps it under a gate: a
 * quarter of step_interval, within these bounds (ms). The operator judges a step on the reports that arrived
 * during it, so the last one may be this much older than the step's end.
 */
export const TRAFFIC_REPORT_MIN_MS = 200;
export const TRAFFIC_REPORT_MAX_MS = 1000;
export const trafficReportMs = (pool: PoolConfig): number =>
  Math.min(TRAFFIC_REPORT_MAX_MS, Math.max(TRAFFIC_REPORT_MIN_MS, Math.floor(pool.policy.stepIntervalMs / 4)));

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
  readonly #lastFailover = new Map<string, number>();
  /** SPEC 9: the operator's decisions, per pool (fresh until expiresAt), and their expiry timers. */
  readonly #decisions = new Map<string, HeldDecision>();
  readonly #expiryTimers = new Map<string, NodeJS.Timeout>();
  /** Per pool: the level it serves, whoever decided it (announced in failover events), and shared failovers. */
  readonly #served = new Map<string, Served>();
  readonly #sharedFailovers = new Map<string, number>();
  readonly #proxyId: string;
  /** Started from a bootstrap config: readiness also waits for the first decision of every shared pool. */
  readonly #bootstrapped: boolean;
  #warm = false;
  readonly #traffic: ControllerOptions['traffic'];
  /** ramp_gate: per pool, the traffic reading (by level) at the start of the current step. */
  readonly #gateBaseline = new Map<string, Promise<ReadonlyMap<number, TrafficReading>>>();
  /** ramp_gate: pools whose due step is being judged (traffic being read). */
  readonly #judging = new Set<string>();
  /** ramp_gate in shared mode: per pool, the timer of the traffic reports to the operator. */
  readonly #reporters = new Map<string, NodeJS.Timeout>();
  /** outlier_detection: ejected backends by id, until when and why. */
  readonly #ejected = new Map<string, { until: number; reason: string; timer: NodeJS.Timeout }>();
  /** outlier_detection: per backend id, ejections in a row (the doubling) and when the last one ended. */
  readonly #ejections = new Map<string, { count: number; endedAt: number }>();
  #routing: RoutingState;
  #seq = 0;
  #ready = false;
  #stopped = false;
  #started = false;

  constructor(config: Config, version: string, opts: ControllerOptions) {
    super();
    this.#config = config;
    this.#version = version;
    this.#clock = opts.clock ?? systemClock;
    this.#probe = opts.probe;
    this.#random = opts.random ?? Math.random;
    this.#proxyId = opts.proxyId ?? 'veloflux-proxy';
    this.#bootstrapped = config.bootstrap;
    this.#traffic = opts.traffic;
    const now = this.#clock.now();
    for (const pool of config.pools) {
      this.#pools.set(pool.name, initialPoolState());
      for (const b of pool.backends) this.#health.set(b.id, initialHealth(now));
    }
    for (const pool of config.pools) {
      if (pool.override.mode === 'active') this.#pools.set(pool.name, { ...initialPoolState(), mode: 'manual' });
      this.#decide(pool, false);
    }
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

  /**
   * True once every backend has had its first probe and, when the proxy started from a `bootstrap: true`
   * config, a config without it (pushed by the operator) has been applied (SPEC 6 warm-up).
   */
  get ready(): boolean {
    if (this.#warm) return true;
    const now = this.#clock.now();
    // Warm-up only: once ready, an expired decision does not take the proxy out of its Service (it decides
    // alone instead, SPEC 9), or an operator outage would empty every Service at once.
    const decided = !this.#bootstrapped || this.#config.pools.every((p) => p.consensus.mode !== 'shared' || this.#fresh(p.name, now) !== undefined);
    this.#warm = this.#ready && !this.#config.bootstrap && decided;
    return this.#warm;
  }

  /** Why the proxy is not ready (for /readyz), or undefined when it is. */
  get notReadyReason(): string | undefined {
    if (this.ready) return undefined;
    if (!this.#ready) return 'the first health-check round has not finished';
    if (this.#config.bootstrap) return 'waiting for a config from the operator (bootstrap: true)';
    const now = this.#clock.now();
    const waiting = this.#config.pools.filter((p) => p.consensus.mode === 'shared' && this.#fresh(p.name, now) === undefined).map((p) => `"${p.name}"`);
    return `waiting for a first shared decision for pool ${waiting.join(', ')} (consensus.mode: shared)`;
  }

  /** This proxy's id (the pod name in Kubernetes); probes carry it as X-VeloFlux-Proxy. */
  get proxyId(): string {
    return this.#proxyId;
  }

  health(id: string): HealthState | undefined {
    return this.#health.get(id);
  }

  poolState(name: string): PoolState | undefined {
    return this.#pools.get(name);
  }

  start(): void {
    this.#started = true;
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
    for (const e of this.#ejected.values()) clearTimeout(e.timer);
    for (const t of this.#probeTimers.values()) clearTimeout(t);
    for (const t of this.#wakeTimers.values()) clearTimeout(t);
    for (const t of this.#expiryTimers.values()) clearTimeout(t);
    for (const t of this.#reporters.values()) clearInterval(t);
    this.#reporters.clear();
    this.#probeTimers.clear();
    this.#wakeTimers.clear();
    this.#expiryTimers.clear();
  }

  /** A passive signal from real traffic (connection refused, reset, timed out). */
  passive(backendId: string, error: string): void {
    const found = this.#find(backendId);
    if (!found) return;
    this.#observe(found.pool, found.backend, { ok: false, source: 'passive', at: this.#clock.now(), error });
  }

  /**
   * outlier_detection: the data plane saw this backend fail real requests (`reason`). It is ejected for
   * base_ejection x 2^(ejections in a row - 1), at most max_ejection, unless that would eject more than
   * max_ejection_percent of its level (rounded down) or it is ejected already. The count of ejections in a row
   * restarts once a backend has gone max_ejection without one.
   */
  outlier(backendId: string, reason: string): void {
    const found = this.#find(backendId);
    const policy = found?.pool.outlier;
    if (!found || !policy || this.#ejected.has(backendId) || this.#stopped) return;
    const { pool, backend } = found;
    const level = pool.backends.filter((b) => b.level === backend.level && b.weight > 0);
    const ejectedInLevel = level.filter((b) => this.#ejected.has(b.id)).length;
    if (ejectedInLevel + 1 > Math.floor((level.length * policy.maxEjectionPercent) / 100)) return;
    const now = this.#clock.now();
    const last = this.#ejections.get(backendId);
    const count = last === undefined || now - last.endedAt >= policy.maxEjectionMs ? 1 : last.count + 1;
    const ms = Math.min(policy.maxEjectionMs, policy.baseEjectionMs * 2 ** Math.min(count - 1, 40));
    const timer = setTimeout(() => this.#readmit(backendId), ms);
    timer.unref();
    const wasServing = this.#serves(backend);
    this.#ejected.set(backendId, { until: now + ms, reason: `ejected for ${ms}ms: ${reason}`, timer });
    this.#ejections.set(backendId, { count, endedAt: now + ms });
    this.emit('event', { type: 'backend_down', pool: pool.name, backend: backend.address, level: backend.level, error: `ejected for ${ms}ms: ${reason}`, by: 'outlier', at: now });
    if (wasServing) this.#decide(pool, true);
  }

  #readmit(backendId: string): void {
    const e = this.#ejected.get(backendId);
    if (!e) return;
    clearTimeout(e.timer);
    this.#ejected.delete(backendId);
    const found = this.#find(backendId);
    if (!found || this.#stopped) return;
    const { pool, backend } = found;
    const h = this.#health.get(backend.id);
    // Back to what its health checks say: up (or not probed yet) serves again; down by a probe meanwhile stays down.
    if (h && h.status !== 'down') {
      this.emit('event', { type: 'backend_up', pool: pool.name, backend: backend.address, level: backend.level, at: this.#clock.now() });
      this.#decide(pool, true);
    }
  }

  #serves(b: BackendConfig): boolean {
    return !this.#ejected.has(b.id) && isServing(this.#health.get(b.id) ?? initialHealth(0));
  }

  /**
   * A new config, applied at once: health and failover state of backends and pools that stay (same id, same
   * pool name) are kept; new backends start unknown and are probed now; removed ones are forgotten. A change of
   * a pool's `override` acts like activate/deactivate. Returns false when the version is the running one.
   */
  apply(config: Config, version: string): boolean {
    if (version === this.#version) return false;
    const previous = this.#version;
    const old = this.#config;
    const now = this.#clock.now();
    for (const t of this.#probeTimers.values()) clearTimeout(t);
    this.#probeTimers.clear();
    const keepHealth = new Map<string, HealthState>();
    const fresh: { pool: PoolConfig; backend: BackendConfig }[] = [];
    for (const pool of config.pools) {
      for (const b of pool.backends) {
        const h = this.#health.get(b.id);
        if (h) keepHealth.set(b.id, h);
        else { keepHealth.set(b.id, initialHealth(now)); fresh.push({ pool, backend: b }); }
      }
    }
    this.#health.clear();
    for (const [id, h] of keepHealth) this.#health.set(id, h);
    // Ejections last while their backend stays in a pool that still has outlier detection.
    const ejecting = new Set(config.pools.filter((p) => p.outlier !== undefined).flatMap((p) => p.backends.map((b) => b.id)));
    const released: string[] = [];
    for (const [id, e] of this.#ejected) if (!ejecting.has(id)) { clearTimeout(e.timer); this.#ejected.delete(id); released.push(id); }
    for (const id of this.#ejections.keys()) if (!ejecting.has(id)) this.#ejections.delete(id);
    for (const name of [...this.#pools.keys()]) if (!config.pools.some((p) => p.name === name)) this.#pools.delete(name);
    // A decision is for the pool as it was configured: removed pools and pools that now decide alone drop it.
    const dropped: { name: string; sequence: number }[] = [];
    for (const [name, held] of [...this.#decisions]) {
      if (config.pools.find((p) => p.name === name)?.consensus.mode === 'shared') continue;
      if (this.#fresh(name, now) !== undefined) dropped.push({ name, sequence: held.sequence });
      this.#dropDecision(name);
    }
    for (const name of [...this.#served.keys()]) if (!config.pools.some((p) => p.name === name)) this.#served.delete(name);
    this.#config = config;
    this.#version = version;
    // A pool that followed a decision and now decides alone serves its own engine's level from here on.
    for (const { name, sequence } of dropped) {
      const pool = config.pools.find((p) => p.name === name);
      if (!pool) continue;
      this.emit('event', { type: 'decision_source', pool: name, source: 'local', sequence, reason: 'consensus.mode is local now: deciding alone', at: now });
      this.#serve(pool, 'consensus.mode local: deciding alone');
    }
    // Backends released from an ejection by the new config (its pool lost outlier_detection) are up again.
    for (const id of released) {
      const found = this.#find(id);
      const h = this.#health.get(id);
      if (found && h && h.status !== 'down') this.emit('event', { type: 'backend_up', pool: found.pool.name, backend: found.backend.address, level: found.backend.level, at: now });
    }
    for (const pool of config.pools) {
      const before = old.pools.find((p) => p.name === pool.name)?.override.mode ?? 'auto';
      if (!this.#pools.has(pool.name)) this.#pools.set(pool.name, initialPoolState());
      const approval = pool.override.failbackApproval;
      const approvalBefore = old.pools.find((p) => p.name === pool.name)?.override.failbackApproval;
      if (pool.override.mode !== before && (pool.override.mode === 'active' || before === 'active')) {
        this.#setMode(pool, pool.override.mode === 'active' ? 'manual' : 'auto', `config override ${pool.override.mode}${pool.override.reason ? `: ${pool.override.reason}` : ''}`, false);
      } else if (approval !== undefined && approval !== approvalBefore && this.#pools.get(pool.name)?.awaitingApproval !== undefined) {
        // A new approval token (FailoverPool spec.failback.approve) approves the failback awaited now; the same
        // token again, or one that arrives while nothing awaits, approves nothing.
        this.#decide(pool, false, approveFailback);
      } else {
        this.#decide(pool, false);
      }
    }
    for (const name of new Set([...this.#reporters.keys(), ...this.#decisions.keys()])) this.#followSharedRamp(name);
    this.#routing = this.#buildRouting();
    this.emit('event', { type: 'config_applied', version, previous, at: now });
    this.emit('routing', this.#routing);
    if (!this.#stopped && this.#started) {
      for (const pool of config.pools) {
        for (const b of pool.backends) {
          const isNew = fresh.some((f) => f.backend.id === b.id);
          if (isNew) this.#unprobed.add(b.id);
          this.#scheduleProbe(pool, b, isNew ? 0 : Math.round(b.healthCheck.intervalMs * this.#random()));
        }
      }
    }
    return true;
  }

  /** Manual failover on (SPEC 2: the first serving level above 0, regardless of health). */
  activate(poolName: string, reason = 'manual activation'): PoolStatus {
    this.#setMode(this.#pool(poolName), 'manual', reason, true);
    return this.status(poolName)[0] as PoolStatus;
  }

  /** Back to automatic behaviour, with the recovery rules. */
  deactivate(poolName: string, reason = 'manual deactivation'): PoolStatus {
    this.#setMode(this.#pool(poolName), 'auto', reason, true);
    return this.status(poolName)[0] as PoolStatus;
  }

  /**
   * A decision from the operator (SPEC 9). A lower sequence than the one held is refused (stale), the same one
   * renews the lease (the operator re-sends it before the ttl runs out), a higher one replaces it. The pool then
   * serves its level and shares until `ttlMs` from now; per-request rescue stays local.
   */
  applyDecision(poolName: string, d: SharedDecision): PoolStatus {
    const pool = this.#pool(poolName);
    if (pool.consensus.mode !== 'shared') throw new DecisionRefused('local', `pool "${pool.name}" decides locally (consensus.mode: local); it takes no shared decision`);
    const held = this.#decisions.get(pool.name);
    if (held !== undefined && d.sequence < held.sequence) {
      throw new DecisionRefused('stale', `decision sequence ${d.sequence} is lower than the one held (${held.sequence}); nothing was changed`, held.sequence);
    }
    const now = this.#clock.now();
    const wasShared = this.#fresh(pool.name, now) !== undefined;
    const ramps = d.shares.length > 1;
    const paused = ramps ? d.paused : undefined;
    const next: HeldDecision = { level: d.level, shares: d.shares, sequence: d.sequence, expiresAt: now + d.ttlMs, paused };
    this.#decisions.set(pool.name, next);
    this.#armExpiry(pool.name, next.expiresAt);
    const changed = !wasShared || held === undefined || held.level !== d.level || JSON.stringify(held.shares) !== JSON.stringify(d.shares);
    if (!wasShared) this.emit('event', { type: 'decision_source', pool: pool.name, source: 'shared', sequence: d.sequence, reason: `decision ${d.sequence} from the operator`, at: now });
    // The operator's ramp gate, announced as the local engine announces its own (status ramp.paused, the metric).
    const wasPaused = wasShared ? held?.paused : undefined;
    const from = d.shares.find((x) => x.level !== d.level)?.level ?? held?.shares.find((x) => x.level !== d.level)?.level ?? d.level;
    const percent = d.shares.find((x) => x.level === d.level)?.percent ?? 100;
    if (paused !== undefined && wasPaused === undefined) {
      this.emit('event', { type: 'ramp_paused', pool: pool.name, from, to: d.level, percent, reason: paused.reason, at: now });
    } else if (paused === undefined && wasPaused !== undefined) {
      this.emit('event', { type: 'ramp_resumed', pool: pool.name, from, to: d.level, percent, reason: ramps ? `shared decision ${d.sequence}: the ramp gate lets the ramp go on` : `shared decision ${d.sequence}: the ramp ended`, at: now });
    }
    if (changed) {
      this.#serve(pool, `shared decision ${d.sequence}`);
      this.#routing = this.#buildRouting();
      this.emit('routing', this.#routing);
    }
    this.#followSharedRamp(pool.name);
    return this.status(pool.name)[0] as PoolStatus;
  }

  /**
   * failback: manual: let the failback the pool awaits happen now. Throws NothingToApproveError when none
   * awaits (the pool is not failed over, its earlier level is not healthy long enough yet, or failback is auto).
   */
  failback(poolName: string): PoolStatus {
    const pool = this.#pool(poolName);
    const st = this.#pools.get(pool.name) ?? initialPoolState();
    if (st.awaitingApproval === undefined) {
      const detail = (pool.policy.failback ?? 'auto') === 'auto' ? 'its failover.failback is auto'
        : st.failoverSince === undefined ? 'it is not failed over'
          : st.mode === 'manual' ? 'it is manually activated (deactivate it first)'
            : `no earlier level than ${st.active} has been healthy long enough yet`;
      throw new NothingToApproveError(pool.name, detail);
    }
    this.#decide(pool, true, approveFailback);
    return this.status(poolName)[0] as PoolStatus;
  }

  /** Status of one pool or of all. Contains no secrets: names, addresses, levels and health only. */
  status(poolName?: string): PoolStatus[] {
    const pools = poolName === undefined ? this.#config.pools : [this.#pool(poolName)];
    const now = this.#clock.now();
    return pools.map((pool) => {
      const st = this.#pools.get(pool.name) ?? initialPoolState();
      const levels = this.#levels(pool);
      const held = this.#decisions.get(pool.name);
      const shared = this.#fresh(pool.name, now);
      const served = this.#served.get(pool.name);
      const sharedRamp = shared !== undefined && shared.shares.length > 1 ? shared.shares.find((x) => x.level !== shared.level) : undefined;
      return {
        name: pool.name,
        activeLevel: shared?.level ?? st.active,
        mode: st.mode,
        override: { mode: pool.override.mode, reason: pool.override.reason ?? null },
        strategy: pool.policy.strategy,
        failoverActive: shared !== undefined ? shared.level > 0 || pool.override.mode === 'active' : st.failoverSince !== undefined,
        failoverCount: st.failovers + (this.#sharedFailovers.get(pool.name) ?? 0),
        activeSince: iso(shared !== undefined ? served?.since : st.failoverSince),
        lastFailoverTime: iso(this.#lastFailover.get(pool.name)),
        ramp: shared !== undefined
          ? (sharedRamp ? { from: sharedRamp.level, to: shared.level, percent: 100 - sharedRamp.percent, paused: shared.paused ? { reason: shared.paused.reason } : null } : null)
          : (st.ramp ? { from: st.ramp.from, to: st.active, percent: st.ramp.percent, paused: st.rampPaused ? { reason: st.rampPaused.reason } : null } : null),
        flapping: st.flapping ? { since: iso(st.flapping.since) as string, failovers: st.flapping.failovers, holdMs: st.flapping.holdMs } : null,
        failback: {
          mode: pool.policy.failback ?? 'auto',
          awaitingApproval: st.awaitingApproval !== undefined,
          to: st.awaitingApproval?.to ?? null,
          since: iso(st.awaitingApproval?.since),
          message: st.awaitingApproval ? `awaiting failback approval: level ${st.awaitingApproval.to} is healthy; traffic stays on level ${st.active}` : null,
        },
        shares: this.#currentShares(pool, now),
        levels: levels.map((l) => ({ level: l.level, serving: l.serving, backends: pool.backends.filter((b) => b.level === l.level).length })),
        backends: pool.backends.map((b) => {
          const h = this.#health.get(b.id) ?? initialHealth(0);
          const ej = this.#ejected.get(b.id);
          return {
            address: b.address, level: b.level, region: b.region ?? null, weight: b.weight, health: ej ? 'down' : h.status,
            since: new Date(h.since).toISOString(), lastCheck: iso(h.lastCheckAt), lastError: ej ? ej.reason : h.lastError ?? null,
            downBy: ej ? 'outlier' : h.downBy ?? null, ejectedUntil: iso(ej?.until),
          };
        }),
        decision: { source: shared !== undefined ? 'shared' : 'local', sequence: held?.sequence ?? null, expiresAt: iso(held?.expiresAt) },
      };
    });
  }

  /** The held decision of a shared pool while it is fresh, else undefined. */
  #fresh(pool: string, now: number): HeldDecision | undefined {
    const held = this.#decisions.get(pool);
    return held !== undefined && now < held.expiresAt ? held : undefined;
  }

  /**
   * What the data plane serves: the fresh shared decision's shares, else the local engine's. A shared level is
   * sent to even where this proxy alone sees none of its backends serve (evenIfDown): the replicas agreed on it,
   * and per-request rescue takes a request that fails there on to the next candidate.
   */
  #currentShares(pool: PoolConfig, now: number): readonly Share[] {
    const shared = this.#fresh(pool.name, now);
    // No share at all (the replicas see nothing serve): still try the decided level, and rescue from there.
    if (shared !== undefined && shared.shares.length === 0) return [{ level: shared.level, percent: 100, evenIfDown: true }];
    if (shared !== undefined) return shared.shares.map((x) => ({ level: x.level, percent: x.percent, evenIfDown: true as const }));
    return this.#shares.get(pool.name) ?? [];
  }

  /**
   * Announces a change of what the pool serves (whoever decided it) as the engine's failover events, so logs,
   * metrics and notifications follow the level traffic is on. The local engine announces its own moves while
   * the pool decides alone; this covers shared decisions and switches between the two.
   */
  #serve(pool: PoolConfig, reason: string): void {
    const now = this.#clock.now();
    const shared = this.#fresh(pool.name, now);
    const st = this.#pools.get(pool.name) ?? initialPoolState();
    const before = this.#served.get(pool.name) ?? { level: 0, since: undefined };
    const level = shared?.level ?? st.active;
    if (shared === undefined) { this.#served.set(pool.name, { level, since: st.failoverSince }); }
    if (level === before.level) return;
    const at = now;
    if (before.level === 0) {
      this.#served.set(pool.name, { level, since: shared ? at : st.failoverSince });
      if (shared) this.#sharedFailovers.set(pool.name, (this.#sharedFailovers.get(pool.name) ?? 0) + 1);
      this.#lastFailover.set(pool.name, at);
      this.emit('event', { type: 'failover_activated', pool: pool.name, from: before.level, to: level, reason, at });
    } else if (level === 0) {
      this.#served.set(pool.name, { level, since: undefined });
      this.emit('event', { type: 'failover_recovered', pool: pool.name, from: before.level, to: level, durationMs: at - (before.since ?? at), reason, at });
    } else {
      this.#served.set(pool.name, { level, since: before.since ?? at });
      this.emit('event', { type: 'level_changed', pool: pool.name, from: before.level, to: level, reason, at });
    }
  }

  #armExpiry(pool: string, at: number): void {
    const old = this.#expiryTimers.get(pool);
    if (old) clearTimeout(old);
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#expiryTimers.delete(pool);
      const held = this.#decisions.get(pool);
      const current = this.#config.pools.find((p) => p.name === pool);
      if (!held || !current) return;
      // Node arms timers from the loop's cached time, which can lag the clock: a timer may fire a few ms before
      // expiresAt. Still fresh means early, not renewed (a renewal re-arms): wait out the rest.
      if (this.#fresh(pool, this.#clock.now()) !== undefined) { this.#armExpiry(pool, held.expiresAt); return; }
      this.emit('event', { type: 'decision_source', pool, source: 'local', sequence: held.sequence, reason: `decision ${held.sequence} expired (no renewal from the operator within its ttl)`, at: this.#clock.now() });
      this.#followSharedRamp(pool);
      this.#serve(current, `decision ${held.sequence} expired: deciding locally`);
      this.#routing = this.#buildRouting();
      this.emit('routing', this.#routing);
    }, Math.max(0, at - this.#clock.now()));
    timer.unref();
    this.#expiryTimers.set(pool, timer);
  }

  /** Forgets a pool's decision (its pool left the config or decides alone now); the sequence held goes too. */
  #dropDecision(pool: string): void {
    const t = this.#expiryTimers.get(pool);
    if (t) clearTimeout(t);
    this.#expiryTimers.delete(pool);
    this.#decisions.delete(pool);
  }

  #pool(name: string): PoolConfig {
    const pool = this.#config.pools.find((p) => p.name === name);
    if (!pool) throw new UnknownPoolError(name, this.#config.pools.map((p) => p.name));
    return pool;
  }

  #setMode(pool: PoolConfig, mode: 'auto' | 'manual', reason: string, publish: boolean): void {
    const state = this.#pools.get(pool.name) ?? initialPoolState();
    if (state.mode !== mode) this.emit('event', { type: 'mode_changed', pool: pool.name, mode, reason, at: this.#clock.now() });
    this.#decide(pool, publish, mode === 'manual' ? activate : deactivate);
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
      const started = performance.now();
      void this.#probe(b).then((result) => {
        // A probe of a backend that a reload removed (or changed to another pool) is dropped.
        if (this.#stopped || this.#probeTimers.has(b.id) || !this.#config.pools.some((p) => p.backends.includes(b))) return;
        this.emit('probe', { pool: pool.name, backend: b.address, ok: result.ok, ms: performance.now() - started });
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
    // An ejected backend is down whatever its probes say: the change shows when the ejection ends.
    if (this.#ejected.has(b.id)) return;
    const at = outcome.at;
    if (after.status === 'down') {
      this.emit('event', { type: 'backend_down', pool: pool.name, backend: b.address, level: b.level, error: after.lastError ?? 'unknown error', by: after.downBy ?? outcome.source, at });
    } else {
      this.emit('event', { type: 'backend_up', pool: pool.name, backend: b.address, level: b.level, at });
    }
    this.#decide(pool, true);
  }

  #levels(pool: PoolConfig): LevelHealth[] {
    return pool.levels.map((level) => {
      let serving = 0;
      let servingWeight = 0;
      let totalWeight = 0;
      for (const b of pool.backends) {
        if (b.level !== level || b.weight === 0) continue;
        totalWeight += b.weight;
        if (this.#serves(b)) { serving++; servingWeight += b.weight; }
      }
      return { level, serving, servingWeight, totalWeight };
    });
  }

  /** Runs the engine for one pool; publishes routing when anything the data plane sees changed. */
  #decide(pool: PoolConfig, publish: boolean, step?: (s: PoolState, input: Parameters<typeof evaluate>[1]) => Decision, traffic?: readonly LevelTraffic[]): Decision {
    const state = this.#pools.get(pool.name) ?? initialPoolState();
    // A gated ramp's due step is judged on the traffic of that step only (#judgeStep): any other decision leaves it.
    const trafficPending = traffic === undefined && this.#gateBaseline.has(pool.name);
    const input = { pool: pool.name, levels: this.#levels(pool), policy: pool.policy, now: this.#clock.now(), traffic, trafficPending };
    const decision = (step ?? evaluate)(state, input);
    this.#pools.set(pool.name, decision.state);
    this.#shares.set(pool.name, decision.shares);
    // While a fresh shared decision is served, the engine's own moves are not what traffic does: keep its
    // state (it takes over when the decision expires) but do not announce them.
    if (this.#fresh(pool.name, input.now) === undefined) {
      for (const e of decision.events) {
        if (e.type === 'failover_activated') this.#lastFailover.set(pool.name, e.at);
        this.emit('event', e);
      }
    } else {
      // What this proxy's engine says about the pool without moving it (flapping, awaiting a failback approval,
      // a paused ramp) is still announced: its status reports them, and the operator re-reads it on the event.
      for (const e of decision.events) if (!MOVES.has(e.type)) this.emit('event', e);
    }
    if (this.#fresh(pool.name, input.now) === undefined) {
      this.#served.set(pool.name, { level: decision.state.active, since: decision.state.failoverSince });
    }
    this.#arm(pool, decision.wakeAt);
    this.#followRamp(pool, decision.state, traffic !== undefined);
    const ramp = decision.state.ramp;
    if (trafficPending && ramp !== undefined && input.now >= ramp.nextStepAt) this.#judgeStep(pool);
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
      if (!current) return;
      const ramp = this.#pools.get(current.name)?.ramp;
      if (ramp !== undefined && this.#gateBaseline.has(current.name) && this.#clock.now() >= ramp.nextStepAt) this.#judgeStep(current);
      else this.#decide(current, true);
    }, Math.max(0, wakeAt - this.#clock.now()));
    timer.unref();
    this.#wakeTimers.set(pool.name, timer);
  }

  /**
   * ramp_gate: while a pool ramps under a gate, keep a reading of its traffic by level from the start of the
   * current step (the one the next step is judged on); none when it does not ramp. A decision that judged a
   * step (`judged`) starts the next step's baseline.
   */
  #followRamp(pool: PoolConfig, state: PoolState, judged: boolean): void {
    if (state.ramp === undefined || pool.policy.rampGate === undefined || this.#traffic === undefined) { this.#gateBaseline.delete(pool.name); return; }
    if (judged || !this.#gateBaseline.has(pool.name)) this.#gateBaseline.set(pool.name, this.#readLevels(pool));
  }

  /** A gated ramp step is due: read the traffic of the step that ends now, then decide on it (once at a time). */
  #judgeStep(pool: PoolConfig): void {
    const baseline = this.#gateBaseline.get(pool.name);
    if (baseline === undefined || this.#judging.has(pool.name)) return;
    this.#judging.add(pool.name);
    void this.#stepTraffic(pool, baseline).then((traffic) => {
      this.#judging.delete(pool.name);
      const again = this.#config.pools.find((p) => p.name === pool.name);
      if (!this.#stopped && again) this.#decide(again, true, undefined, traffic);
    });
  }

  async #readLevels(pool: PoolConfig): Promise<ReadonlyMap<number, TrafficReading>> {
    const out = new Map<number, TrafficReading>();
    const metrics = await (this.#traffic as NonNullable<ControllerOptions['traffic']>)().catch(() => []);
    for (const level of pool.levels) {
      out.set(level, readTraffic(metrics, pool.name, { level, backends: new Set(pool.backends.filter((b) => b.level === level).map((b) => b.address)) }));
    }
    return out;
  }

  async #stepTraffic(pool: PoolConfig, baseline: Promise<ReadonlyMap<number, TrafficReading>>): Promise<LevelTraffic[]> {
    const [before, after] = await Promise.all([baseline, this.#readLevels(pool)]);
    const out: LevelTraffic[] = [];
    for (const [level, b] of after) {
      const a = before.get(level);
      if (a === undefined) continue;
      const d = between(a, b);
      out.push({ level, requests: d.requests, errors: d.errors, p99Ms: d.latencyMs.p99 });
    }
    return out;
  }

  /**
   * ramp_gate in shared mode (SPEC 9/10): the operator decides the ramp but only the proxies see traffic. While
   * the fresh shared decision of a gated pool ramps (two shares), report the pool's traffic by level every
   * trafficReportMs on the event stream (`traffic`), once at once so the operator has the step's start; stop
   * when the ramp ends, the decision expires or the pool leaves (the operator then has nothing to judge).
   */
  #followSharedRamp(name: string): void {
    const pool = this.#config.pools.find((p) => p.name === name);
    const held = pool === undefined ? undefined : this.#fresh(name, this.#clock.now());
    const want = pool !== undefined && held !== undefined && held.shares.length > 1 && pool.consensus.mode === 'shared'
      && pool.policy.rampGate !== undefined && this.#traffic !== undefined && !this.#stopped;
    const timer = this.#reporters.get(name);
    if (!want) {
      if (timer) clearInterval(timer);
      this.#reporters.delete(name);
      return;
    }
    if (timer) return;
    const report = (): void => {
      const current = this.#config.pools.find((p) => p.name === name);
      const fresh = this.#fresh(name, this.#clock.now());
      if (current === undefined || fresh === undefined || fresh.shares.length < 2) { this.#followSharedRamp(name); return; }
      void this.#readLevels(current).then((levels) => {
        if (this.#stopped || !this.#reporters.has(name)) return;
        this.emit('traffic', {
          pool: name,
          levels: [...levels].map(([level, r]) => ({ level, requests: r.requests, errors: r.errors, buckets: r.buckets.map((b) => ({ le: b.le === Infinity ? '+Inf' as const : b.le, count: b.count })) })),
          at: this.#clock.now(),
        });
      });
    };
    const t = setInterval(report, trafficReportMs(pool));
    t.unref();
    this.#reporters.set(name, t);
    report();
  }

  #buildRouting(): RoutingState {
    const pools: Record<string, PoolRouting> = {};
    for (const pool of this.#config.pools) {
      pools[pool.name] = {
        shares: this.#currentShares(pool, this.#clock.now()),
        serving: pool.backends.filter((b) => this.#serves(b)).map((b) => b.id),
      };
    }
    return { seq: ++this.#seq, configVersion: this.#version, pools };
  }
}
