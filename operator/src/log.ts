// Logging: @veloflux/service/log (pino, object first and message second). Tokens, Secret data and rendered
// configs never reach a line.
export type { Logger } from '@veloflux/service/log';

/** The operator's `service` on every log line. */
export const SERVICE = 'veloflux-operator';
