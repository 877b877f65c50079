// Shared decisions, the I/O side (SPEC 9, ADR 0005): the leader keeps every selected proxy's view of each
// shared FailoverPool (from the proxies' event streams, no polling), steps the pure consensus (consensus.ts)
// when views change, and sends the decision to every proxy of the pool until each acknowledges its sequence,
// renewing the lease (ttl) at a third of its length.
//
//   view change (backend_down/up, hello, status)  -> touch(pool) -> coalesced for COALESCE_MS -> step
//   traffic report (while a gated ramp runs)       -> checked, folded into the pool's gate readings; no step
//                                                     (the ramp's due step, on its timer, judges them)
//   step: O(proxies x backends); a changed decision -> every sender at once, and the pool key (status)
//   sender (one per pool and pod): PUT until 200; 409 stale -> read the sequence held, raise ours above it
//
// Views come from ready proxies only (the others are warming up or leaving); when none is ready yet (a fresh
// rollout), from every proxy that runs the pool, so bootstrap proxies get a first decision and become ready.
import { formatDuration } from '@veloflux/config/duration';
import { loadConfigText } from '@veloflux/config/load';
import type { PoolConfig } from '@veloflux/config/types';
import { selects } from '@veloflux/kube/render';
import type { ProxyStatus } from '@veloflux/kube/types';
import { initialConsensus, observeTraffic, raiseFloor, step, ttlMs } from './consensus.ts';
import { parseTraffic } from './traffic.ts';
import type { ConsensusState, Health, PoolDecision, ProxyView } from './consensus.ts';
import type { Logger } from './log.ts';
import { AdminApiError } from './proxies.ts';
import type { PodState } from './push.ts';
import { isAddressable, isReady, poolKey, renderFor } from './reconcile.ts';
import type { PodObject, PoolObject, World } from './reconcile.ts';

/** View changes within this window are one step (several proxies see the same backend fail together). */
export const COALESCE_MS = 5;
/** A sender's retry delay after a failure: doubled each time from the first, at most the last. Milliseconds. */
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 1000;

export interface Target {
  readonly pod: PodObject;
  readonly state: PodState;
  readonly ready: boolean;
}

/** The view of one pool from a proxy's last status plus the events since. */
export function viewOf(status: ProxyStatus | undefined, pool: string, fallbackId: string): ProxyView | undefined {
  const p = status?.pools.find((x) => x.name === pool);
  if (!p) return undefined;
  const health = (h: string | undefined): Health => (h === 'up' || h === 'down' ? h : 'unknown');
  return { proxy: status?.proxy ?? fallbackId, backends: (p.backends ?? []).map((b) => ({ address: b.address, health: health(b.health) })) };
}

/**
 * Folds an event into a proxy's last status, in place: backend_down / backend_up change its view, the failover
 * events its level. True when the event is fully folded, so the caller need not read the status again (with 20
 * proxies every change would be 20 status reads, each a pool reconcile).
 */
export function foldEvent(status: ProxyStatus | undefined, type: string, data: unknown): boolean {
  if (!status) return false;
  const d = data as { pool?: unknown; backend?: unknown; to?: unknown };
  const pool = status.pools.find((p) => p.name === d.pool);
  if (!pool) return false;
  if (type === 'backend_down' || type === 'backend_up') {
    const b = pool.backends?.find((x) => x.address === d.backend);
    if (!b) return false;
    b.health = type === 'backend_down' ? 'down' : 'up';
    return true;
  }
  if ((type === 'failover_activated' || type === 'level_changed' || type === 'failover_recovered') && Number.isInteger(d.to)) {
    pool.activeLevel = d.to as number;
    pool.failoverActive = (d.to as number) > 0 || pool.mode === 'manual';
    if (type === 'failover_activated') pool.failoverCount = (pool.failoverCount ?? 0) + 1;
    return true;
  }
  return false;
}

