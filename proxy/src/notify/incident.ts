// From state events to notices: which events become a notification, which incident each belongs to, and whether
// deduplication or the per-pool rate limit holds it back. Pure: no clock, no timers, no I/O; the caller passes
// `now`, so tests drive it with a table and a manual clock. (A class rather than the engine's (state, input) ->
// decision function because its state is several maps that only this module reads; every method is deterministic.)
//
// An incident is one failover, from `failover_activated` to its `failover_recovered`: both notices, and every
// level change and backend notice in between, carry the same incident id, and the recovery restates the activation
// (when, from which level to which, why). The tracker follows backend_down/backend_up itself, so an activation can
// list the backends that are down at that moment.
//
// What each event becomes (dedupe and rate limit apply after this table):
//
//   event                | incident                          | notice
//   ---------------------+-----------------------------------+------------------------------------------------
//   failover_activated   | opens one (none open)             | failover_activated, with the backends down
//                        | already open, same level          | none (a duplicate: e.g. re-sent after a reload)
//                        | already open, other level         | level_changed inside the open incident
//   level_changed        | the open one (or opens one)       | level_changed
//   failover_recovered   | closes the open one               | failover_recovered, restating the activation
//   backend_down / _up   | the open one, if any              | backend_down / backend_up
//   ramp_step, ramp_paused, ramp_resumed | —                  | none (progress of a move already notified;
//                        |                                   | the pause is in status, metrics and events)
//   flapping / _ended    | the open one, if any              | flapping / flapping_ended (once per episode)
//   failback_awaiting_approval | the open one (the failover)  | failback_awaiting_approval (once per wait)
//
// Deduplication: a notice with the same key (pool, event, subject: levels or backend, incident) as one sent less
// than `dedupeWindowMs` ago is dropped, and so is a backend notice repeating the last state sent for that backend
// in the window (down, down). The controller emits transitions only, so these are repeats from elsewhere: a
// config reload that rebuilds health, two publishers.
//
// Rate limit, per pool, a token bucket (`rateBurst` tokens, one more every `rateRefillMs`):
//   - failover_activated and level_changed take a token; with none left they are suppressed.
//   - backend_down/up take a token only while more than `rateReserve` are left, so a burst of backend churn
//     cannot starve the failover notice that follows it.
//   - failover_recovered takes no token: it is sent exactly when its activation was sent, so every incident a
//     reader saw opening is seen closing, and none closes that never opened.
//   - flapping, flapping_ended and failback_awaiting_approval take no token: the engine emits each once per
//     episode or wait (SPEC 10), and they are the notices a flapping pool's reader needs most.
// Suppressed notices are counted; the next notice sent for the pool says how many were held back.
import { DEFAULTS } from '@veloflux/config/defaults';
import type { ProxyEvent } from '../control/api.ts';

export type NoticeKind = 'failover_activated' | 'level_changed' | 'failover_recovered' | 'backend_down' | 'backend_up' | 'drill'
  | 'flapping' | 'flapping_ended' | 'failback_awaiting_approval';

export interface DownBackend {
  readonly backend: string;
  readonly level: number;
  readonly error: string;
  readonly since: number;
}

export interface Incident {
  /** `<pool>-<UTC time of activation, yyyymmddThhmmssZ>` (plus `-2`, `-3`… if one pool had two in one second). */
  readonly id: string;
  readonly pool: string;
  readonly startedAt: number;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
  /** Backends down when it started. */
  readonly backendsDown: readonly DownBackend[];
  /** Whether its activation notice went out (rate limit): its recovery is sent exactly when it did. */
  readonly announced: boolean;
}

