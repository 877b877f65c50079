// Several data-plane workers (node:cluster) around one controller in the primary. The primary probes, decides
// and serves the admin API; it sends the config text once and every routing change to all workers, and takes
// their passive signals. Workers hold no health state of their own, so they switch levels together.
import cluster from 'node:cluster';
import type { Worker } from 'node:cluster';
import { fileURLToPath } from 'node:url';
import { createAdmin, listenAdmin } from '../admin/server.ts';
import type { Config } from '../config/types.ts';
import type { RoutingState } from '../routing.ts';
import { startControl } from './proxy.ts';
import type { Address, RunningProxy, StartOptions } from './proxy.ts';

export type ToWorker =
  | { readonly type: 'init'; readonly source: string; readonly routing: RoutingState }
  | { readonly type: 'routing'; readonly routing: RoutingState }
  | { readonly type: 'shutdown'; readonly graceMs: number };

export type FromWorker =
  | { readonly type: 'listening'; readonly address: Address }
  | { readonly type: 'passive'; readonly backendId: string; readonly error: string }
  | { readonly type: 'failed'; readonly message: string };

export async function startCluster(config: Config, version: string, source: string, workers: number, opts: StartOptions): Promise<RunningProxy> {
  const { controller, prober } = await startControl(config, version, opts);
  const log = opts.log;
  cluster.setupPrimary({ exec: fileURLToPath(new URL('./worker.ts', import.meta.url)), args: [] });
  const live = new Set<Worker>();
  let stopping = false;

  const fork = (): Promise<Address> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork();
      live.add(w);
      w.on('message', (m: FromWorker) => {
        if (m.type === 'passive') controller.passive(m.backendId, m.error);
        else if (m.type === 'listening') resolve(m.address);
        else if (m.type === 'failed') reject(new Error(m.message));
      });
      w.on('online', () => w.send({ type: 'init', source, routing: controller.routing } satisfies ToWorker));
      w.on('exit', (code, signal) => {
        live.delete(w);
        if (stopping) return;
        log.error({ worker: w.id, code, signal }, 'data-plane worker exited; starting a new one');
        reject(new Error(`worker exited with ${code ?? signal}`));
        void fork().catch((err: Error) => log.error({ err: err.message }, 'could not restart a data-plane worker'));
      });
    });

  controller.on('routing', (routing) => {
    for (const w of live) if (w.isConnected()) w.send({ type: 'routing', routing } satisfies ToWorker);
  });

  const admin = createAdmin(() => controller);
  const adminAddress = await listenAdmin(admin, config.admin.listen.host, config.admin.listen.port);
  let data: Address;
  try {
    const addresses = await Promise.all(Array.from({ length: workers }, fork));
    data = addresses[0] as Address;
  } catch (err) {
    stopping = true;
    for (const w of live) w.kill();
    await admin.close();
    await prober.close();
    throw err;
  }
  controller.start();
  return {
    data,
    admin: adminAddress,
    controller,
    async stop(graceMs) {
      stopping = true;
      controller.stop();
      await Promise.all([...live].map((w) => new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.send({ type: 'shutdown', graceMs: graceMs ?? 30_000 } satisfies ToWorker);
      })));
      await admin.close();
      await prober.close();
    },
  };
}
