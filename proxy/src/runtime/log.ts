// Logging: pino, object first and message second; every line about a failover contains "failover".
// Secrets never reach a log line: config objects are not logged, only names, addresses and levels.
import type { Logger } from '@veloflux/service/log';
import type { ProxyEvent } from '../control/events.ts';

export type { Logger };

/** The proxy's `service` on every log line (createLogger, @veloflux/service/log). */
export const SERVICE = 'veloflux-proxy';

/** Writes one line per state change. */
export function logEvent(log: Logger, e: ProxyEvent): void {
  switch (e.type) {
    case 'failover_activated':
      log.warn({ pool: e.pool, from: e.from, to: e.to, reason: e.reason }, 'failover activated');
      return;
    case 'level_changed':
      log.warn({ pool: e.pool, from: e.from, to: e.to, reason: e.reason }, 'failover level changed');
      return;
    case 'failover_recovered':
      log.info({ pool: e.pool, from: e.from, to: e.to, durationMs: e.durationMs, reason: e.reason }, 'failover recovered');
      return;
    case 'ramp_step':
      log.info({ pool: e.pool, from: e.from, to: e.to, percent: e.percent }, 'failover ramp step');
      return;
    case 'ramp_paused':
      log.warn({ pool: e.pool, from: e.from, to: e.to, percent: e.percent, reason: e.reason }, 'failover ramp paused');
      return;
    case 'ramp_resumed':
      log.info({ pool: e.pool, from: e.from, to: e.to, percent: e.percent }, 'failover ramp resumed');
      return;
    case 'flapping':
      log.warn({ pool: e.pool, failovers: e.failovers, holdMs: e.holdMs, reason: e.reason }, 'failover flapping');
      return;
    case 'flapping_ended':
      log.info({ pool: e.pool, failovers: e.failovers, durationMs: e.durationMs }, 'failover flapping ended');
      return;
    case 'failback_awaiting_approval':
      log.warn({ pool: e.pool, from: e.from, to: e.to, reason: e.reason }, 'failover awaiting failback approval');
      return;
    case 'backend_down':
      log.warn({ pool: e.pool, backend: e.backend, failover_level: e.level, error: e.error, by: e.by }, 'backend down');
      return;
    case 'backend_up':
      log.info({ pool: e.pool, backend: e.backend, failover_level: e.level }, 'backend up');
      return;
    case 'config_applied':
      log.info({ version: e.version, previous: e.previous }, 'config applied');
      return;
    case 'decision_source':
      log.warn({ pool: e.pool, source: e.source, sequence: e.sequence, reason: e.reason }, e.source === 'shared' ? 'failover decision: following the operator (shared)' : 'failover decision: deciding locally');
      return;
    case 'mode_changed':
      log.warn({ pool: e.pool, mode: e.mode, reason: e.reason }, `failover mode ${e.mode}`);
      return;
  }
}
