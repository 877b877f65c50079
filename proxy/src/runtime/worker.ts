// A data-plane worker process (see cluster.ts): serves traffic from the config and routing state the primary
// sends, reports passive signals, and answers the primary's requests for its request metrics.
import type { Config } from '@veloflux/config/types';
import { DataPlane } from '../dataplane/server.ts';
import { TrafficMetrics } from '../metrics/traffic.ts';
import type { FromWorker, ToWorker } from './cluster.ts';

let dp: DataPlane | undefined;
/** The config the next routing state may refer to, by version. */
const configs = new Map<string, Config>();
const traffic = new TrafficMetrics();

function send(m: FromWorker): void {
  process.send?.(m);
}


process.on('message', (m: ToWorker) => {
  if (m.type === 'init') {
    const config = m.config;
    configs.set(m.version, config);
    traffic.prepare(config);
    dp = new DataPlane({
      config,
      routing: m.routing,
      hooks: {
        passive: (target, error) => {
          traffic.passiveFailure(target.backend.pool, target);
          send({ type: 'passive', backendId: target.backend.id, error });
        },
        done: (pool, target, status, attempts, startedAt) => traffic.done(pool, target, status, attempts, startedAt),
        tlsReload: (certFile, result) => traffic.tlsReload(certFile, result),
      },
      // The primary writes the worker's lines with its logger.
      log: {
        info: (fields, msg) => send({ type: 'log', level: 'info', fields, msg }),
        warn: (fields, msg) => send({ type: 'log', level: 'warn', fields, msg }),
      },
    });
    dp.listen(config.listen.host, config.listen.port).then(
      (address) => send({ type: 'listening', address }),
      (err: Error) => { send({ type: 'failed', message: err.message }); process.exit(1); },
    );
  } else if (m.type === 'config') {
    configs.set(m.version, m.config);
  } else if (m.type === 'routing' && dp) {
    if (m.routing.seq <= dp.snapshot.routing.seq) return;
    const config = configs.get(m.routing.configVersion) ?? dp.snapshot.config;
    if (config !== dp.snapshot.config) {
      traffic.prepare(config);
      for (const v of configs.keys()) if (v !== m.routing.configVersion) configs.delete(v);
    }
    dp.update(config, m.routing);
  } else if (m.type === 'metrics') {
    void traffic.json().then((json) => send({ type: 'metrics', id: m.id, json }));
  } else if (m.type === 'shutdown') {
    void (dp?.close(m.graceMs) ?? Promise.resolve()).then(() => process.exit(0));
  }
});

// The primary decides when workers stop; a terminal's Ctrl-C reaches the whole group, so ignore it here.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
