// A data-plane worker process (see cluster.ts): serves traffic from the config and routing state the primary
// sends, reports passive signals, and answers the primary's requests for its request metrics.
import type { Config } from '@veloflux/config/types';
import { DataPlane } from '../dataplane/server.ts';
import { TrafficMetrics } from '../metrics/traffic.ts';
import type { FromWorker, ToWorker } from './cluster.ts';
import { AccessLog } from '../dataplane/access-log.ts';
import { systemClock } from '../control/clock.ts';

let dp: DataPlane | undefined;
/** The config the next routing state may refer to, by version. */
const configs = new Map<string, Config>();
const traffic = new TrafficMetrics();
// Failures go to the primary, which logs each distinct one once.
const accessLog = new AccessLog({ now: () => systemClock.now(), dropped: () => traffic.accessLogDrop(), failed: (message) => send({ type: 'access_log_failed', message }) });

function send(m: FromWorker): void {
  process.send?.(m);
}


process.on('message', (m: ToWorker) => {
  if (m.type === 'init') {
    const config = m.config;
    configs.set(m.version, config);
    traffic.prepare(config);
    accessLog.configure(config.accessLog);
    dp = new DataPlane({
      config,
      routing: m.routing,
      hooks: {
        passive: (target, error) => {
          traffic.passiveFailure(target.backend.pool, target);
          send({ type: 'passive', backendId: target.backend.id, error });
        },
        outlier: (backendId, reason) => send({ type: 'outlier', backendId, reason }),
        hedged: (pool) => traffic.hedge(pool),
        done: (pool, target, status, attempts, startedAt) => traffic.done(pool, target, status, attempts, startedAt),
        grpc: (pool, status) => traffic.grpcStatus(pool, status),
        tlsReload: (certFile, result) => traffic.tlsReload(certFile, result),
        access: (req, res, pool, target, status, attempts, startedAt, bytes, hedged) => accessLog.record(req, res, pool, target, status, attempts, startedAt, bytes, hedged),
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
      accessLog.configure(config.accessLog);
      for (const v of configs.keys()) if (v !== m.routing.configVersion) configs.delete(v);
    }
    dp.update(config, m.routing);
  } else if (m.type === 'metrics') {
    void traffic.json().then((json) => send({ type: 'metrics', id: m.id, json }));
  } else if (m.type === 'reopen') {
    accessLog.reopen();
  } else if (m.type === 'shutdown') {
    void (dp?.close(m.graceMs) ?? Promise.resolve()).then(() => accessLog.close()).then(() => process.exit(0));
  }
});

// The primary decides when workers stop; a terminal's Ctrl-C reaches the whole group, so ignore it here.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
// A hangup sent to the whole group (or to a worker) is a rotation too, never a reason to die.
process.on('SIGHUP', () => accessLog.reopen());
