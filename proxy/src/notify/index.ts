// Notifications (SPEC section 5): a subscriber to the controller's state events. Nothing in the core imports it;
// runtime/notify-wiring.ts attaches it. Guide: docs/notifications.md.
//
//   ProxyEvent --publish--> IncidentTracker (pure: incident ids, dedupe, rate limit) --Notice--> one ChannelQueue
//   per channel (deliver.ts: async, timeout, retries) --> log | email (nodemailer) | webhook (undici)
//
// The log channel and the controller's own lines. runtime/log.ts writes one line per state change, always, at
// fixed levels: that is the operational record. The log *channel* is a notification like the others: one line per
// notice that passed dedupe and the rate limit, at the configured level, with the incident id, the backends down
// and, for a recovery, the activation it closes; its message starts with "failover notification". So a reader of
// the logs sees the change once as a state line and, when notifications are configured to go to the log, once as
// the incident line that email and chat receivers also get; the two lines carry different facts, not one twice.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@veloflux/service/log';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { ChannelConfig, Config } from '@veloflux/config/types';
import { systemClock } from '../control/api.ts';
import type { Clock, ProxyEvent } from '../control/api.ts';
import { ChannelQueue, DEFAULT_RETRY } from './deliver.ts';
import type { ChannelResult, RetryPolicy, Transport } from './deliver.ts';
import { emailTransport } from './email.ts';
import { logLine } from './format.ts';
import { IncidentTracker, DEFAULT_LIMITS } from './incident.ts';
import type { Notice, TrackerLimits } from './incident.ts';
import { webhookTransport } from './webhook.ts';

export type { ChannelResult } from './deliver.ts';
export type { Notice } from './incident.ts';

/** Deliveries per channel and outcome; the metrics module maps it onto counters. */
export interface DeliveryCounter {
  delivered(channel: string, ok: boolean): void;
}

export interface Notifier {
  /** Every controller event; returns at once and never throws. */
  publish(e: ProxyEvent): void;
  /**
   * A clearly marked TEST notification through every channel, bypassing dedupe and the rate limit: one attempt per
   * channel, outside the queues (so not behind a hung delivery), each bounded by its channel's timeout.
   * Resolves with each channel's result; [] when notifications are disabled or there are no channels.
   */
  drill(pool: string, summary: string): Promise<ChannelResult[]>;
  /** Config reload: new channels apply to new notices; deliveries already queued finish on the old ones. */
  configure(n: Config['notification']): void;
  /** Stops: deliveries still running after a short grace (DEFAULTS.notification.closeGraceMs) are abandoned. */
  close(): Promise<void>;
}

export interface NotifierOptions {
  readonly notification: Config['notification'];
  readonly log: Logger;
  readonly counter?: DeliveryCounter;
  readonly clock?: Clock;
  /** Tests: dedupe and rate-limit settings (default DEFAULTS.notification). */
  readonly limits?: TrackerLimits;
  /** Tests: attempts and backoff (default DEFAULTS.notification). */
  readonly retry?: RetryPolicy;
}

const PINO_LEVEL = { trace: 'trace', debug: 'debug', info: 'info', warning: 'warn', warn: 'warn', error: 'error' } as const;

function logTransport(name: string, level: keyof typeof PINO_LEVEL, log: Logger): Transport {
  const write = log[PINO_LEVEL[level]].bind(log);
  return {
    name,
    timeoutMs: 1000,
    send(n: Notice) {
      const { obj, msg } = logLine(n);
      write(obj, msg);
      return Promise.resolve();
    },
    close() {},
  };
}

function baseName(c: ChannelConfig): string {
  return c.type === 'webhook' ? `webhook:${c.format}` : c.type;
}

/** "log", "email", "webhook:slack"; "#1", "#2"… (in config order) when several channels share a name. */
export function channelNames(channels: readonly ChannelConfig[]): string[] {
  const bases = channels.map(baseName);
  const seen = new Map<string, number>();
  return bases.map((b) => {
    if (bases.filter((x) => x === b).length === 1) return b;
    const i = (seen.get(b) ?? 0) + 1;
    seen.set(b, i);
    return `${b}#${i}`;
  });
}

