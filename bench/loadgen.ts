// Open-loop load generator, run as its own process (pinned away from the proxy under test):
//   node bench/loadgen.ts '<json LoadgenOptions>'   -> prints one JSON LoadgenResult on stdout
// It sends `rate` GET requests per second over at most `connections` keep-alive connections for `durationS`, starting
// at wall-clock `startAt` (so the caller can inject faults at known offsets). Request i is *scheduled* at
// startAt + i/rate and its latency counts from that moment, so a slow server cannot slow the generator down and hide
// its own latency (no coordinated omission): when every connection is busy, requests queue and the queueing shows.
// Each request is accounted to the second it was scheduled in: who served it (`x-served-by`), non-2xx, errors.
// Bounded: exactly rate*durationS requests; anything unfinished at durationS + timeoutMs + 1 s counts as failed.
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, type Dispatcher } from 'undici';

export interface LoadgenOptions {
  url: string;
  rate: number;
  connections: number;
  durationS: number;
  /** Unix ms of the first measured request; defaults to now + 100 ms (+ the warm-up). */
  startAt?: number;
  /** Seconds of the same load before `startAt` (connections open, JIT warm), not counted; default 0. */
  warmupS?: number;
  /** Per-request headers/body timeout, ms. */
  timeoutMs: number;
  /** Also report the latency of the 2xx answers to requests scheduled before this second (the drill's normal). */
  normalBeforeS?: number;
}

export interface SecondStats {
  second: number;
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  maxLatencyMs: number;
  servedBy: Record<string, number>;
}

export interface LoadgenResult {
  startAt: number;
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  /** Still pending at the deadline (counted as failed, not in `errors`). */
  unfinished: number;
  /** Over 2xx responses, ms from scheduled time. */
  latency: { p50: number; p99: number; max: number };
  /** The same over requests scheduled before `normalBeforeS` (when asked). */
  normal?: { p50: number; p99: number; max: number };
  /** Worst delay between a request's scheduled time and the generator sending it: if large, the generator lagged. */
  maxSendLagMs: number;
  errorKinds: Record<string, number>;
  perSecond: SecondStats[];
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export async function generate(o: LoadgenOptions): Promise<LoadgenResult> {
  const url = new URL(o.url);
  const pool = new Pool(url.origin, {
    connections: o.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: o.timeoutMs,
    bodyTimeout: o.timeoutMs,
    connect: { timeout: o.timeoutMs },
  });
  const path = url.pathname + url.search;
  const intervalMs = 1000 / o.rate;
  const warmupS = o.warmupS ?? 0;
  const skip = Math.round(o.rate * warmupS); // warm-up requests: sent, awaited, not counted
  const total = skip + Math.round(o.rate * o.durationS);
  const seconds = Math.ceil(o.durationS);
  const perSecond: SecondStats[] = Array.from({ length: seconds }, (_, second) =>
    ({ second, sent: 0, ok: 0, non2xx: 0, errors: 0, maxLatencyMs: 0, servedBy: {} }));
  const okLatencies = new Float64Array(total - skip);
  const okSeconds = new Uint32Array(total - skip);
  let okCount = 0;
  let non2xx = 0;
  let errors = 0;
  let done = 0;
  let maxSendLagMs = 0;
  const errorKinds: Record<string, number> = {};

  const startAt = o.startAt ?? Date.now() + 100 + warmupS * 1000;
  const firstAt = startAt - warmupS * 1000;
  await sleep(Math.max(0, firstAt - Date.now()));
  const t0 = performance.now() - (Date.now() - firstAt); // performance clock at the first (warm-up) request
  const ignored: SecondStats = { second: -1, sent: 0, ok: 0, non2xx: 0, errors: 0, maxLatencyMs: 0, servedBy: {} };

  const fail = (bucket: SecondStats, kind: string): void => {
    errors++;
    bucket.errors++;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  };
  // One small handler object per request on undici's dispatch API: no promise or stream per request, so one
  // generator process sustains far more than the rates it is asked for (it shares a core with the backends).
  class Exchange implements Dispatcher.DispatchHandler {
    status = 0;
    servedBy = 'unknown';
    ended = false;
    readonly scheduled: number;
    readonly bucket: SecondStats;
    readonly measured: boolean;
    constructor(scheduled: number, bucket: SecondStats, measured: boolean) {
      this.scheduled = scheduled;
      this.bucket = bucket;
      this.measured = measured;
    }
    #finish(): number {
      this.ended = true;
      done++;
      const latency = performance.now() - this.scheduled;
      if (latency > this.bucket.maxLatencyMs) this.bucket.maxLatencyMs = latency;
      return latency;
    }
    onRequestStart(): void { /* nothing to keep */ }
    onResponseStart(_c: unknown, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
      this.status = statusCode;
      this.servedBy = String(headers['x-served-by'] ?? 'unknown');
    }
    onResponseData(): void { /* discard the body */ }
    onResponseEnd(): void {
      if (this.ended) return;
      const latency = this.#finish();
      if (!this.measured) return;
      const b = this.bucket;
      if (this.status >= 200 && this.status < 300) {
        okSeconds[okCount] = b.second;
        okLatencies[okCount++] = latency;
        b.ok++;
        b.servedBy[this.servedBy] = (b.servedBy[this.servedBy] ?? 0) + 1;
      } else {
        non2xx++;
        b.non2xx++;
        errorKinds[`HTTP ${this.status}`] = (errorKinds[`HTTP ${this.status}`] ?? 0) + 1;
      }
    }
    onResponseError(_c: unknown, err: NodeJS.ErrnoException): void {
      if (this.ended) return;
      this.#finish();
      if (this.measured) fail(this.bucket, err.code ?? err.name);
    }
  }

