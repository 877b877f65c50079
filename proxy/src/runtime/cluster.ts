// Several data-plane workers (node:cluster) around one control side in the primary. The primary probes,
// decides and serves the admin API; it sends the config text and every routing change to all workers and
// takes their passive signals. Workers hold no health state of their own, so they switch levels together.
// /metrics adds up the workers' request metrics (asked for over IPC) to the primary's control metrics.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { AggregatorRegistry } from 'prom-client';
import type { Config } from '@veloflux/config/types';
import type { RoutingState } from '../routing.ts';
import { startControlSide } from './control.ts';
import { systemClock } from '../control/clock.ts';
import type { Address, MetricsJson } from './control.ts';
import { run } from './proxy.ts';
import type { RunningProxy, StartOptions } from './proxy.ts';

// Workers get the resolved config as data (not YAML): they need no config parser, so they load less.
export type ToWorker =
  | { readonly type: 'init'; readonly config: Config; readonly version: string; readonly routing: RoutingState }
  | { readonly type: 'config'; readonly config: Config; readonly version: string }
  | { readonly type: 'routing'; readonly routing: RoutingState }
  | { readonly type: 'metrics'; readonly id: number }
  | { readonly type: 'reopen' }
  | { readonly type: 'shutdown'; readonly graceMs: number };

export type FromWorker =
  | { readonly type: 'listening'; readonly address: Address }
  | { readonly type: 'passive'; readonly backendId: string; readonly error: string }
  | { readonly type: 'outlier'; readonly backendId: string; readonly reason: string }
  | { readonly type: 'metrics'; readonly id: number; readonly json: MetricsJson }
  | { readonly type: 'access_log_failed'; readonly message: string }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'log'; readonly level: 'info' | 'warn'; readonly fields: Record<string, unknown>; readonly msg: string };

/**
 * Node flags of the worker processes: the parent's, with the V8 young generation capped. Node sizes the young
 * generation from the heap limit (on a machine with 24 GB it grows to 128 MB under load), which is most of a
 * proxy's memory and buys little: the data plane's objects die young and small.
 */
export function workerExecArgv(parent: readonly string[], youngGenerationMb: number): string[] {
  const semiSpace = Math.max(1, Math.round(youngGenerationMb / 3));
  return [...parent.filter((a) => !a.startsWith('--max-semi-space-size')), `--max-semi-space-size=${semiSpace}`];
}

/** How long the primary waits for a worker's metrics before scraping without them. */
const METRICS_TIMEOUT_MS = 2000;
/** A worker that died sooner than this after its start is restarted after a backoff: 100 ms, doubled each time, 30 s at most. */
const WORKER_STABLE_MS = 10_000;
const WORKER_MIN_BACKOFF_MS = 100;
const WORKER_MAX_BACKOFF_MS = 30_000;

