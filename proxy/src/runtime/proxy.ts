// One proxy in one process: the control side (controller, admin API, metrics) and the data plane together.
import type { Config } from '@veloflux/config/types';
import { DataPlane } from '../dataplane/server.ts';
import type { DataPlaneHooks } from '../dataplane/server.ts';
import { Registry } from 'prom-client';
import { TrafficMetrics } from '../metrics/traffic.ts';
import { startControlSide } from './control.ts';
import type { Address, ControlSide } from './control.ts';
import type { Notifier } from './notify-wiring.ts';
import type { Controller } from '../control/controller.ts';
import type { Clock } from '../control/clock.ts';
import type { Logger } from './log.ts';
import { createAccessLog } from './access-log.ts';

export type { Address };

export interface RunningProxy {
  readonly data: Address;
  /** The TLS listener (SPEC 8), when configured. */
  readonly tls: Address | undefined;
  readonly admin: Address;
  readonly controller: Controller;
  /** Failover notifications; the admin `test` endpoint calls notifier.drill(). */
  readonly notifier: Notifier;
  /** Stops accepting, lets in-flight requests finish (at most `graceMs`), closes everything. */
  stop(graceMs?: number): Promise<void>;
  /** Opens the access log file again (SIGHUP, after logrotate moved it); in every data-plane process. */
  reopenLogs(): void;
}

export interface StartOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  /** This proxy's id (default: env POD_NAME, else the host name). */
  readonly proxyId?: string;
  /** Extra subscriber to request outcomes (tests). */
  readonly hooks?: Partial<DataPlaneHooks>;
}

export const DEFAULT_GRACE_MS = 30_000;

export async function startProxy(config: Config, version: string, opts: StartOptions): Promise<RunningProxy> {
  const traffic = new TrafficMetrics();
  traffic.prepare(config);
  const registry = new Registry();
  for (const f of traffic.families) registry.registerMetric(f as never);
  const control = startControlSide(config, version, {
    log: opts.log,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.proxyId ? { proxyId: opts.proxyId } : {}),
    traffic: { text: () => registry.metrics(), json: () => traffic.json() },
  });
  const { controller } = control;
  const extra = opts.hooks;
  const accessLog = createAccessLog(opts.log, () => traffic.accessLogDrop());
  accessLog.configure(config.accessLog);
  const dp = new DataPlane({
    config,
    routing: controller.routing,
    hooks: {
      passive: (target, error) => {
        traffic.passiveFailure(target.backend.pool, target);
        controller.passive(target.backend.id, error);
        extra?.passive?.(target, error);
      },
      outlier: (backendId, reason) => controller.outlier(backendId, reason),
      hedged: (pool) => { traffic.hedge(pool); extra?.hedged?.(pool); },
      done: (pool, target, status, attempts, startedAt) => {
        traffic.done(pool, target, status, attempts, startedAt);
        extra?.done?.(pool, target, status, attempts, startedAt);
      },
      grpc: (pool, status) => {
        traffic.grpcStatus(pool, status);
        extra?.grpc?.(pool, status);
      },
      access: (req, res, pool, target, status, attempts, startedAt, bytes, hedged) => accessLog.record(req, res, pool, target, status, attempts, startedAt, bytes, hedged),
      ...(extra?.upgraded ? { upgraded: extra.upgraded } : {}),
      tlsReload: (certFile, result) => traffic.tlsReload(certFile, result),
    },
    log: opts.log,
  });
  let current = config;
  controller.on('routing', (routing) => {
    if (controller.config !== current) { current = controller.config; traffic.prepare(current); accessLog.configure(current.accessLog); }
    dp.update(controller.config, routing);
  });
  return run(control, {
    listen: () => dp.listen(config.listen.host, config.listen.port),
    tlsAddress: () => dp.tlsAddress,
    abort: async () => { await dp.close(0); await accessLog.close(0); },
    stop: async (graceMs) => { await dp.close(graceMs); await accessLog.close(); },
    reopenLogs: () => accessLog.reopen(),
  });
}

/** The data plane as `run` drives it: in this process (proxy.ts) or in worker processes (cluster.ts). */
export interface DataSide {
  /** Starts serving; the address of the first listener. */
  listen(): Promise<Address>;
  /** After listen(): the TLS listener's address, when there is one. */
  tlsAddress(): Address | undefined;
  /** After a failed start: stop at once. */
  abort(): Promise<void>;
  /** Stop accepting, let in-flight requests finish (at most `graceMs`). */
  stop(graceMs: number): Promise<void>;
  /** The access log file, opened again (rotation). */
  reopenLogs(): void;
}

/**
 * Listens (admin API first, then the data plane), closes both when either fails, starts the controller; the
 * proxy stops data plane first, control side last (the admin API answers until traffic has drained).
 */
export async function run(control: ControlSide, dataSide: DataSide): Promise<RunningProxy> {
  let data: Address;
  let admin: Address;
  try {
    admin = await control.listen();
    data = await dataSide.listen();
  } catch (err) {
    await dataSide.abort();
    await control.close();
    throw err;
  }
  control.controller.start();
  return {
    data,
    tls: dataSide.tlsAddress(),
    admin,
    controller: control.controller,
    notifier: control.notifier,
    async stop(graceMs = DEFAULT_GRACE_MS) {
      await dataSide.stop(graceMs);
      await control.close();
    },
    reopenLogs: () => dataSide.reopenLogs(),
  };
}
