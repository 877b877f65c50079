// Shared decisions (SPEC 9): the operator sends every replica of a pool the level and shares it decided from the
// probe views of all of them (PUT /api/v1/pools/{pool}/decision). The body is checked field by field before
// anything changes: only these keys, whole numbers in range, levels the pool has, shares that add up to 100.
import { parseDuration } from '@veloflux/config/duration';
import { ERRORS } from '../errors.ts';
import { DecisionRefused } from '../control/api.ts';
import type { ControlApi } from '../control/api.ts';
import { AdminError } from './common.ts';
import type { AdminPlugin } from './common.ts';

/** A decision is a few numbers; anything longer is not one. Bytes. */
export const DECISION_BODY_LIMIT = 16 * 1024;
/** Lease bounds: shorter than this cannot be renewed in time over a real network; longer hides a dead operator. */
export const MIN_TTL_MS = 500;
export const MAX_TTL_MS = 10 * 60_000;
const KEYS = ['level', 'shares', 'sequence', 'ttl', 'paused'];
/** `paused.reason` is a sentence the operator wrote (status and logs show it); longer is not one. Characters. */
export const PAUSED_REASON_LIMIT = 500;

const show = (v: unknown): string => {
  const text = typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? 'an array' : v === null ? 'null' : typeof v === 'object' ? 'an object' : String(v);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
};

/** The decision in the body, or an AdminError listing every problem (with its field). */
export function parseDecision(body: unknown, levels: readonly number[]): { level: number; shares: { level: number; percent: number }[]; sequence: number; ttlMs: number; paused?: { reason: string } } {
  if (typeof body !== 'string' || body.trim() === '') throw new AdminError(ERRORS.BAD_PARAMETER, 'the body must be a JSON object {level, shares, sequence, ttl} (content-type application/json)');
  if (Buffer.byteLength(body) > DECISION_BODY_LIMIT) throw new AdminError(ERRORS.BAD_PARAMETER, `the decision body is larger than ${DECISION_BODY_LIMIT / 1024} KiB`);
  let d: unknown;
  try { d = JSON.parse(body); } catch { throw new AdminError(ERRORS.BAD_PARAMETER, 'the body is not valid JSON: it must be a JSON object {level, shares, sequence, ttl}'); }
  if (d === null || typeof d !== 'object' || Array.isArray(d)) throw new AdminError(ERRORS.BAD_PARAMETER, `the body must be a JSON object {level, shares, sequence, ttl}, got ${show(d)}`);
  const o = d as Record<string, unknown>;
  const problems: string[] = [];
  for (const k of Object.keys(o)) if (!KEYS.includes(k)) problems.push(`unknown field ${JSON.stringify(k.slice(0, 40))} (allowed: ${KEYS.join(', ')})`);
  const known = `one of the pool's levels (${levels.join(', ')})`;
  const isLevel = (v: unknown): v is number => Number.isInteger(v) && levels.includes(v as number);
  if (!isLevel(o.level)) problems.push(`level must be ${known}, got ${show(o.level)}`);
  const shares: { level: number; percent: number }[] = [];
  if (!Array.isArray(o.shares)) problems.push(`shares must be an array of {level, percent}, got ${show(o.shares)}`);
  else if (o.shares.length > levels.length) problems.push(`shares must list each level at most once (at most ${levels.length} entries), got ${o.shares.length}`);
  else {
    o.shares.forEach((x: unknown, i) => {
      if (x === null || typeof x !== 'object' || Array.isArray(x)) { problems.push(`shares[${i}] must be an object {level, percent}, got ${show(x)}`); return; }
      const e = x as Record<string, unknown>;
      for (const k of Object.keys(e)) if (k !== 'level' && k !== 'percent') problems.push(`shares[${i}]: unknown field ${JSON.stringify(k.slice(0, 40))} (allowed: level, percent)`);
      if (!isLevel(e.level)) problems.push(`shares[${i}].level must be ${known}, got ${show(e.level)}`);
      else if (shares.some((s) => s.level === e.level)) problems.push(`shares[${i}].level ${e.level} is listed twice`);
      if (!(Number.isInteger(e.percent) && (e.percent as number) >= 1 && (e.percent as number) <= 100)) problems.push(`shares[${i}].percent must be a whole number from 1 to 100, got ${show(e.percent)}`);
      if (isLevel(e.level) && Number.isInteger(e.percent)) shares.push({ level: e.level, percent: e.percent as number });
    });
    const sum = shares.reduce((n, s) => n + s.percent, 0);
    if (problems.length === 0 && shares.length > 0 && sum !== 100) problems.push(`shares must add up to 100 percent, got ${sum}`);
    if (problems.length === 0 && shares.length > 0 && !shares.some((s) => s.level === o.level)) problems.push(`shares must include the decided level ${String(o.level)}`);
  }
  if (!(Number.isSafeInteger(o.sequence) && (o.sequence as number) >= 1)) problems.push(`sequence must be a whole number from 1 to ${Number.MAX_SAFE_INTEGER}, got ${show(o.sequence)}`);
  const ttlMs = typeof o.ttl === 'string' ? parseDuration(o.ttl) : undefined;
  if (ttlMs === undefined || ttlMs < MIN_TTL_MS || ttlMs > MAX_TTL_MS) problems.push(`ttl must be a duration from 500ms to 10m like "6s", got ${show(o.ttl)}`);
  // Optional (SPEC 10): the operator's ramp waits on failover.ramp_gate; null or absent when it does not.
  let paused: { reason: string } | undefined;
  if (o.paused !== undefined && o.paused !== null) {
    const r = typeof o.paused === 'object' && !Array.isArray(o.paused) ? (o.paused as Record<string, unknown>) : undefined;
    if (r === undefined) problems.push(`paused must be an object {reason} or null, got ${show(o.paused)}`);
    else {
      for (const k of Object.keys(r)) if (k !== 'reason') problems.push(`paused: unknown field ${JSON.stringify(k.slice(0, 40))} (allowed: reason)`);
      if (typeof r.reason !== 'string' || r.reason.length === 0 || r.reason.length > PAUSED_REASON_LIMIT) problems.push(`paused.reason must be a string of 1 to ${PAUSED_REASON_LIMIT} characters, got ${show(r.reason)}`);
      else paused = { reason: r.reason };
    }
  }
  if (problems.length > 0) throw new AdminError(ERRORS.BAD_PARAMETER, `invalid decision: ${problems.slice(0, 10).join('; ')}`);
  return { level: o.level as number, shares, sequence: o.sequence as number, ttlMs: ttlMs as number, ...(paused ? { paused } : {}) };
}

export const decisionPlugin: AdminPlugin = (app, ctx) => {
  app.put('/api/v1/pools/:pool/decision', async (req) => {
    const c: ControlApi = ctx.controller();
    const name = (req.params as { pool: string }).pool;
    const pool = c.config.pools.find((p) => p.name === name);
    // Status first for an unknown pool (404), whatever the body.
    if (!pool) c.status(name);
    const d = parseDecision(req.body, (pool as NonNullable<typeof pool>).levels);
    try {
      const st = c.applyDecision(name, d);
      return { pool: name, level: st.activeLevel, shares: st.shares.map((s) => ({ level: s.level, percent: s.percent })), ...st.decision };
    } catch (err) {
      if (err instanceof DecisionRefused) throw new AdminError(err.reason === 'stale' ? ERRORS.DECISION_STALE : ERRORS.DECISION_LOCAL, err.message);
      throw err;
    }
  });
};
