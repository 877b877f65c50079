// Leader election through a coordination.k8s.io/v1 Lease, the same protocol as client-go's leaderelection:
//
//   lease missing                                  -> create it, holding it
//   held by us                                     -> renew (renewTime = now)
//   held by another, renewTime + duration passed   -> take it over (leaseTransitions + 1)
//   held by another, still fresh                   -> wait retryPeriod and look again
//
// Every write carries the lease's resourceVersion, so two candidates cannot both win one round. A leader that
// cannot renew within renewDeadline stops leading (the manager then exits: a clean restart is safer than
// two writers). On graceful shutdown the leader releases the lease (empty holder, 1 s duration) so the
// next process takes over at once instead of waiting out the lease.
import { KubeError } from './kube.ts';
import type { Kube } from './kube.ts';
import { sleep } from './informer.ts';
import type { Logger } from './log.ts';
import { systemClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { OPERATOR_DEFAULTS as D } from './defaults.ts';

export interface LeaseOptions {
  readonly namespace: string;
  readonly name: string;
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly clock?: Clock;
}

interface Lease {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: { holderIdentity?: string | null; leaseDurationSeconds?: number; acquireTime?: string | null; renewTime?: string | null; leaseTransitions?: number };
}

/** MicroTime: RFC 3339 with exactly six fractional digits. */
const micro = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaderElector {
  readonly #kube: Kube;
  readonly #o: Required<Omit<LeaseOptions, 'clock'>>;
  readonly #clock: Clock;
  readonly #log: Logger;
  #leading = false;
  /** When this process last wrote the Lease as its holder (ms since epoch). */
  #lastRenew = 0;

  constructor(kube: Kube, opts: LeaseOptions, log: Logger) {
    this.#kube = kube;
    const { clock, ...o } = opts;
    this.#o = { leaseDurationMs: D.leaseDurationMs, renewDeadlineMs: D.renewDeadlineMs, retryPeriodMs: D.retryPeriodMs, ...o };
    this.#clock = clock ?? systemClock;
    this.#log = log.child({ lease: `${opts.namespace}/${opts.name}`, identity: opts.identity });
  }

  get leading(): boolean { return this.#leading; }

  /** The leader renewed its Lease within renewDeadline of `now`. */
  renewedWithinDeadline(now = this.#clock.now()): boolean { return now - this.#lastRenew <= this.#o.renewDeadlineMs; }

  get #path(): string { return `/apis/coordination.k8s.io/v1/namespaces/${this.#o.namespace}/leases/${this.#o.name}`; }

  /** One round: true when we hold the lease afterwards. */
  async tryAcquireOrRenew(now = this.#clock.now()): Promise<boolean> {
    const { identity, leaseDurationMs } = this.#o;
    const seconds = Math.ceil(leaseDurationMs / 1000);
    let lease: Lease;
    try {
      lease = await this.#kube.get<Lease>(this.#path);
    } catch (err) {
      if (!(err instanceof KubeError) || err.code !== 404) throw err;
      try {
        await this.#kube.create(`/apis/coordination.k8s.io/v1/namespaces/${this.#o.namespace}/leases`, {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
          metadata: { name: this.#o.name, namespace: this.#o.namespace },
          spec: { holderIdentity: identity, leaseDurationSeconds: seconds, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 },
        });
        this.#lastRenew = this.#clock.now();
        return true;
      } catch (e) {
        if (e instanceof KubeError && e.code === 409) return false;
        throw e;
      }
    }
    const s = lease.spec;
    const holder = s.holderIdentity ?? '';
    const renewed = s.renewTime ? Date.parse(s.renewTime) : 0;
    const expired = renewed + (s.leaseDurationSeconds ?? seconds) * 1000 < now;
    if (holder !== identity && holder !== '' && !expired) return false;
    const takeover = holder !== identity;
    const spec = {
      ...s,
      holderIdentity: identity,
      leaseDurationSeconds: seconds,
      renewTime: micro(now),
      ...(takeover ? { acquireTime: micro(now), leaseTransitions: (s.leaseTransitions ?? 0) + (holder === '' && !s.acquireTime ? 0 : 1) } : {}),
    };
    try {
      await this.#kube.update(this.#path, { ...lease, spec });
      if (takeover) this.#log.info({ previous: holder || null }, 'acquired leadership');
      this.#lastRenew = this.#clock.now();
      return true;
    } catch (e) {
      if (e instanceof KubeError && e.code === 409) return false; // someone else wrote first
      throw e;
    }
  }

  /** Waits until this process leads (or `signal` aborts: false). */
  async acquire(signal: AbortSignal): Promise<boolean> {
    let logged = false;
    while (!signal.aborted) {
      try {
        if (await this.tryAcquireOrRenew()) { this.#leading = true; return true; }
        if (!logged) { this.#log.info('waiting for leadership'); logged = true; }
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'leader election: cannot read or write the lease');
      }
      await sleep(this.#o.retryPeriodMs * (1 + Math.random() * 0.2), signal);
    }
    return false;
  }

  /** Renews every retryPeriod; resolves when renewal failed for renewDeadline (leadership lost) or `signal` aborts. */
  async hold(signal: AbortSignal): Promise<'lost' | 'stopped'> {
    let lastRenew = this.#clock.now();
    while (!signal.aborted) {
      await sleep(this.#o.retryPeriodMs, signal);
      if (signal.aborted) break;
      try {
        if (await this.tryAcquireOrRenew()) { lastRenew = this.#clock.now(); continue; }
        this.#log.error('another process took the lease');
        this.#leading = false;
        return 'lost';
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'lease renewal failed');
      }
      if (this.#clock.now() - lastRenew > this.#o.renewDeadlineMs) {
        this.#leading = false;
        this.#log.error({ renewDeadlineMs: this.#o.renewDeadlineMs }, 'could not renew the lease in time: leadership lost');
        return 'lost';
      }
    }
    return 'stopped';
  }

  /** Gives the lease up (only if we hold it), so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.#leading) return;
    this.#leading = false;
    try {
      const lease = await this.#kube.get<Lease>(this.#path);
      if (lease.spec.holderIdentity !== this.#o.identity) return;
      await this.#kube.update(this.#path, { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: micro(this.#clock.now()) } });
      this.#log.info('released leadership');
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'could not release the lease');
    }
  }
}