  const send = (i: number): void => {
    const scheduled = t0 + i * intervalMs;
    const measured = i >= skip;
    const bucket = measured ? perSecond[Math.min(seconds - 1, Math.floor(((i - skip) * intervalMs) / 1000))]! : ignored;
    bucket.sent++;
    const lag = performance.now() - scheduled;
    if (measured && lag > maxSendLagMs) maxSendLagMs = lag;
    const ex = new Exchange(scheduled, bucket, measured);
    try {
      pool.dispatch({ path, method: 'GET' }, ex);
    } catch (err) {
      ex.onResponseError(undefined, err as NodeJS.ErrnoException);
    }
  };

  // Issue every request whose time has come; a 1 ms tick keeps the schedule within ~1 ms at these rates.
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor((performance.now() - t0) / intervalMs) + 1);
      while (next < due) send(next++);
      if (next >= total) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, 1);
    tick();
  });
  const deadline = startAt + o.durationS * 1000 + o.timeoutMs + 1000;
  while (done < total && Date.now() < deadline) await sleep(10);
  const unfinished = total - done; // a warm-up request still pending this late also counts: the server is stuck
  await pool.destroy().catch(() => {});

  let normal: LoadgenResult['normal'];
  if (o.normalBeforeS !== undefined) {
    const before: number[] = [];
    for (let i = 0; i < okCount; i++) if ((okSeconds[i] as number) < o.normalBeforeS) before.push(okLatencies[i] as number);
    const n = Float64Array.from(before).sort();
    normal = { p50: percentile(n, 50), p99: percentile(n, 99), max: n.length ? n[n.length - 1]! : Number.NaN };
  }
  const sorted = okLatencies.subarray(0, okCount).sort();
  return {
    startAt,
    sent: total - skip,
    ok: okCount,
    non2xx,
    errors,
    unfinished,
    latency: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN },
    ...(normal ? { normal } : {}),
    maxSendLagMs,
    errorKinds,
    perSecond,
  };
}

if (import.meta.main) {
  const opts = JSON.parse(process.argv[2] ?? '{}') as LoadgenOptions;
  const result = await generate(opts);
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(0);
}
