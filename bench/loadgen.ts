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
import { Pool } from 'undici';

export interface LoadgenOptions {
  url: string;
  rate: number;
  connections: number;
  durationS: number;
  /** Unix ms; defaults to now + 100 ms. */
  startAt?: number;
  /** Per-request headers/body timeout, ms. */
  timeoutMs: number;
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
  const total = Math.round(o.rate * o.durationS);
  const intervalMs = 1000 / o.rate;
  const seconds = Math.ceil(o.durationS);
  const perSecond: SecondStats[] = Array.from({ length: seconds }, (_, second) =>
    ({ second, sent: 0, ok: 0, non2xx: 0, errors: 0, maxLatencyMs: 0, servedBy: {} }));
  const okLatencies = new Float64Array(total);
  let okCount = 0;
  let non2xx = 0;
  let errors = 0;
  let done = 0;
  let maxSendLagMs = 0;
  const errorKinds: Record<string, number> = {};

  const startAt = o.startAt ?? Date.now() + 100;
  await sleep(Math.max(0, startAt - Date.now()));
  const t0 = performance.now() - (Date.now() - startAt); // performance clock at startAt

  const send = (i: number): void => {
    const scheduled = t0 + i * intervalMs;
    const bucket = perSecond[Math.min(seconds - 1, Math.floor((i * intervalMs) / 1000))]!;
    bucket.sent++;
    maxSendLagMs = Math.max(maxSendLagMs, performance.now() - scheduled);
    const finish = (): number => {
      done++;
      const latency = performance.now() - scheduled;
      bucket.maxLatencyMs = Math.max(bucket.maxLatencyMs, latency);
      return latency;
    };
    pool.request({ path, method: 'GET' }).then(
      async ({ statusCode, headers, body }) => {
        try {
          await body.dump();
        } catch (err) {
          finish();
          errors++;
          bucket.errors++;
          const kind = (err as NodeJS.ErrnoException).code ?? (err as Error).name;
          errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
          return;
        }
        const latency = finish();
        if (statusCode >= 200 && statusCode < 300) {
          okLatencies[okCount++] = latency;
          bucket.ok++;
          const who = String(headers['x-served-by'] ?? 'unknown');
          bucket.servedBy[who] = (bucket.servedBy[who] ?? 0) + 1;
        } else {
          non2xx++;
          bucket.non2xx++;
          const kind = `HTTP ${statusCode}`;
          errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
        }
      },
      (err: NodeJS.ErrnoException) => {
        finish();
        errors++;
        bucket.errors++;
        const kind = err.code ?? err.name;
        errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      },
    );
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
  const unfinished = total - done;
  await pool.destroy().catch(() => {});

  const sorted = okLatencies.subarray(0, okCount).sort();
  return {
    startAt,
    sent: total,
    ok: okCount,
    non2xx,
    errors,
    unfinished,
    latency: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN },
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
