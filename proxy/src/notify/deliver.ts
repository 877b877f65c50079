// Delivery of notices to one channel: a bounded queue, one delivery at a time (so a recovery never overtakes its
// activation), each attempt bounded by the channel's timeout, bounded retries with exponential backoff and jitter.
//
// Why this never slows the data plane: publish() only appends to an array and schedules the queue; every send is
// asynchronous socket I/O on connections of its own (the webhook Agent and SMTP sockets are not the data plane's
// dispatchers), and each attempt ends at its timeout even if the transport ignores the abort signal. A hung server
// costs one pending socket per channel and a queue that stops growing at `queueLimit`.
//
// Errors reported (results, logs) are short, secret-free texts made by the transports (`HTTP 503`, `EAUTH (SMTP
// 535)`, `ECONNREFUSED`), never a library's message, which can contain a URL (webhook tokens live in the path)
// or an SMTP server's echo of the credentials.
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { Notice } from './incident.ts';

export interface ChannelResult {
  /** "log", "email", "webhook:slack"…, plus "#n" (1-based) when several channels share a name. */
  readonly channel: string;
  readonly ok: boolean;
  /** Why it failed; never a secret. */
  readonly error?: string;
  readonly attempts: number;
  readonly ms: number;
}

/** A channel's way of sending one notice. It should stop when `signal` aborts; the queue stops waiting anyway. */
export interface Transport {
  readonly name: string;
  /** Per-attempt limit. */
  readonly timeoutMs: number;
  send(n: Notice, signal: AbortSignal): Promise<void>;
  close(): void;
}

/** A failure with a text safe to log and to report; `retryable: false` ends the attempts (e.g. HTTP 400, EAUTH). */
export class DeliveryError extends Error {
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(safe: string, retryable: boolean, retryAfterMs?: number) {
    super(safe);
    this.name = 'DeliveryError';
    this.retryable = retryable;
    this.retryAfterMs = retryAfterMs;
  }
}

/** An error code like ECONNREFUSED or UND_ERR_SOCKET: safe (no host, path or credentials). */
export function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code) ? code : undefined;
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly backoffMs: number;
  readonly maxBackoffMs: number;
  readonly queueLimit: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: DEFAULTS.notification.attempts,
  backoffMs: DEFAULTS.notification.backoffMs,
  maxBackoffMs: DEFAULTS.notification.maxBackoffMs,
  queueLimit: DEFAULTS.notification.queueLimit,
};

export interface QueueHooks {
  /** The final outcome of one notice on this channel (after its last attempt, or when it was dropped). */
  result(r: ChannelResult, n: Notice): void;
}

class Abandoned extends Error {}

export class ChannelQueue {
  readonly transport: Transport;
  readonly #policy: RetryPolicy;
  readonly #hooks: QueueHooks;
  readonly #waiting: Notice[] = [];
  /** Aborted by abandon(): stops the attempt in flight and the backoff sleep. */
  readonly #abandon = new AbortController();
  #running: Promise<void> | undefined;

  constructor(transport: Transport, policy: RetryPolicy, hooks: QueueHooks) {
    this.transport = transport;
    this.#policy = policy;
    this.#hooks = hooks;
  }

  get name(): string {
    return this.transport.name;
  }

  /** Notices waiting or in flight. */
  get pending(): number {
    return this.#waiting.length + (this.#running ? 1 : 0);
  }

  push(n: Notice): void {
    if (this.#abandon.signal.aborted) return;
    if (this.#waiting.length >= this.#policy.queueLimit) {
      const dropped = this.#waiting.shift() as Notice;
      this.#hooks.result({ channel: this.name, ok: false, error: `dropped: queue full (${this.#policy.queueLimit} waiting)`, attempts: 0, ms: 0 }, dropped);
    }
    this.#waiting.push(n);
    this.#running ??= this.#drain();
  }

  /** Resolves when nothing is waiting or in flight. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Stops: the attempt in flight is aborted, waiting notices are reported as abandoned. */
  abandon(): void {
    this.#abandon.abort(new Abandoned('abandoned: notifier closed'));
    for (const n of this.#waiting.splice(0)) this.#hooks.result({ channel: this.name, ok: false, error: 'abandoned: notifier closed', attempts: 0, ms: 0 }, n);
    this.transport.close();
  }

  /** One attempt, outside the queue (drills: the answer is wanted now, not behind a hung delivery). */
  async once(n: Notice): Promise<ChannelResult> {
    const started = performance.now();
    try {
      await this.#attempt(n);
      return { channel: this.name, ok: true, attempts: 1, ms: Math.round(performance.now() - started) };
    } catch (err) {
      return { channel: this.name, ok: false, error: this.#safe(err), attempts: 1, ms: Math.round(performance.now() - started) };
    }
  }

  async #drain(): Promise<void> {
    // Start on a later turn of the event loop: publish() and the controller's emit finish before any transport code runs.
    await new Promise<void>((resolve) => setImmediate(resolve));
    try {
      for (let n = this.#waiting.shift(); n !== undefined && !this.#abandon.signal.aborted; n = this.#waiting.shift()) {
        this.#hooks.result(await this.#deliver(n), n);
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #deliver(n: Notice): Promise<ChannelResult> {
    const started = performance.now();
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        await this.#attempt(n);
        return { channel: this.name, ok: true, attempts, ms: Math.round(performance.now() - started) };
      } catch (err) {
        const retryable = !(err instanceof Abandoned) && !(err instanceof DeliveryError && !err.retryable);
        if (!retryable || attempts >= this.#policy.attempts) {
          return { channel: this.name, ok: false, error: this.#safe(err), attempts, ms: Math.round(performance.now() - started) };
        }
        // 1s, 2s, 4s… (capped), each stretched by up to 20% so channels that failed together do not retry together;
        // a server's Retry-After wins when it asks for longer, still within the cap.
        const backoff = Math.min(this.#policy.maxBackoffMs, this.#policy.backoffMs * 2 ** (attempts - 1));
        const wait = Math.min(this.#policy.maxBackoffMs, Math.max(backoff * (1 + 0.2 * Math.random()), err instanceof DeliveryError ? (err.retryAfterMs ?? 0) : 0));
        try {
          await sleep(wait, undefined, { signal: this.#abandon.signal, ref: false });
        } catch {
          return { channel: this.name, ok: false, error: 'abandoned: notifier closed', attempts, ms: Math.round(performance.now() - started) };
        }
      }
    }
  }

  /** Runs one send; settles at the timeout or on abandon() whether or not the transport honours the signal. */
  #attempt(n: Notice): Promise<void> {
    const timeout = AbortSignal.timeout(this.transport.timeoutMs);
    const signal = AbortSignal.any([this.#abandon.signal, timeout]);
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.transport.send(n, signal).then(
        () => { signal.removeEventListener('abort', onAbort); resolve(); },
        (err: unknown) => { signal.removeEventListener('abort', onAbort); reject(signal.aborted ? signal.reason : err); },
      );
    });
  }

  #safe(err: unknown): string {
    if (err instanceof Abandoned || err instanceof DeliveryError) return err.message;
    if ((err as { name?: string } | null)?.name === 'TimeoutError') return `timeout after ${this.transport.timeoutMs}ms`;
    return codeOf(err) ?? 'delivery failed';
  }
}
