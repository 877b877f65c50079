// A data-plane worker process (see cluster.ts): serves traffic from the routing state the primary sends.
import { loadConfigText } from '../config/load.ts';
import { DataPlane } from '../dataplane/server.ts';
import type { FromWorker, ToWorker } from './cluster.ts';

let dp: DataPlane | undefined;
let config: Extract<ReturnType<typeof loadConfigText>, { ok: true }>['config'] | undefined;

function send(m: FromWorker): void {
  process.send?.(m);
}

process.on('message', (m: ToWorker) => {
  if (m.type === 'init') {
    const loaded = loadConfigText(m.source);
    if (!loaded.ok) { send({ type: 'failed', message: 'config rejected by worker' }); process.exit(2); }
    config = loaded.config;
    dp = new DataPlane({
      config,
      routing: m.routing,
      hooks: {
        passive: (target, error) => send({ type: 'passive', backendId: target.backend.id, error }),
        done: () => {},
      },
    });
    dp.listen(config.listen.host, config.listen.port).then(
      (address) => send({ type: 'listening', address }),
      (err: Error) => { send({ type: 'failed', message: err.message }); process.exit(1); },
    );
  } else if (m.type === 'routing' && dp && config) {
    if (m.routing.seq > dp.snapshot.routing.seq) dp.update(config, m.routing);
  } else if (m.type === 'shutdown') {
    void (dp?.close(m.graceMs) ?? Promise.resolve()).then(() => process.exit(0));
  }
});

// The primary decides when workers stop; a terminal's Ctrl-C reaches the whole group, so ignore it here.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
