// Logging: pino, object first and message second, one line of JSON per event, `service` on every line.
// Secrets never reach a log line: callers log names, addresses and levels, never config objects or Secret data.
import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger };

export interface LoggerOptions {
  /** Default: env VELOFLUX_LOG_LEVEL, else info. */
  readonly level?: string;
  /** Default: stdout. */
  readonly destination?: NodeJS.WritableStream;
}

/** The logger of one process; `service` names it on every line (veloflux-proxy, veloflux-operator). */
export function createLogger(service: string, opts: LoggerOptions = {}): Logger {
  return pino({ level: opts.level ?? process.env.VELOFLUX_LOG_LEVEL ?? 'info', base: { service } }, opts.destination ?? process.stdout);
}
