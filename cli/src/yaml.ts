// Pure: plain objects -> YAML text with comments that explain the file, and masking of secrets for display.
import { Document, isMap, isSeq } from 'yaml';
import type { Node } from 'yaml';
import { STRATEGIES } from './answers.ts';

export type Comments = Readonly<Record<string, string>>;

/** `comments` maps a dotted path ("failover.strategy", "pools.0.backends.1") to a line put before that key. */
export function toYaml(value: unknown, header: string, comments: Comments = {}): string {
  const doc = new Document(value, { aliasDuplicateObjects: false });
  doc.commentBefore = header.split('\n').map((l) => ` ${l}`).join('\n');
  for (const [path, text] of Object.entries(comments)) {
    const parts = path.split('.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    const parent = parts.length === 1 ? doc.contents : doc.getIn(parts.slice(0, -1), true);
    const last = parts[parts.length - 1];
    if (isMap(parent)) {
      const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === last || p.key === last);
      if (pair && pair.key && typeof pair.key === 'object') (pair.key as Node).commentBefore = ` ${text}`;
    } else if (isSeq(parent) && typeof last === 'number') {
      const item = parent.items[last];
      if (item && typeof item === 'object') (item as Node).commentBefore = ` ${text}`;
    }
  }
  return doc.toString({ lineWidth: 0 });
}

/** Comments for a config.yaml written by setup. */
export function configComments(config: Record<string, unknown>): Comments {
  const out: Record<string, string> = {};
  const pools = Array.isArray(config['pools']) ? (config['pools'] as Record<string, unknown>[]) : [];
  pools.forEach((p, i) => {
    const backends = Array.isArray(p['backends']) ? (p['backends'] as Record<string, unknown>[]) : [];
    backends.forEach((b, j) => {
      const level = typeof b['failover_level'] === 'number' ? b['failover_level'] : b['failover'] === true ? 1 : 0;
      out[`pools.${i}.backends.${j}`] = levelText(level);
    });
  });
  const failover = config['failover'] as Record<string, unknown> | undefined;
  const strategy = STRATEGIES.find((s) => s.value === failover?.['strategy']);
  if (strategy) out['failover.strategy'] = `${strategy.value}: ${strategy.explain}`;
  out['failover.recovery_interval'] = 'how long the primary must stay healthy before traffic returns to it';
  out['routes'] = 'host + path prefix -> pool (longest prefix wins)';
  return out;
}

export function levelText(level: number): string {
  return level === 0 ? 'level 0: primary' : `level ${level}: ${level === 1 ? 'first' : level === 2 ? 'second' : `${level}th`} backup`;
}

export const MASK = '********';

/** The text with every secret replaced by a mask, for what is shown on the terminal. */
export function mask(text: string, secrets: readonly string[]): string {
  let out = text;
  // Longest first, so a secret that contains another is masked whole.
  for (const s of [...secrets].filter((x) => x.length > 0).sort((a, b) => b.length - a.length)) out = out.split(s).join(MASK);
  return out;
}

/**
 * A copy of a config or manifest with every secret value masked, for display: `smtp_password`, a webhook's `url`
 * and HMAC `secret` in a config, every value of a Secret's `stringData`/`data`.
 */
export function redact(value: unknown, parentKey = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => redact(v, parentKey));
  if (typeof value !== 'object' || value === null) return value;
  const o = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const secret =
      k === 'smtp_password' || k === 'secret' || (k === 'url' && o['type'] === 'webhook') ||
      ((parentKey === 'stringData' || parentKey === 'data') && o !== undefined);
    out[k] = secret && typeof v === 'string' && v !== '' ? MASK : redact(v, k);
  }
  return out;
}
