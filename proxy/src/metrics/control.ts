// Metrics of the control side (one per proxy, in the main process): failover state per pool (the four seed
// metrics, with exactly their names), backend health and level, probes, config reloads, notifications.
// Gauges are read from the controller at scrape time; counters follow its events.
import { Counter, Gauge, Registry } from 'prom-client';
import type { Config } from '@veloflux/config/types';
import { systemClock } from '../control/api.ts';
import type { ControlApi } from '../control/api.ts';

export class ControlMetrics {
  readonly registry = new Registry();
  readonly #controller: () => ControlApi;
  readonly #lastDurationMs = new Map<string, number>();
  readonly #events: Counter<'pool'>;
  readonly #ejections: Counter<'pool' | 'backend'>;
  readonly #probes: Counter<'pool' | 'backend' | 'result'>;
  readonly #reloads: Counter<'result'>;
  readonly #notifications: Counter<'channel' | 'result'>;
  #config: Config;

  constructor(controller: () => ControlApi, now: () => number = systemClock.now) {
    this.#controller = controller;
    this.#config = controller().config;
    const registers = [this.registry];
    const self = this;
    const perPool = (name: string, help: string, value: (pool: string) => number): Gauge<'pool'> =>
      new Gauge({
        name, help, labelNames: ['pool'], registers,
        collect() {
          this.reset();
          for (const p of self.#config.pools) this.set({ pool: p.name }, value(p.name));
        },
      });
    const status = (pool: string) => self.#controller().status(pool)[0];
    perPool('veloflux_failover_active', 'Whether failover is active for the pool: 1 while its active level is above 0 or it is manually activated, else 0.', (p) => (status(p)?.failoverActive ? 1 : 0));
    perPool('veloflux_failover_last_activation', 'Unix time in seconds of the pool\'s last failover activation; 0 if never.', (p) => {
      const t = status(p)?.lastFailoverTime;
      return t ? Math.floor(Date.parse(t) / 1000) : 0;
    });
    perPool('veloflux_failover_duration_seconds', 'Duration of the pool\'s last failover in seconds, growing while it is active; 0 if never.', (p) => {
      const since = status(p)?.activeSince;
      if (since) return (now() - Date.parse(since)) / 1000;
      return (this.#lastDurationMs.get(p) ?? 0) / 1000;
    });
    perPool('veloflux_decision_shared', 'Whether the pool serves a fresh shared decision from the operator (SPEC 9): 1 shared, 0 while the proxy decides alone (consensus.mode local, or no fresh decision).', (p) => (status(p)?.decision.source === 'shared' ? 1 : 0));
    perPool('veloflux_failover_flapping', 'Whether the pool is flapping (failover.hold_down): 1 from its flap_threshold-th failover within flap_window until flap_window passes without one, else 0.', (p) => (status(p)?.flapping ? 1 : 0));
    perPool('veloflux_ramp_paused', 'Whether the pool\'s ramp (graceful failover or failback) waits on failover.ramp_gate: 1 while paused, else 0.', (p) => (status(p)?.ramp?.paused ? 1 : 0));
    perPool('veloflux_pool_active_level', 'The pool\'s active failover level (0 = primary).', (p) => status(p)?.activeLevel ?? 0);
    this.#events = new Counter({ name: 'veloflux_failover_events_total', help: 'Failover activations of the pool.', labelNames: ['pool'], registers });
    new Gauge({
      name: 'veloflux_backend_healthy', help: 'Whether a backend serves: 1 up or not yet probed, 0 down.', labelNames: ['pool', 'backend'], registers,
      collect() {
        this.reset();
        for (const s of self.#controller().status()) for (const b of s.backends) this.set({ pool: s.name, backend: b.address }, b.health === 'down' ? 0 : 1);
      },
    });
    new Gauge({
      name: 'veloflux_backend_level', help: 'The failover level of a backend (0 = primary).', labelNames: ['pool', 'backend'], registers,
      collect() {
        this.reset();
        for (const p of self.#config.pools) for (const b of p.backends) this.set({ pool: p.name, backend: b.address }, b.level);
      },
    });
    this.#ejections = new Counter({ name: 'veloflux_outlier_ejections_total', help: 'Backends ejected by outlier detection (pools[].outlier_detection) from what real traffic saw, by pool and backend.', labelNames: ['pool', 'backend'], registers });
    this.#probes = new Counter({ name: 'veloflux_health_checks_total', help: 'Active health checks, by pool, backend and result (success, failure).', labelNames: ['pool', 'backend', 'result'], registers });
    this.#reloads = new Counter({ name: 'veloflux_config_reloads_total', help: 'Config updates through the admin API, by result (success, unchanged, invalid, rejected).', labelNames: ['result'], registers });
    this.#notifications = new Counter({ name: 'veloflux_notification_deliveries_total', help: 'Notification deliveries, by channel and result (success, failure).', labelNames: ['channel', 'result'], registers });
    new Gauge({
      name: 'veloflux_config_info', help: 'The running config version (label), always 1.', labelNames: ['version'], registers,
      collect() { this.reset(); this.set({ version: self.#controller().version }, 1); },
    });
    for (const result of ['success', 'unchanged', 'invalid', 'rejected']) this.#reloads.inc({ result }, 0);
    for (const ch of ['log', 'email', 'webhook']) for (const result of ['success', 'failure']) this.#notifications.inc({ channel: ch, result }, 0);
    this.#prepare(this.#config);

    const c = controller();
    c.on('event', (e) => {
      if (e.type === 'failover_activated') this.#events.inc({ pool: e.pool });
      else if (e.type === 'failover_recovered') this.#lastDurationMs.set(e.pool, e.durationMs);
      else if (e.type === 'config_applied') this.#prepare(this.#controller().config);
      else if (e.type === 'backend_down' && e.by === 'outlier') this.#ejections.inc({ pool: e.pool, backend: e.backend });
    });
    c.on('probe', (p) => this.#probes.inc({ pool: p.pool, backend: p.backend, result: p.ok ? 'success' : 'failure' }));
  }

  reload(result: 'success' | 'unchanged' | 'invalid' | 'rejected'): void {
    this.#reloads.inc({ result });
  }

  notification(channel: string, ok: boolean): void {
    this.#notifications.inc({ channel: channel.split(/[:#]/)[0] ?? channel, result: ok ? 'success' : 'failure' });
  }

  /** Label sets of the config exist from the start (at zero); those of removed pools and backends go. */
  #prepare(config: Config): void {
    const old = this.#config;
    this.#config = config;
    for (const p of old.pools) {
      const still = config.pools.find((q) => q.name === p.name);
      if (!still) { this.#events.remove({ pool: p.name }); this.#lastDurationMs.delete(p.name); }
      for (const b of p.backends) {
        if (!still?.backends.some((x) => x.address === b.address)) {
          for (const result of ['success', 'failure']) this.#probes.remove({ pool: p.name, backend: b.address, result });
          this.#ejections.remove({ pool: p.name, backend: b.address });
        }
      }
    }
    for (const p of config.pools) {
      this.#events.inc({ pool: p.name }, 0);
      for (const b of p.backends) {
        for (const result of ['success', 'failure']) this.#probes.inc({ pool: p.name, backend: b.address, result }, 0);
        if (p.outlier) this.#ejections.inc({ pool: p.name, backend: b.address }, 0);
      }
    }
  }
}
