// Pure: the ramp gate's figures in shared mode (SPEC 9, 10). Only the proxies see traffic; while the operator's
// decision ramps a gated pool, each proxy reports that pool's traffic by level on its event stream (`traffic`),
// cumulative since it started: requests, errors and the latency histogram's bucket counts. The operator keeps,
// per proxy, the first report of the current step (`base`) and the latest (`last`); when the step is due, the
// figures of the step are the sum over the proxies of last - base, and the p99 comes from the summed histogram
// (a p99 of p99s would say nothing: 99 fast proxies hide a slow one).
//
//   report arrives (observe)          no entry for the proxy -> base = last = report
//                                     a counter went down (restart, reload) -> base = last = report
//                                     else last = report
//   due step judged (nextStepAt moves) base = last for every proxy: the next step starts where this one ended
//   a new ramp, or none               every entry dropped (readings of an earlier ramp are not this one's)
//
// The reports come from the network: every field is checked (parseTraffic) and anything that is not a whole,
// non-negative, safe number in a consistent shape is dropped, never trusted and never thrown on.
import type { LevelTraffic } from '@veloflux/engine/engine';

/** One level's cumulative counts, checked. `le` in seconds, Infinity for "+Inf" (always the last bucket). */
export interface LevelReading {
  readonly level: number;
  readonly requests: number;
  readonly errors: number;
  readonly buckets: readonly { readonly le: number; readonly count: number }[];
}

export interface TrafficReport {
  readonly pool: string;
  readonly levels: readonly LevelReading[];
}

/** What one report may hold: more is not a proxy's report (a pool has a few levels, the histogram 15 buckets). */
export const MAX_LEVELS = 32;
export const MAX_BUCKETS = 64;
const MAX_POOL_NAME = 253;

const count = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseLevel(x: unknown): LevelReading | undefined {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return undefined;
  const o = x as Record<string, unknown>;
  if (!count(o.level) || !count(o.requests) || !count(o.errors) || o.errors > o.requests) return undefined;
  if (!Array.isArray(o.buckets) || o.buckets.length === 0 || o.buckets.length > MAX_BUCKETS) return undefined;
  const buckets: { le: number; count: number }[] = [];
  for (const b of o.buckets as unknown[]) {
    if (b === null || typeof b !== 'object') return undefined;
    const { le: rawLe, count: c } = b as Record<string, unknown>;
    const le = rawLe === '+Inf' ? Infinity : rawLe;
    if (typeof le !== 'number' || Number.isNaN(le) || le <= 0 || !count(c)) return undefined;
    const prev = buckets.at(-1);
    // Upper bounds strictly grow and counts never fall (cumulative), +Inf only last.
    if (prev !== undefined && (le <= prev.le || c < prev.count)) return undefined;
    buckets.push({ le, count: c });
  }
  if (buckets.at(-1)?.le !== Infinity) return undefined;
  return { level: o.level, requests: o.requests, errors: o.errors, buckets };
}

/**
 * A `traffic` event's data, checked: undefined when it is not one. A level entry that is malformed is dropped (the
 * others stay); a level listed twice keeps its first entry.
 */
export function parseTraffic(data: unknown): TrafficReport | undefined {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return undefined;
  const o = data as Record<string, unknown>;
  if (typeof o.pool !== 'string' || o.pool.length === 0 || o.pool.length > MAX_POOL_NAME) return undefined;
  if (!Array.isArray(o.levels) || o.levels.length > MAX_LEVELS) return undefined;
  const levels: LevelReading[] = [];
  for (const x of o.levels as unknown[]) {
    const l = parseLevel(x);
    if (l !== undefined && !levels.some((y) => y.level === l.level)) levels.push(l);
  }
  return { pool: o.pool, levels };
}

/** The gate's readings during one ramp: which ramp, the step being measured, and each proxy's base and last. */
export interface GateReadings {
  readonly from: number;
  readonly to: number;
  /** nextStepAt of the step being measured: when it moves, the step was judged. */
  readonly stepAt: number;
  readonly proxies: ReadonlyMap<string, { readonly base: readonly LevelReading[]; readonly last: readonly LevelReading[] }>;
}

/** Did any counter of a level present in both go down (the proxy restarted, or a reload dropped its cells)? */
function wentDown(before: readonly LevelReading[], after: readonly LevelReading[]): boolean {
  for (const a of after) {
    const b = before.find((x) => x.level === a.level);
    if (b === undefined) continue;
    if (a.requests < b.requests || a.errors < b.errors) return true;
    for (const k of a.buckets) {
      const j = b.buckets.find((x) => x.le === k.le);
      if (j !== undefined && k.count < j.count) return true;
    }
  }
  return false;
}

/** A report from `proxy` during the ramp `gate` measures (see the table at the top). */
export function observeReading(gate: GateReadings, proxy: string, levels: readonly LevelReading[]): GateReadings {
  const proxies = new Map(gate.proxies);
  const had = proxies.get(proxy);
  proxies.set(proxy, had === undefined || wentDown(had.last, levels) ? { base: levels, last: levels } : { base: had.base, last: levels });
  return { ...gate, proxies };
}

/** The next step is measured from where this one ended. */
export function nextStep(gate: GateReadings, stepAt: number): GateReadings {
  const proxies = new Map([...gate.proxies].map(([k, v]) => [k, { base: v.last, last: v.last }]));
  return { ...gate, stepAt, proxies };
}

/** p99 of a cumulative histogram in ms (its bucket's upper bound), null when empty or beyond the last finite bucket. */
export function p99Ms(buckets: readonly { readonly le: number; readonly count: number }[]): number | null {
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const hit = buckets.find((b) => b.count >= total * 0.99);
  return hit === undefined || hit.le === Infinity ? null : hit.le * 1000;
}

/**
 * The step's figures for each of `levels`: requests, errors and the summed histogram's p99 over every proxy that
 * reported. Undefined when no proxy did (the engine then advances the ramp on time, as a proxy without metrics).
 */
export function stepTraffic(gate: GateReadings, levels: readonly number[]): LevelTraffic[] | undefined {
  if (gate.proxies.size === 0) return undefined;
  return levels.map((level) => {
    let requests = 0;
    let errors = 0;
    const buckets = new Map<number, number>();
    for (const { base, last } of gate.proxies.values()) {
      const b = base.find((x) => x.level === level);
      const l = last.find((x) => x.level === level);
      if (b === undefined || l === undefined) continue;
      requests += Math.max(0, l.requests - b.requests);
      errors += Math.max(0, l.errors - b.errors);
      for (const k of l.buckets) {
        const j = b.buckets.find((x) => x.le === k.le);
        if (j !== undefined) buckets.set(k.le, (buckets.get(k.le) ?? 0) + Math.max(0, k.count - j.count));
      }
    }
    const summed = [...buckets].sort((a, c) => a[0] - c[0]).map(([le, c]) => ({ le, count: c }));
    return { level, requests, errors: Math.min(errors, requests), p99Ms: p99Ms(summed) };
  });
}
