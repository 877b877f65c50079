// Wiring of one proxy in one process: controller (probes + decisions), data plane, admin API.
import { createAdmin, listenAdmin } from '../admin/server.ts';
import type { Config } from '../config/types.ts';
import { DataPlane } from '../dataplane/server.ts';
import type { DataPlaneHooks } from '../dataplane/server.ts';
import { Prober } from '../health/prober.ts';
import { Controller } from './controller.ts';
import type { Clock } from './controller.ts';
import { logEvent } from './log.ts';
import type { Logger } from './log.ts';

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface RunningProxy {
  readonly data: Address;
  readonly admin: Address;
  readonly controller: Controller;
  /** Stops accepting, lets in-flight requests finish (at most `graceMs`), closes everything. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  /** Extra subscriber to request outcomes (tests, metrics). */
  readonly hooks?: Partial<DataPlaneHooks>;
}

export const DEFAULT_GRACE_MS = 30_000;

export async function startControl(config: Config, version: string, opts: StartOptions): Promise<{ controller: Controller; prober: Prober }> {
  const prober = new Prober();
  const controller = new Controller(config, version, { probe: (b) => prober.probe(b), ...(opts.clock ? { clock: opts.clock } : {}) });
  controller.on('event', (e) => logEvent(opts.log, e));
  return { controller, prober };
}

export async function startProxy(config: Config, version: string, opts: StartOptions): Promise<RunningProxy> {
  const { controller, prober } = await startControl(config, version, opts);
  const extra = opts.hooks;
  const dp = new DataPlane({
    config,
    routing: controller.routing,
    hooks: {
      passive: (target, error) => {
        controller.passive(target.backend.id, error);
        extra?.passive?.(target, error);
      },
      done: extra?.done ?? (() => {}),
      ...(extra?.upgraded ? { upgraded: extra.upgraded } : {}),
    },
  });
  controller.on('routing', (routing) => dp.update(controller.config, routing));
  const admin = createAdmin(() => controller);
  let data: Address;
  let adminAddress: Address;
  try {
    adminAddress = await listenAdmin(admin, config.admin.listen.host, config.admin.listen.port);
    data = await dp.listen(config.listen.host, config.listen.port);
  } catch (err) {
    await admin.close();
    await dp.close(0);
    await prober.close();
    throw err;
  }
  controller.start();
  return {
    data,
    admin: adminAddress,
    controller,
    async stop(graceMs = DEFAULT_GRACE_MS) {
      controller.stop();
      await dp.close(graceMs);
      await admin.close();
      await prober.close();
    },
  };
}