/** One notification, as plain data; format.ts turns it into each channel's message. */
export interface Notice {
  /** Unique per notice (idempotency key for receivers; the email Message-ID). */
  readonly id: string;
  readonly kind: NoticeKind;
  readonly pool: string;
  readonly at: number;
  /** A drill: a test, no real failover. */
  readonly test: boolean;
  /** The incident this notice belongs to; for a recovery, the activation it closes. */
  readonly incident: Incident | undefined;
  readonly from?: number;
  readonly to?: number;
  readonly reason?: string;
  /** failover_recovered: how long the failover lasted. */
  readonly durationMs?: number;
  /** backend_down / backend_up: the backend. */
  readonly backend?: { readonly address: string; readonly level: number; readonly error?: string; readonly by?: 'probe' | 'passive' | 'outlier' };
  /** Backends of the pool down at this moment. */
  readonly backendsDown: readonly DownBackend[];
  /** Notices for this pool held back by the rate limit since the last one sent. */
  readonly suppressed: number;
  /** drill: the caller's description of what the drill checked. */
  readonly summary?: string;
  /** flapping / flapping_ended: failovers in the episode, and the hold failing back needs (flapping). */
  readonly flapping?: { readonly failovers: number; readonly holdMs?: number; readonly windowMs?: number };
}

export type Verdict =
  | { readonly send: true; readonly notice: Notice }
  | { readonly send: false; readonly why: 'ignored' | 'duplicate' | 'rate_limited'; readonly kind?: NoticeKind };

export interface TrackerLimits {
  readonly dedupeWindowMs: number;
  readonly rateBurst: number;
  readonly rateRefillMs: number;
  readonly rateReserve: number;
}

export const DEFAULT_LIMITS: TrackerLimits = {
  dedupeWindowMs: DEFAULTS.notification.dedupeWindowMs,
  rateBurst: DEFAULTS.notification.rateBurst,
  rateRefillMs: DEFAULTS.notification.rateRefillMs,
  rateReserve: DEFAULTS.notification.rateReserve,
};

interface Bucket {
  tokens: number;
  at: number;
}

export class IncidentTracker {
  readonly #limits: TrackerLimits;
  readonly #down = new Map<string, Map<string, DownBackend>>();
  readonly #open = new Map<string, Incident>();
  /** Dedupe: key -> when last sent. */
  readonly #sent = new Map<string, number>();
  /** Last backend state sent, per `pool|backend`: kind and when. */
  readonly #backendSent = new Map<string, { kind: NoticeKind; at: number }>();
  readonly #buckets = new Map<string, Bucket>();
  readonly #suppressed = new Map<string, number>();
  /** Per pool: the last incident id's time part and its count, to number two incidents in one second apart. */
  readonly #lastId = new Map<string, { base: string; n: number }>();
  /** Per pool: the incident closed last and when, to recognise a repeated recovery. */
  readonly #closed = new Map<string, { id: string; at: number }>();
  #seq = 0;

  constructor(limits: TrackerLimits = DEFAULT_LIMITS) {
    this.#limits = limits;
  }