export async function startCluster(config: Config, version: string, workers: number, opts: StartOptions): Promise<RunningProxy> {
  const log = opts.log;
  // The worker runs from the same kind of file as this one (.ts in the repository, .js in a build).
  const ext = import.meta.url.endsWith('.js') ? '.js' : '.ts';
  cluster.setupPrimary({ exec: fileURLToPath(new URL(`./worker${ext}`, import.meta.url)), args: [], execArgv: workerExecArgv(process.execArgv, config.dataplane.youngGenerationMb) });
  const live = new Set<Worker>();
  let stopping = false;
  let nextId = 0;
  const pending = new Map<number, { left: number; parts: MetricsJson[]; done: (parts: MetricsJson[]) => void }>();

  const broadcast = (m: ToWorker): void => {
    for (const w of live) if (w.isConnected()) w.send(m);
  };
  const gather = (): Promise<MetricsJson[]> =>
    new Promise((resolve) => {
      const id = ++nextId;
      const targets = [...live].filter((w) => w.isConnected());
      if (targets.length === 0) { resolve([]); return; }
      const finish = (parts: MetricsJson[]): void => { pending.delete(id); clearTimeout(timer); resolve(parts); };
      const timer = setTimeout(() => finish(pending.get(id)?.parts ?? []), METRICS_TIMEOUT_MS);
      pending.set(id, { left: targets.length, parts: [], done: finish });
      for (const w of targets) w.send({ type: 'metrics', id } satisfies ToWorker);
    });
  const aggregate = async () => AggregatorRegistry.aggregate(await gather() as never);

  const control = startControlSide(config, version, {
    log,
    traffic: {
      text: async () => (await aggregate()).metrics(),
      json: async () => (await aggregate()).getMetricsAsJSON() as never,
    },
    // Workers must hold the new config before the routing state that refers to it arrives (IPC is ordered).
    beforeApply: (next, nextVersion) => broadcast({ type: 'config', config: next, version: nextVersion }),
  });
  const { controller } = control;

  // Each worker writes its own access log lines (dataplane/access-log.ts); their failures are logged here, once each.
  let lastAccessLogFailure = '';
  const accessLogFailed = (message: string): void => {
    if (message === lastAccessLogFailure) return;
    lastAccessLogFailure = message;
    log.error({ err: message }, 'access log failed; its lines are dropped until it works again');
  };

  let restartDelayMs = 0;
  const fork = (): Promise<Address> =>
    new Promise((resolve, reject) => {
      // glibc gives each thread its own malloc arena (8 per core), which holds memory a proxy freed long ago;
      // two arenas keep a worker's memory near what it uses (measured: ~125 MB -> ~100 MB under load).
      const w = cluster.fork({ MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' });
      live.add(w);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'passive') controller.passive(m.backendId, m.error);
        else if (m.type === 'outlier') controller.outlier(m.backendId, m.reason);
        else if (m.type === 'metrics') {
          const p = pending.get(m.id);
          if (p) { p.parts.push(m.json); if (--p.left === 0) p.done(p.parts); }
        } else if (m.type === 'access_log_failed') accessLogFailed(m.message);
        else if (m.type === 'listening') resolve(m.address);
        else if (m.type === 'failed') reject(new Error(m.message));
        else if (m.type === 'log') log[m.level](m.fields, m.msg);
      });
      w.on('online', () => w.send({ type: 'init', config: controller.config, version: controller.version, routing: controller.routing } satisfies ToWorker));
      const bornAt = systemClock.now();
      w.on('exit', (code, signal) => {
        live.delete(w);
        if (stopping) return;
        reject(new Error(`worker exited with ${code ?? signal}`));
        // Restart with exponential backoff, so a worker that dies at once (bad input it meets again, no memory)
        // does not become a fork loop; a worker that stayed up a while resets the backoff.
        restartDelayMs = systemClock.now() - bornAt >= WORKER_STABLE_MS ? 0 : Math.min(WORKER_MAX_BACKOFF_MS, Math.max(WORKER_MIN_BACKOFF_MS, restartDelayMs * 2));
        log.error({ worker: w.id, pid: w.process.pid, code, signal, restartInMs: restartDelayMs }, `data-plane worker exited (${signal ? `signal ${signal}` : `code ${code}`}); starting a new one`);
        const timer = setTimeout(() => {
          if (stopping) return;
          void fork().catch((err: Error) => log.error({ err: err.message }, 'could not restart a data-plane worker'));
        }, restartDelayMs);
        timer.unref();
      });
    });

  controller.on('routing', (routing) => broadcast({ type: 'routing', routing }));

  return run(control, {
    listen: async () => (await Promise.all(Array.from({ length: workers }, fork)))[0] as Address,
    // Every worker listens on the configured TLS address (node:cluster shares the port).
    tlsAddress: () => config.tls === undefined ? undefined : { host: config.tls.listen.host, port: config.tls.listen.port },
    abort: async () => {
      stopping = true;
      for (const w of live) w.kill();
    },
    stop: async (graceMs) => {
      stopping = true;
      await Promise.all([...live].map((w) => new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.send({ type: 'shutdown', graceMs } satisfies ToWorker);
      })));
    },
    // The workers hold the files: each opens its own again (SIGHUP reaches this process, not necessarily them).
    reopenLogs: () => broadcast({ type: 'reopen' }),
  });
}
