// The running config as callers of GET /api/v1/config see it: resolved (defaults applied), secrets redacted.
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

/** Fields a running proxy cannot change without a restart; non-empty when `next` changes any. */
export function restartRequired(running: Config, next: Config): string[] {
  const out: string[] = [];
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  if (!same(running.listen, next.listen)) out.push('listen');
  if (!same(running.admin.listen, next.admin.listen)) out.push('admin.listen');
  if (running.admin.tokenFile !== next.admin.tokenFile) out.push('admin.token_file');
  if (running.dataplane.workers !== next.dataplane.workers) out.push('dataplane.workers');
  if (running.dataplane.youngGenerationMb !== next.dataplane.youngGenerationMb) out.push('dataplane.young_generation_mb');
  return out;
}