  /** The backends of `pool` down now, as the tracker has followed them. */
  backendsDown(pool: string): DownBackend[] {
    return [...(this.#down.get(pool)?.values() ?? [])].sort((a, b) => a.level - b.level || a.backend.localeCompare(b.backend));
  }

  openIncident(pool: string): Incident | undefined {
    return this.#open.get(pool);
  }

  /** Folds one event into the state and says whether (and what) to notify. */
  observe(e: ProxyEvent, now: number): Verdict {
    switch (e.type) {
      case 'ramp_step':
      case 'ramp_paused':
      case 'ramp_resumed':
      case 'config_applied':
      case 'mode_changed':
      case 'decision_source':
        // Mode and decision-source changes show up as the failover events they cause; config reloads are not incidents.
        return { send: false, why: 'ignored' };
      case 'backend_down': {
        const down = this.#down.get(e.pool) ?? new Map<string, DownBackend>();
        this.#down.set(e.pool, down);
        down.set(e.backend, { backend: e.backend, level: e.level, error: e.error, since: e.at });
        return this.#backend(e.pool, 'backend_down', { address: e.backend, level: e.level, error: e.error, by: e.by }, e.at, now);
      }
      case 'backend_up':
        this.#down.get(e.pool)?.delete(e.backend);
        return this.#backend(e.pool, 'backend_up', { address: e.backend, level: e.level }, e.at, now);
      case 'failover_activated': {
        const open = this.#open.get(e.pool);
        if (open) {
          if (open.to === e.to) return { send: false, why: 'duplicate', kind: 'failover_activated' };
          return this.#levelChanged(e.pool, open, e.from, e.to, e.reason, e.at, now);
        }
        const incident: Incident = { id: this.#incidentId(e.pool, e.at), pool: e.pool, startedAt: e.at, from: e.from, to: e.to, reason: e.reason, backendsDown: this.backendsDown(e.pool), announced: false };
        const allowed = this.#take(e.pool, now, 0);
        const announced = { ...incident, announced: allowed };
        this.#open.set(e.pool, announced);
        if (!allowed) return this.#suppress(e.pool, 'failover_activated');
        return this.#emit({ kind: 'failover_activated', pool: e.pool, at: e.at, incident: announced, from: e.from, to: e.to, reason: e.reason }, `${e.pool}|activated|${announced.id}`, now);
      }
      case 'level_changed': {
        let open = this.#open.get(e.pool);
        if (!open) {
          // Not seen opening (the notifier started, or was reconfigured, mid-failover): open one here.
          open = { id: this.#incidentId(e.pool, e.at), pool: e.pool, startedAt: e.at, from: e.from, to: e.to, reason: e.reason, backendsDown: this.backendsDown(e.pool), announced: true };
          this.#open.set(e.pool, open);
        }
        return this.#levelChanged(e.pool, open, e.from, e.to, e.reason, e.at, now);
      }
      case 'failover_recovered': {
        const open = this.#open.get(e.pool);
        if (!open) {
          const closed = this.#closed.get(e.pool);
          if (closed && now - closed.at < this.#limits.dedupeWindowMs) return { send: false, why: 'duplicate', kind: 'failover_recovered' };
        }
        this.#open.delete(e.pool);
        if (open) this.#closed.set(e.pool, { id: open.id, at: now });
        if (open && !open.announced) return this.#suppress(e.pool, 'failover_recovered');
        const incident = open ?? { id: this.#incidentId(e.pool, e.at - e.durationMs), pool: e.pool, startedAt: e.at - e.durationMs, from: e.to, to: e.from, reason: 'unknown (not seen opening)', backendsDown: [], announced: true };
        return this.#emit({ kind: 'failover_recovered', pool: e.pool, at: e.at, incident, from: e.from, to: e.to, reason: e.reason, durationMs: e.durationMs }, `${e.pool}|recovered|${incident.id}`, now);
      }
      case 'flapping':
      case 'flapping_ended':
      case 'failback_awaiting_approval':
        return this.#episode(e, now);
    }
  }

  /** flapping, flapping_ended, failback_awaiting_approval: linked to the open incident, no token (table above). */
  #episode(e: Extract<ProxyEvent, { type: 'flapping' | 'flapping_ended' | 'failback_awaiting_approval' }>, now: number): Verdict {
    const incident = this.#open.get(e.pool);
    const flapping = e.type === 'flapping' ? { failovers: e.failovers, holdMs: e.holdMs, windowMs: e.windowMs } : e.type === 'flapping_ended' ? { failovers: e.failovers } : undefined;
    return this.#emit({
      kind: e.type, pool: e.pool, at: e.at, incident, from: e.from, to: e.to, reason: e.reason,
      ...(e.type === 'flapping_ended' ? { durationMs: e.durationMs } : {}), ...(flapping ? { flapping } : {}),
    }, `${e.pool}|${e.type}|${e.at}`, now);
  }

  /** A drill notice: bypasses dedupe and the rate limit, consumes nothing. */
  drill(pool: string, summary: string, now: number): Notice {
    return { id: `${pool}-test-${compactTime(now)}-${++this.#seq}`, kind: 'drill', pool, at: now, test: true, incident: undefined, backendsDown: this.backendsDown(pool), suppressed: 0, summary };
  }

  #levelChanged(pool: string, open: Incident, from: number, to: number, reason: string, at: number, now: number): Verdict {
    if (!open.announced) return this.#suppress(pool, 'level_changed');
    const key = `${pool}|level|${open.id}|${from}>${to}`;
    if (this.#duplicate(key, now)) return { send: false, why: 'duplicate', kind: 'level_changed' };
    if (!this.#take(pool, now, 0)) return this.#suppress(pool, 'level_changed');
    return this.#emit({ kind: 'level_changed', pool, at, incident: open, from, to, reason }, key, now);
  }

  #backend(pool: string, kind: 'backend_down' | 'backend_up', backend: NonNullable<Notice['backend']>, at: number, now: number): Verdict {
    const subject = `${pool}|${backend.address}`;
    const last = this.#backendSent.get(subject);
    if (last && last.kind === kind && now - last.at < this.#limits.dedupeWindowMs) return { send: false, why: 'duplicate', kind };
    if (!this.#take(pool, now, this.#limits.rateReserve)) return this.#suppress(pool, kind);
    this.#backendSent.set(subject, { kind, at: now });
    return this.#emit({ kind, pool, at, incident: this.#open.get(pool), backend }, undefined, now);
  }

  #emit(n: Omit<Notice, 'id' | 'test' | 'backendsDown' | 'suppressed'>, key: string | undefined, now: number): Verdict {
    if (key !== undefined) {
      if (this.#duplicate(key, now)) return { send: false, why: 'duplicate', kind: n.kind };
      this.#sent.set(key, now);
    }
    this.#prune(now);
    const suppressed = this.#suppressed.get(n.pool) ?? 0;
    this.#suppressed.delete(n.pool);
    const id = `${n.incident?.id ?? `${n.pool}-${compactTime(n.at)}`}-${n.kind}-${++this.#seq}`;
    return { send: true, notice: { ...n, id, test: false, backendsDown: this.backendsDown(n.pool), suppressed } };
  }

  #duplicate(key: string, now: number): boolean {
    const at = this.#sent.get(key);
    return at !== undefined && now - at < this.#limits.dedupeWindowMs;
  }

  #suppress(pool: string, kind: NoticeKind): Verdict {
    this.#suppressed.set(pool, (this.#suppressed.get(pool) ?? 0) + 1);
    return { send: false, why: 'rate_limited', kind };
  }

  /** Takes a token from the pool's bucket if more than `reserve` are left. */
  #take(pool: string, now: number, reserve: number): boolean {
    const { rateBurst, rateRefillMs } = this.#limits;
    const b = this.#buckets.get(pool) ?? { tokens: rateBurst, at: now };
    // Refill in whole tokens; `at` advances only by the time those tokens account for, so no refill time is lost.
    const earned = Math.floor(Math.max(0, now - b.at) / rateRefillMs);
    if (earned > 0) {
      b.tokens = Math.min(rateBurst, b.tokens + earned);
      b.at = b.tokens === rateBurst ? now : b.at + earned * rateRefillMs;
    }
    this.#buckets.set(pool, b);
    if (b.tokens <= reserve) return false;
    b.tokens--;
    return true;
  }

  /** Forgets dedupe keys older than the window, so the maps stay small over a long run. */
  #prune(now: number): void {
    const w = this.#limits.dedupeWindowMs;
    for (const [k, at] of this.#sent) if (now - at >= w) this.#sent.delete(k);
    for (const [k, v] of this.#backendSent) if (now - v.at >= w) this.#backendSent.delete(k);
  }

  #incidentId(pool: string, at: number): string {
    const base = `${pool}-${compactTime(at)}`;
    const last = this.#lastId.get(pool);
    const n = last?.base === base ? last.n + 1 : 1;
    this.#lastId.set(pool, { base, n });
    return n === 1 ? base : `${base}-${n}`;
  }
}

/** 2026-01-02T03:04:05.678Z -> 20260102T030405Z (ids are for people to quote: seconds are enough). */
export function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
}
