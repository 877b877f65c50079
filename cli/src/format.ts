// Pure: what the admin API answers -> what a human reads at a terminal (kubectl-style tables, one-line outcomes).
// -o json and -o yaml print the API's answer as it is; these are only for the default table output.

export interface BackendStatus {
  readonly address: string;
  readonly level: number;
  readonly region: string | null;
  readonly weight: number;
  readonly health: string;
  readonly lastCheck: string | null;
  readonly lastError: string | null;
}

export interface PoolStatus {
  readonly name: string;
  readonly activeLevel: number;
  readonly mode: string;
  readonly strategy: string;
  readonly failoverActive: boolean;
  readonly failoverCount: number;
  readonly activeSince: string | null;
  readonly ramp?: { readonly from: number; readonly to: number; readonly percent: number } | null;
  readonly failback?: { readonly mode?: string; readonly awaitingApproval?: boolean; readonly message?: string } | null;
  readonly backends: readonly BackendStatus[];
}

/** Columns padded to their widest cell, two spaces apart, headers in capitals (kubectl's look). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** Anything the proxy sent, as one printable line (no terminal control characters from a hostile peer). */
export function clean(v: unknown): string {
  return String(v ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function state(p: PoolStatus): string {
  if (p.failback?.awaitingApproval) return 'awaiting failback approval';
  if (p.ramp) return `ramp ${p.ramp.from}->${p.ramp.to} ${p.ramp.percent}%`;
  return p.failoverActive ? 'failover' : 'normal';
}

export function poolsTable(pools: readonly PoolStatus[]): string {
  if (pools.length === 0) return 'no pools (every request answers 404 until a config with pools is applied)';
  return table(['POOL', 'LEVEL', 'STATE', 'MODE', 'STRATEGY', 'FAILOVERS', 'ACTIVE SINCE'], pools.map((p) => [
    clean(p.name), String(p.activeLevel), state(p), clean(p.mode), clean(p.strategy), String(p.failoverCount), clean(p.activeSince ?? '-'),
  ]));
}

export function backendsTable(pools: readonly PoolStatus[]): string {
  const rows = pools.flatMap((p) => p.backends.map((b) => [
    clean(p.name), clean(b.address), String(b.level), clean(b.health), String(b.weight), clean(b.region ?? '-'), clean(b.lastCheck ?? '-'), clean(b.lastError ?? ''),
  ]));
  return rows.length === 0 ? 'no backends' : table(['POOL', 'BACKEND', 'LEVEL', 'HEALTH', 'WEIGHT', 'REGION', 'LAST CHECK', 'LAST ERROR'], rows);
}

/** The outcome of activate, deactivate or failback, in one line. */
export function poolLine(command: string, p: PoolStatus): string {
  const where = `level ${p.activeLevel}, mode ${clean(p.mode)}${p.failoverActive ? ', failover active' : ''}`;
  if (command === 'activate') return `pool ${clean(p.name)}: failover activated (${where})`;
  if (command === 'deactivate') return `pool ${clean(p.name)}: back to automatic failover (${where})`;
  return `pool ${clean(p.name)}: failback approved (${where})`;
}

interface ChannelResult { readonly channel?: unknown; readonly ok?: unknown; readonly error?: unknown }

function notifications(r: Record<string, unknown>): string {
  const list = Array.isArray(r.notifications) ? (r.notifications as ChannelResult[]) : [];
  if (list.length === 0) return 'notifications: none configured';
  return `notifications:\n${table(['CHANNEL', 'DELIVERED', 'ERROR'], list.map((n) => [clean(n.channel), n.ok === true ? 'yes' : 'no', clean(n.error ?? '')]))}`;
}

/** A drill report (POST /api/v1/failover/test) for humans. */
export function drillText(r: Record<string, unknown>): string {
  if (r.mode === 'live') {
    const lat = (r.latencyMs ?? {}) as { p50?: number | null; p99?: number | null };
    const ms = (v: number | null | undefined): string => (v === null || v === undefined ? '-' : `${v} ms`);
    return [
      `pool ${clean(r.pool)}: live drill, ${Math.round(Number(r.durationMs) / 1000)}s on level ${clean(r.to)} (from ${clean(r.from)}, now ${clean(r.after)})`,
      `requests ${clean(r.requests)}, errors ${clean(r.errors)} (${(Number(r.errorRate) * 100).toFixed(1)}%), p50 ${ms(lat.p50)}, p99 ${ms(lat.p99)}`,
      notifications(r),
    ].join('\n');
  }
  const checks = Array.isArray(r.nextLevelBackends) ? (r.nextLevelBackends as { address?: unknown; ok?: unknown; latencyMs?: unknown; error?: unknown }[]) : [];
  return [
    `pool ${clean(r.pool)}: dry run (nothing moved), level ${clean(r.activeLevel)} serving`,
    clean(r.wouldHappen),
    ...(checks.length > 0 ? [table(['BACKEND', 'ANSWERS', 'LATENCY', 'ERROR'], checks.map((c) => [clean(c.address), c.ok === true ? 'yes' : 'no', `${clean(c.latencyMs)} ms`, clean(c.error ?? '')]))] : []),
    notifications(r),
  ].join('\n');
}

/** One event of the stream as a line: time (the event's own, else `now`), type, and what it says. */
export function eventLine(type: string, data: unknown, now: number): string {
  const d = (data && typeof data === 'object' ? data : {}) as Record<string, unknown>;
  if (type === 'hello') {
    const pools = Array.isArray(d.pools) ? (d.pools as PoolStatus[]) : [];
    return `${new Date(now).toISOString()}  hello  config ${clean(d.version)}, ${pools.map((p) => `${clean(p.name)} on level ${p.activeLevel}`).join(', ') || 'no pools'}`;
  }
  const skip = new Set(['type', 'at']);
  const fields = Object.entries(d).filter(([k]) => !skip.has(k)).map(([k, v]) => `${k}=${clean(typeof v === 'object' ? JSON.stringify(v) : v)}`);
  return `${clean(d.at ?? new Date(now).toISOString())}  ${clean(type)}  ${fields.join(' ')}`;
}
