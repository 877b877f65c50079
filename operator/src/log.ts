// Logging: pino, object first and message second. Tokens, Secret data and rendered configs never reach a line.
import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger };

export function createLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino({ level: opts.level ?? process.env.VELOFLUX_LOG_LEVEL ?? 'info', base: { service: 'veloflux-operator' } }, opts.destination ?? process.stdout);
}
