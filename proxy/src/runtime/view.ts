// The running config as callers of GET /api/v1/config see it: resolved (defaults applied), secrets redacted;
// as JSON (configView) or as the config.yaml document the proxy accepts (configYamlView), which a PUT takes back
// (restoreRedacted). (Which fields need a restart: RESTART_ONLY in packages/config/src/restart.ts.)
import { isMap, isSeq, parseDocument, stringify } from 'yaml';
import type { Config } from '@veloflux/config/types';
import { redact } from '@veloflux/config/dsl';
import { yamlBombCheck } from '@veloflux/config/load';
import type { Located } from '@veloflux/config/load';
import { SECRET_PATHS } from '@veloflux/config/schema';
import { configYaml } from '@veloflux/config/serialize';

export const REDACTED = '<redacted>';

const CHANNELS = 'failover.notification.channels';

/** The secret keys of a notification channel (smtp_password, url, secret), from the schema. */
function channelSecretKeys(): string[] {
  const other = SECRET_PATHS.filter((p) => !p.startsWith(`${CHANNELS}[].`));
  // The resolved config keeps the channels as written (config.notification.channels); any other secret path would
  // have to be mapped to its resolved place here, and the test over SECRET_PATHS would fail until it is.
  if (other.length > 0) throw new Error(`configView: no redaction for secret paths ${other.join(', ')}`);
  return SECRET_PATHS.map((p) => p.slice(`${CHANNELS}[].`.length));
}

/** Secrets are found by the schema (`SECRET_PATHS`), so a secret field added later is redacted too. */
export function configView(config: Config): unknown {
  const keys = channelSecretKeys();
  return {
    ...config,
    notification: { ...config.notification, channels: redact(config.notification.channels, keys.map((k) => `[].${k}`), REDACTED) },
  };
}

/**
 * GET /api/v1/config?format=yaml: the config.yaml document of the running config, every value explicit, each
 * secret "<redacted>". The GET never reveals a secret; restoreRedacted lets the PUT of an edited copy keep them.
 */
export function configYamlView(config: Config, version: string): string {
  channelSecretKeys();
  const doc = redact(configYaml(config), SECRET_PATHS, REDACTED);
  return `# veloflux-proxy config, version ${version} (GET /api/v1/config?format=yaml).\n`
    + `# Secrets read "${REDACTED}": a PUT keeps the running value of a "${REDACTED}" field of the channel with the same\n`
    + '# position and type; write the value itself to change it.\n'
    + stringify(doc, { lineWidth: 0 });
}

/**
 * A PUT body may carry "<redacted>" where GET ?format=yaml wrote a secret: that means "keep the running value",
 * taken from the running channel at the same position (failover.notification.channels[i]) when it has the same
 * type and that secret; anything else is a problem naming the field (a placeholder is never applied as a value).
 * A body without the placeholder is returned as it is (its line numbers stay exact in any error).
 */
export function restoreRedacted(text: string, running: Config): { ok: true; text: string } | { ok: false; issues: Located[] } {
  if (!text.includes(REDACTED) || yamlBombCheck(text)) return { ok: true, text };
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) return { ok: true, text }; // the loader reports them, with lines
  const keys = channelSecretKeys();
  const channels = doc.getIn(CHANNELS.split('.'), true);
  const issues: Located[] = [];
  let changed = false;
  if (isSeq(channels)) {
    channels.items.forEach((item, i) => {
      if (!isMap(item)) return;
      const mine = running.notification.channels[i] as Record<string, unknown> | undefined;
      for (const key of keys) {
        if (item.get(key) !== REDACTED) continue;
        const kept = mine && mine.type === item.get('type') ? mine[key] : undefined;
        if (typeof kept === 'string') {
          item.set(key, kept);
          changed = true;
        } else {
          issues.push({ path: `${CHANNELS}[${i}].${key}`, message: `is "${REDACTED}", which keeps the running value, but the running config has no ${String(item.get('type'))} channel with a ${key} at position ${i}; write the value itself` });
        }
      }
    });
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, text: changed ? doc.toString({ lineWidth: 0 }) : text };
}
