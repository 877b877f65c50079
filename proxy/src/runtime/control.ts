// The control side of a proxy, the same in one process and in cluster mode: controller (probes + decisions),
// control metrics, drills, config updates and the admin API. The data plane(s) plug in through `traffic`
// (their metrics) and `beforeApply` (cluster mode sends a new config to the workers first).
import { hostname } from 'node:os';
import type { FastifyInstance } from 'fastify';
import type { MetricObjectWithValues, MetricValueWithName } from 'prom-client';
import { createAdmin, listenAdmin } from '../admin/server.ts';
import type { ApplyResult } from '../admin/server.ts';
import { formatIssues, loadConfigText } from '@veloflux/config/load';
import type { Config } from '@veloflux/config/types';
import { ERRORS } from '../errors.ts';
import { Prober } from '../health/prober.ts';
import { ControlMetrics } from '../metrics/control.ts';
import { processRegistry } from '../metrics/process.ts';
import { Controller } from '../control/controller.ts';
import { systemClock } from '../control/clock.ts';
import type { Clock } from '../control/clock.ts';
import { Drills } from '../control/drill.ts';
import type { DrillNotifier } from '../control/drill.ts';
import { logEvent } from './log.ts';
import { attachNotifier } from './notify-wiring.ts';
import type { Notifier } from './notify-wiring.ts';
import type { Logger } from './log.ts';
import { TokenSource } from './token.ts';
import { PROXY_VERSION } from './version.ts';
import { restartRequired } from '@veloflux/config/restart';
import { configView, configYamlView, restoreRedacted } from './view.ts';

export type MetricsJson = MetricObjectWithValues<MetricValueWithName<string>>[];

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface TrafficSource {
  text(): Promise<string>;
  json(): Promise<MetricsJson>;
}

export interface ControlOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  readonly traffic: TrafficSource;
  readonly beforeApply?: (config: Config, version: string) => void;
  /** This proxy's id; default proxyId(). */
  readonly proxyId?: string;
}

export interface ControlSide {
  readonly controller: Controller;
  /** Failover notifications; drills go through it too. */
  readonly notifier: Notifier;
  readonly metrics: ControlMetrics;
  readonly admin: FastifyInstance;
  readonly prober: Prober;
  listen(): Promise<Address>;
  close(): Promise<void>;
}


/** SPEC 2, 6, 9: the proxy id is env POD_NAME (the chart sets it from the downward API), else the host name. */
export function proxyId(env: NodeJS.ProcessEnv = process.env): string {
  const pod = env.POD_NAME?.trim();
  return pod ? pod : hostname();
}

/** SPEC 8: skip-verify is explicit, and said once per pool each time a config holding it is loaded. */
function warnInsecureTls(log: ControlOptions['log'], config: Config): void {
  for (const p of config.pools) {
    if (p.tls?.insecureSkipVerify) log.warn({ pool: p.name, protocol: p.protocol }, 'backend TLS certificates are not verified for this pool (tls.insecure_skip_verify: true)');
  }
}

export function startControlSide(config: Config, version: string, opts: ControlOptions): ControlSide {
  const { log } = opts;
  const token = new TokenSource(config, { log });
  const id = opts.proxyId ?? proxyId();
  const prober = new Prober({ proxyId: id, userAgent: `veloflux-health-check/${PROXY_VERSION}` });
  const clock = opts.clock ?? systemClock;
  const controller = new Controller(config, version, { probe: (b) => prober.probe(b), clock, proxyId: id, traffic: () => opts.traffic.json() });
  controller.on('event', (e) => logEvent(log, e));
  warnInsecureTls(log, config);
  const metrics = new ControlMetrics(() => controller, () => clock.now());
  const notifier = attachNotifier(controller, config, log, { counter: { delivered: (channel, ok) => metrics.notification(channel, ok) }, clock });
  const drills = new Drills({ controller: () => controller, prober, traffic: () => opts.traffic.json(), notifier: (): DrillNotifier => notifier, clock });

  const applyConfig = async (text: string): Promise<ApplyResult> => {
    const restored = restoreRedacted(text, controller.config);
    if (!restored.ok) {
      metrics.reload('invalid');
      return { ok: false, error: ERRORS.CONFIG_INVALID, message: `the config has ${restored.issues.length} problem${restored.issues.length === 1 ? '' : 's'}; the running config (version ${controller.version}) keeps serving:\n${formatIssues(restored.issues)}`, issues: restored.issues };
    }
    const loaded = loadConfigText(restored.text);
    if (!loaded.ok) {
      metrics.reload('invalid');
      log.warn({ problems: loaded.issues.length, running: controller.version }, 'config rejected: invalid; the running config keeps serving');
      return { ok: false, error: ERRORS.CONFIG_INVALID, message: `the config has ${loaded.issues.length} problem${loaded.issues.length === 1 ? '' : 's'}; the running config (version ${controller.version}) keeps serving:\n${formatIssues(loaded.issues)}`, issues: loaded.issues };
    }
    if (loaded.version === controller.version) {
      metrics.reload('unchanged');
      return { ok: true, version: loaded.version, changed: false };
    }
    const fixed = restartRequired(controller.config, loaded.config);
    if (fixed.length > 0) {
      metrics.reload('rejected');
      return { ok: false, error: ERRORS.CONFIG_RESTART_REQUIRED, message: `the new config changes ${fixed.join(', ')}, which only a restart can change; nothing was applied (running version ${controller.version})` };
    }
    opts.beforeApply?.(loaded.config, loaded.version);
    controller.apply(loaded.config, loaded.version);
    warnInsecureTls(log, loaded.config);
    notifier.configure(loaded.config.notification);
    metrics.reload('success');
    return { ok: true, version: loaded.version, changed: true };
  };

  const admin = createAdmin({
    controller: () => controller,
    token: () => token.current(),
    applyConfig,
    configView: () => configView(controller.config),
    configYaml: () => configYamlView(controller.config, controller.version),
    metrics: async () => {
      const [control, traffic, proc] = await Promise.all([metrics.registry.metrics(), opts.traffic.text(), processRegistry(PROXY_VERSION).metrics()]);
      return { contentType: metrics.registry.contentType, body: `${control}\n${traffic}\n${proc}` };
    },
    drill: (pool, o) => drills.run(pool, o),
    onInternalError: (err) => log.error({ err: err.message, stack: err.stack }, 'admin API internal error'),
  });

  return {
    controller,
    notifier,
    metrics,
    admin,
    prober,
    listen: () => listenAdmin(admin, config.admin.listen.host, config.admin.listen.port),
    async close() {
      drills.close();
      token.close();
      controller.stop();
      await admin.close();
      await notifier.close();
      await prober.close();
    },
  };
}