export function createNotifier(opts: NotifierOptions): Notifier {
  const clock = opts.clock ?? systemClock;
  const log = opts.log.child({ module: 'notify' });
  const tracker = new IncidentTracker(opts.limits ?? DEFAULT_LIMITS);
  const retry = opts.retry ?? DEFAULT_RETRY;
  let config = opts.notification;
  let closed = false;
  /** Queues replaced by configure(), finishing what they had. */
  const retired = new Set<ChannelQueue>();

  const hooks = {
    result(r: ChannelResult, n: Notice): void {
      opts.counter?.delivered(r.channel, r.ok);
      if (r.ok) log.debug({ channel: r.channel, pool: n.pool, event: n.kind, notice: n.id, attempts: r.attempts, ms: r.ms }, 'failover notification delivered');
      else log.warn({ channel: r.channel, pool: n.pool, event: n.kind, notice: n.id, attempts: r.attempts, error: r.error }, 'failover notification failed');
    },
  };

  const build = (channels: readonly ChannelConfig[], reuse: ReadonlyMap<string, ChannelQueue>): Array<{ key: string; queue: ChannelQueue }> => {
    const names = channelNames(channels);
    return channels.map((c, i) => {
      const name = names[i] as string;
      const key = `${name} ${JSON.stringify(c)}`;
      const old = reuse.get(key);
      if (old) return { key, queue: old };
      const transport =
        c.type === 'log' ? logTransport(name, c.level, log.child({ channel: name }))
        : c.type === 'email' ? emailTransport(name, c)
        : webhookTransport(name, c, () => clock.now());
      return { key, queue: new ChannelQueue(transport, retry, hooks) };
    });
  };

  let queues = build(config.channels, new Map());

  return {
    publish(e) {
      try {
        if (closed || e.type === 'config_applied' || e.type === 'mode_changed' || e.type === 'decision_source') return;
        const v = tracker.observe(e, clock.now());
        if (!v.send) {
          if (v.why === 'rate_limited') log.info({ pool: e.pool, event: v.kind }, 'failover notification held back by the rate limit');
          else if (v.why === 'duplicate') log.debug({ pool: e.pool, event: v.kind }, 'failover notification dropped: duplicate');
          return;
        }
        if (!config.enabled) return;
        for (const { queue } of queues) queue.push(v.notice);
      } catch (err) {
        // A bug here must not reach the controller's emit (and through it the data plane).
        log.error({ err: (err as Error).name, pool: 'pool' in e ? e.pool : undefined, event: e.type }, 'failover notification: internal error');
      }
    },

    async drill(pool, summary) {
      if (closed || !config.enabled) return [];
      const notice = tracker.drill(pool, summary, clock.now());
      const results = await Promise.all(queues.map(({ queue }) => queue.once(notice)));
      for (const r of results) hooks.result(r, notice);
      return results;
    },

    configure(n) {
      if (closed) return;
      const old = new Map(queues.map((q) => [q.key, q.queue]));
      queues = build(n.channels, old);
      config = n;
      const kept = new Set(queues.map((q) => q.queue));
      for (const q of old.values()) {
        if (kept.has(q)) continue;
        retired.add(q);
        void q.idle().then(() => { q.abandon(); retired.delete(q); });
      }
    },

    async close() {
      if (closed) return;
      closed = true;
      const all = [...queues.map((q) => q.queue), ...retired];
      const pending = all.reduce((sum, q) => sum + q.pending, 0);
      if (pending > 0) {
        await Promise.race([Promise.all(all.map((q) => q.idle())), sleep(DEFAULTS.notification.closeGraceMs, undefined, { ref: false })]);
        const left = all.reduce((sum, q) => sum + q.pending, 0);
        if (left > 0) log.warn({ pending: left }, 'failover notifications abandoned at shutdown');
      }
      for (const q of all) q.abandon();
      retired.clear();
    },
  };
}