class Sender {
  readonly #run: PoolRun;
  readonly #state: PodState;
  readonly #abort = new AbortController();
  #want: { decision: PoolDecision; ttlMs: number } | undefined;
  #wake: (() => void) | undefined;
  /** The sequence the proxy last acknowledged, and until when that acknowledgement is fresh. */
  acked: number | undefined;
  ackedUntil = 0;
  /** The last sequence tried at least once (acknowledged or not). */
  attempted: number | undefined;
  /** The proxy refused `paused` as an unknown field (a proxy older than the shared ramp gate): not sent again. */
  #noPaused = false;

  constructor(run: PoolRun, state: PodState) {
    this.#run = run;
    this.#state = state;
    void this.#loop();
  }

  get state(): PodState { return this.#state; }

  want(decision: PoolDecision, ttl: number): void {
    this.#want = { decision, ttlMs: ttl };
    this.#wake?.();
  }

  stop(): void {
    this.#abort.abort();
    this.#wake?.();
  }

  /** Waits `ms`, or less when a new decision comes or the sender stops. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done(): void { clearTimeout(timer); resolve(); }
      this.#wake = done;
    });
  }

  async #loop(): Promise<void> {
    let failures = 0;
    let renewAt = 0;
    const run = this.#run;
    while (!this.#abort.signal.aborted && !this.#state.abort.signal.aborted) {
      const want = this.#want;
      const now = run.now();
      if (want === undefined) { await this.#pause(60_000); continue; }
      if (this.acked === want.decision.sequence && now < renewAt) { await this.#pause(renewAt - now); continue; }
      const { level, shares, sequence, paused } = want.decision;
      try {
        const sentAt = run.now();
        const body = { level, shares, sequence, ttl: formatDuration(want.ttlMs), ...(paused !== undefined && !this.#noPaused ? { paused } : {}) };
        await this.#state.client.decide(run.name, body, Math.max(500, want.ttlMs / 2));
        failures = 0;
        // Only a change of what status counts (a new sequence, or a lease that had lapsed) is worth a status
        // reconcile; a plain renewal is not (with 20 proxies that would be 30 reconciles a second).
        const counts = this.acked !== sequence || sentAt >= this.ackedUntil;
        this.acked = sequence;
        this.ackedUntil = sentAt + want.ttlMs;
        // Renew at a third of the lease: two renewals may fail before the proxy falls back to deciding alone.
        renewAt = sentAt + Math.floor(want.ttlMs / 3);
        this.attempted = sequence;
        if (counts) run.acknowledged(this, sequence);
      } catch (err) {
        if (this.#abort.signal.aborted) return;
        if (err instanceof AdminApiError && err.code === 'VF_ERR_BAD_PARAMETER' && err.message.includes('"paused"') && !this.#noPaused) {
          // An older proxy: the decision without the pause (its status then shows none), at once.
          this.#noPaused = true;
          run.log.info({ pod: this.#state.key }, 'shared decision: the proxy does not take `paused` (an older version); sent without it');
          continue;
        }
        const first = this.attempted !== sequence;
        this.attempted = sequence;
        if (first) run.acknowledged(this, sequence);
        failures++;
        // The lease this proxy held has run out: it no longer counts as agreeing.
        if (this.acked !== undefined && run.now() >= this.ackedUntil) { this.acked = undefined; run.lapsed(); }
        if (err instanceof AdminApiError && err.code === 'VF_ERR_DECISION_STALE') {
          const held = await this.#state.client.heldSequence(run.name, 2000).catch(() => 0);
          run.stale(held);
        } else if (failures === 1 || failures % 20 === 0) {
          run.log.info({ pod: this.#state.key, err: (err as Error).message.slice(0, 200), failures }, 'shared decision not delivered: retrying');
        }
        await this.#pause(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(failures - 1, 5)));
      }
    }
  }
}

class PoolRun {
  readonly key: string;
  readonly name: string;
  readonly log: Logger;
  readonly now: () => number;
  state: ConsensusState;
  /** The pool as the proxies run it, at the last step (traffic reports are read against its levels and gate). */
  pool: PoolConfig | undefined;
  ttlMs = 2000;
  readonly senders = new Map<string, Sender>();
  wake: NodeJS.Timeout | undefined;
  readonly #onAck: (run: PoolRun) => void;
  readonly #onStale: (run: PoolRun) => void;

  constructor(key: string, name: string, state: ConsensusState, deps: { log: Logger; now: () => number; onAck: (run: PoolRun) => void; onStale: (run: PoolRun) => void }) {
    this.key = key;
    this.name = name;
    this.state = state;
    this.log = deps.log;
    this.now = deps.now;
    this.#onAck = deps.onAck;
    this.#onStale = deps.onStale;
  }

  acknowledged(_s: Sender, sequence: number): void {
    if (sequence === this.state.decision?.sequence) this.#onAck(this);
  }

  /** A proxy's acknowledgement lapsed (it stopped answering): status counts one proxy fewer. */
  lapsed(): void {
    this.#onAck(this);
  }

  /** A proxy holds `held`, above our sequence: go above it and send again. */
  stale(held: number): void {
    const before = this.state.decision?.sequence;
    this.state = raiseFloor(this.state, held);
    if (this.state.decision?.sequence !== before) this.log.info({ pool: this.key, held, sequence: this.state.decision?.sequence }, 'shared decision: a proxy holds a higher sequence; re-issued above it');
    this.#onStale(this);
  }

  stop(): void {
    if (this.wake) clearTimeout(this.wake);
    for (const s of this.senders.values()) s.stop();
    this.senders.clear();
  }
}

export interface PoolDecisionStatus {
  readonly sequence: number;
  readonly level: number | undefined;
  readonly shares: readonly { readonly level: number; readonly percent: number }[];
  /** failback: manual: the operator's engine waits for an approval (the shared decision holds the backup). */
  readonly awaitingApproval: boolean;
  /** Every proxy of the pool has been sent the current decision at least once (acknowledged or not). */
  readonly settled: boolean;
  /** Ready pods (by name) whose proxy acknowledged the current sequence within its lease. */
  readonly agreeing: (readyPods: readonly string[]) => number;
  /** SPEC 10 on the shared decision's engine: the flapping episode. */
  readonly flapping: { readonly since: number; readonly failovers: number; readonly holdMs: number } | undefined;
  /** SPEC 10: the decision's ramp waits on the ramp gate, and why; and the ramp itself while one runs. */
  readonly paused: { readonly reason: string } | undefined;
  readonly ramp: { readonly from: number; readonly to: number; readonly percent: number } | undefined;
}

export class Decisions {
  readonly #world: World;
  readonly #log: Logger;
  readonly #runs = new Map<string, PoolRun>();
  readonly #dirty = new Set<string>();
  readonly #resolved = new Map<string, { text: string; pool: PoolConfig | undefined }>();
  #timer: NodeJS.Timeout | undefined;
  #active = false;
  readonly #stepped: (changed: boolean) => void;

