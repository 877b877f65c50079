// The running config as callers of GET /api/v1/config see it: resolved (defaults applied), secrets redacted.
// (Which fields need a restart: RESTART_ONLY in packages/config/src/restart.ts.)
import type { Config } from '@veloflux/config/types';
import { redact } from '@veloflux/config/dsl';
import { SECRET_PATHS } from '@veloflux/config/schema';

export const REDACTED = '<redacted>';

/** Secrets are found by the schema (`SECRET_PATHS`), so a secret field added later is redacted too. */
export function configView(config: Config): unknown {
  const prefix = 'failover.notification.channels';
  const channelSecrets = SECRET_PATHS.filter((p) => p.startsWith(`${prefix}[]`)).map((p) => p.slice(prefix.length));
  const other = SECRET_PATHS.filter((p) => !p.startsWith(`${prefix}[]`));
  // The resolved config keeps the channels as written (config.notification.channels); any other secret path would
  // have to be mapped to its resolved place here, and the test over SECRET_PATHS would fail until it is.
  if (other.length > 0) throw new Error(`configView: no redaction for secret paths ${other.join(', ')}`);
  return {
    ...config,
    notification: { ...config.notification, channels: redact(config.notification.channels, channelSecrets, REDACTED) },
  };
}
