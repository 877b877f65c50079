// A keyed work queue in the manner of client-go's workqueue (controller-runtime's model):
//
//   - it holds keys, never events: adding a key that is already waiting does nothing (level-based);
//   - a key being processed is never handed to a second worker; added meanwhile, it is marked dirty and
//     handed out again after done();
//   - addRateLimited() requeues with a per-key exponential backoff (baseMs * 2^failures, capped at maxMs);
//     forget() resets it after a success;
//   - addAfter() for work due later (override expiry, periodic resync).
import { systemClock } from './clock.ts';
import type { Clock } from './clock.ts';

export interface QueueOptions {
  readonly baseMs?: number;
  readonly maxMs?: number;
  readonly clock?: Clock;
}

export class WorkQueue {
  readonly #queue: string[] = [];
  readonly #dirty = new Set<string>();
  readonly #processing = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #clock: Clock;
  #shutdown = false;

  constructor(opts: QueueOptions = {}) {
    this.#baseMs = opts.baseMs ?? 50;
    this.#maxMs = opts.maxMs ?? 60_000;
    this.#clock = opts.clock ?? systemClock;
  }

  get length(): number { return this.#queue.length; }

  add(key: string): void {
    if (this.#shutdown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    if (this.#processing.has(key)) return; // done() hands it out again
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      waiter(key);
    } else {
      this.#queue.push(key);
    }
  }

  /** Waits for a key; undefined after shutdown. The caller must call done(key). */
  get(): Promise<string | undefined> {
    if (this.#shutdown) return Promise.resolve(undefined);
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#dirty.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.has(key)) {
      this.#dirty.delete(key);
      this.add(key);
    }
  }

  addAfter(key: string, ms: number): void {
    if (this.#shutdown) return;
    if (ms <= 0) return this.add(key);
    const at = this.#clock.now() + ms;
    const pending = this.#timers.get(key);
    if (pending && pending.at <= at) return; // an earlier wake-up already covers it
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => { this.#timers.delete(key); this.add(key); }, ms);
    timer.unref();
    this.#timers.set(key, { at, timer });
  }

  /** Requeues `key` after its backoff (at most `capMs`, if given); each call counts one failure. Returns the delay. */
  addRateLimited(key: string, capMs = this.#maxMs): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.#maxMs, capMs, this.#baseMs * 2 ** failures);
    this.addAfter(key, delay);
    return delay;
  }

  failures(key: string): number { return this.#failures.get(key) ?? 0; }

  forget(key: string): void { this.#failures.delete(key); }

  shutdown(): void {
    this.#shutdown = true;
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    for (const w of this.#waiters.splice(0)) w(undefined);
  }
}