  /** `stepped`: after every step, whether it changed the decision (the manager's metrics). */
  constructor(world: World, hooks: { stepped?: (changed: boolean) => void } = {}) {
    this.#world = world;
    this.#stepped = hooks.stepped ?? (() => undefined);
    this.#log = world.log.child({ component: 'decisions' });
  }

  /** Only the leader decides: start when leading, stop on shutdown (senders end, proxies' leases run out). */
  start(): void {
    this.#active = true;
    for (const p of this.#world.pools.list()) this.touch(p.metadata.namespace as string, p.metadata.name);
  }

  stop(): void {
    this.#active = false;
    if (this.#timer) clearTimeout(this.#timer);
    for (const r of this.#runs.values()) r.stop();
    this.#runs.clear();
  }

  /** Something a pool's decision reads changed: step it soon (coalesced). */
  touch(ns: string, name: string): void {
    if (!this.#active) return;
    this.#dirty.add(poolKey(ns, name));
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#flush(), COALESCE_MS);
      this.#timer.unref();
    }
  }

  touchNamespace(ns: string): void {
    for (const p of this.#world.pools.list(ns)) this.touch(ns, p.metadata.name);
  }

  /**
   * A proxy's `traffic` event (SPEC 10 ramp gate): checked (a malformed report is dropped, never thrown on) and
   * folded into its pool's gate readings while that pool's decision ramps under a gate. No step: the ramp's due
   * step judges the readings on its own timer, so reports cost no reconcile.
   */
  traffic(ns: string, pod: string, data: unknown): void {
    const report = parseTraffic(data);
    if (report === undefined) return;
    const run = this.#runs.get(poolKey(ns, report.pool));
    if (run === undefined || run.pool === undefined || run.state.gate === undefined) return;
    run.state = observeTraffic(run.state, run.pool, pod, report.levels);
  }

  status(ns: string, name: string): PoolDecisionStatus | undefined {
    const run = this.#runs.get(poolKey(ns, name));
    const d = run?.state.decision;
    if (!run || !d) return undefined;
    return {
      sequence: d.sequence,
      level: d.level,
      shares: d.shares,
      awaitingApproval: run.state.engine.awaitingApproval !== undefined,
      settled: [...run.senders.values()].every((s) => s.attempted === d.sequence),
      flapping: run.state.engine.flapping,
      paused: d.paused,
      ramp: run.state.engine.ramp === undefined ? undefined : { from: run.state.engine.ramp.from, to: d.level, percent: run.state.engine.ramp.percent },
      agreeing: (ready) => {
        const now = this.#world.now();
        return ready.filter((pod) => {
          const s = run.senders.get(`${ns}/${pod}`);
          return s !== undefined && s.acked === d.sequence && now < s.ackedUntil;
        }).length;
      },
    };
  }

  #flush(): void {
    this.#timer = undefined;
    const keys = [...this.#dirty];
    this.#dirty.clear();
    for (const key of keys) {
      try {
        this.#step(key);
      } catch (err) {
        this.#log.warn({ pool: key, err: (err as Error).message }, 'shared decision step failed');
      }
    }
  }

  /** Proxies of the pool: addressable selected pods the operator follows whose running config has the pool. */
  #targets(pool: PoolObject): Target[] {
    const ns = pool.metadata.namespace as string;
    const out: Target[] = [];
    for (const pod of this.#world.pods.list(ns)) {
      if (!isAddressable(pod) || !selects(pool.spec.proxySelector, pod.metadata.labels ?? {})) continue;
      const state = this.#world.proxies.get(`${ns}/${pod.metadata.name}`);
      if (!state?.status?.pools.some((p) => p.name === pool.metadata.name)) continue;
      out.push({ pod, state, ready: isReady(pod) });
    }
    return out;
  }

  /**
   * The pool as the proxies run it (resolved: defaults, levels, policy). A proxy's config version names the config
   * it runs, so a resolved pool is cached by that version: a step renders only when a proxy runs a config not seen
   * before (a render is a YAML round trip, far more than the step itself).
   */
  #resolve(key: string, name: string, targets: readonly Target[]): PoolConfig | undefined {
    const t = targets.find((x) => x.state.base !== undefined);
    if (!t) return undefined;
    const cacheKey = `${key} ${t.state.version ?? ''}`;
    const hit = this.#resolved.get(cacheKey);
    if (hit !== undefined) return hit.pool;
    const rendered = renderFor(this.#world, t.pod, t.state.base as NonNullable<PodState['base']>);
    const loaded = loadConfigText(rendered.text);
    const pool = loaded.ok ? loaded.config.pools.find((p) => p.name === name) : undefined;
    if (this.#resolved.size > 256) this.#resolved.clear();
    // Cached under the version the render produces; the proxy reports it once it runs it.
    this.#resolved.set(`${key} ${rendered.version}`, { text: rendered.text, pool });
    return pool;
  }

  #step(key: string): void {
    const [, ns, name] = key.split('/') as [string, string, string];
    const pool = this.#world.pools.get(ns, name);
    const run0 = this.#runs.get(key);
    if (!pool || (pool.spec.consensus?.mode ?? 'shared') !== 'shared') {
      // Gone, or each proxy decides alone now: stop sending; the proxies' leases run out (their configs say local soon).
      if (run0) { run0.stop(); this.#runs.delete(key); this.#world.enqueue(key); }
      return;
    }
    const targets = this.#targets(pool);
    const resolved = this.#resolve(key, name, targets);
    if (!resolved) return;
    const now = this.#world.now();
    let run = run0;
    if (!run) {
      const stored = pool.status?.consensus;
      run = new PoolRun(key, name, initialConsensus(stored?.sequence ?? 0, stored?.level ?? pool.status?.activeLevel ?? 0, now, stored?.shares), {
        log: this.#log, now: () => this.#world.now(),
        onAck: () => this.#world.enqueue(key),
        onStale: (r) => { this.#send(r, targets); this.#world.enqueue(key); },
      });
      this.#runs.set(key, run);
    }
    const ready = targets.filter((t) => t.ready);
    const voters = ready.length > 0 ? ready : targets;
    const views = voters.map((t) => viewOf(t.state.status, name, t.pod.metadata.name)).filter((v): v is ProxyView => v !== undefined);
    const t0 = performance.now();
    const r = step(run.state, { pool: resolved, views, quorum: pool.spec.consensus?.quorum, now });
    this.#stepped(r.changed);
    // A wait for failback approval or a flapping episode that begins or ends changes no decision, but the status.
    const v2 = (e: typeof r.state.engine): string => `${e.awaitingApproval !== undefined} ${e.flapping?.failovers ?? '-'}`;
    const v2Changed = v2(run.state.engine) !== v2(r.state.engine);
    run.state = r.state;
    run.pool = resolved;
    run.ttlMs = ttlMs(resolved);
    for (const e of r.events) {
      if (e.type === 'ramp_paused') this.#log.warn({ pool: key, from: e.from, to: e.to, percent: e.percent, reason: e.reason }, 'shared failover ramp paused');
      else if (e.type === 'ramp_resumed') this.#log.info({ pool: key, from: e.from, to: e.to, percent: e.percent }, 'shared failover ramp resumed');
    }
    if (run.wake) clearTimeout(run.wake);
    run.wake = undefined;
    if (r.wakeAt !== undefined) {
      run.wake = setTimeout(() => this.touch(ns, name), Math.max(0, r.wakeAt - now));
      run.wake.unref();
    }
    this.#send(run, targets);
    if (r.changed) {
      const down = r.verdict.filter((v) => v.down).map((v) => v.address);
      this.#log.info({ pool: key, sequence: r.decision.sequence, level: r.decision.level, shares: r.decision.shares, paused: r.decision.paused?.reason, down, proxies: views.length, stepMs: Number((performance.now() - t0).toFixed(3)) }, 'shared failover decision');
      this.#world.enqueue(key);
    } else if (v2Changed) {
      this.#world.enqueue(key);
    }
  }

  /** Every target gets the current decision; senders of pods no longer targeted stop. */
  #send(run: PoolRun, targets: readonly Target[]): void {
    const d = run.state.decision;
    if (!d) return;
    const keep = new Set<string>();
    for (const t of targets) {
      keep.add(t.state.key);
      let s = run.senders.get(t.state.key);
      if (s && s.state !== t.state) { s.stop(); s = undefined; }
      if (!s) { s = new Sender(run, t.state); run.senders.set(t.state.key, s); }
      s.want(d, run.ttlMs);
    }
    for (const [k, s] of run.senders) if (!keep.has(k)) { s.stop(); run.senders.delete(k); }
  }
}

