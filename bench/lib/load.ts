// Load runners. Both run the generator in its own process, pinned with the backends, never with the proxy under test.
// - saturate(): closed loop, as fast as the server answers (wrk; autocannon when wrk is not installed).
// - openLoop(): a fixed request rate with per-second accounting (bench/loadgen.ts).
import { fileURLToPath } from 'node:url';
import { runToEnd } from './proc.ts';
import { hasCommand } from './tools.ts';
import type { LoadgenOptions, LoadgenResult } from '../loadgen.ts';

export interface SaturationResult {
  tool: 'wrk' | 'autocannon';
  rps: number;
  p50: number; // ms
  p99: number; // ms
  requests: number;
  /** non-2xx/3xx responses plus socket errors */
  failures: number;
}

export interface SaturateOptions {
  url: string;
  connections: number;
  durationS: number;
  /** wrk threads (default 1). */
  threads?: number;
  cpus?: string;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function wrkDuration(s: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(s.trim());
  return m ? Number(m[1]) * UNIT_MS[m[2]!]! : Number.NaN;
}

/** Parses `wrk --latency` output. Exported for reuse; the format is wrk 4.x's. */
export function parseWrk(out: string): SaturationResult {
  const num = (re: RegExp): number => {
    const m = re.exec(out);
    return m ? Number(m[1]) : 0;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return {
    tool: 'wrk',
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50: wrkDuration(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    p99: wrkDuration(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    requests: num(/(\d+) requests in/),
    failures: num(/Non-2xx or 3xx responses: (\d+)/) + socketErrors,
  };
}

export async function saturate(o: SaturateOptions): Promise<SaturationResult> {
  const timeoutMs = o.durationS * 1000 + 15_000;
  if (hasCommand('wrk')) {
    const out = await runToEnd('wrk', 'wrk', [`-t${o.threads ?? 1}`, `-c${o.connections}`, `-d${o.durationS}s`, '--latency', '--timeout', '5s', o.url],
      { cpus: o.cpus, timeoutMs });
    return parseWrk(out);
  }
  const cannon = fileURLToPath(import.meta.resolve('autocannon/autocannon.js'));
  const out = await runToEnd('autocannon', process.execPath,
    [cannon, '-c', String(o.connections), '-d', String(o.durationS), '-j', '-n', o.url], { cpus: o.cpus, timeoutMs });
  const r = JSON.parse(out) as {
    requests: { average: number; total: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number;
  };
  return { tool: 'autocannon', rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total,
    failures: r.non2xx + r.errors };
}

const LOADGEN = fileURLToPath(new URL('../loadgen.ts', import.meta.url));

export async function openLoop(o: LoadgenOptions & { cpus?: string }): Promise<LoadgenResult> {
  const { cpus, ...opts } = o;
  const startIn = Math.max(0, (opts.startAt ?? Date.now() + (opts.warmupS ?? 0) * 1000) - Date.now());
  const timeoutMs = startIn + opts.durationS * 1000 + opts.timeoutMs + 15_000;
  const out = await runToEnd('loadgen', process.execPath, [LOADGEN, JSON.stringify(opts)], { cpus, timeoutMs });
  return JSON.parse(out) as LoadgenResult;
}
