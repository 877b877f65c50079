// The running config as callers of GET /api/v1/config see it: resolved (defaults applied), secrets redacted.
import type { Config } from '../config/types.ts';

export const REDACTED = '<redacted>';

export function configView(config: Config): unknown {
  return {
    ...config,
    notification: {
      ...config.notification,
      channels: config.notification.channels.map((c) => {
        if (c.type === 'email') return { ...c, ...(c.smtp_password !== undefined ? { smtp_password: REDACTED } : {}) };
        if (c.type === 'webhook') return { ...c, url: REDACTED, ...(c.secret !== undefined ? { secret: REDACTED } : {}) };
        return c;
      }),
    },
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
  return out;
}
