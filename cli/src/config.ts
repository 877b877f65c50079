// Pure: answers <-> the proxy's config.yaml (the standalone target).
//
// Editing keeps what setup does not ask about: listen, admin, dataplane, other pools and their routes, backend
// weights, a channel's `from`/`tls`/HMAC secret. Only the answered pool, its first route, the failover strategy and
// recovery interval, and the notification channels are replaced.
import { DEFAULTS } from '@veloflux/config/defaults';
import { formatDuration } from '@veloflux/config/duration';
import type { ChannelConfig, Config } from '@veloflux/config/types';
import { allAddresses, defaultAnswers } from './answers.ts';
import type { Answers, Backup, Email, Strategy, Webhook, WebhookFormat } from './answers.ts';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const objects = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : []);

function defined(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** The answers as config.yaml (a plain object, snake_case), merged into `existing` when editing. */
export function buildConfig(a: Answers, existing?: Obj): Obj {
  const base: Obj = existing ? structuredClone(existing) : { listen: DEFAULTS.listen, admin: { listen: DEFAULTS.adminListen } };
  const pools = objects(base['pools']);
  const at = pools.findIndex((p) => p['name'] === a.pool);
  const old = at === -1 ? undefined : pools[at];
  const weights = new Map(objects(old?.['backends']).map((b) => [b['address'], b['weight']]));

  const health = {
    path: a.health.path,
    interval: a.health.interval,
    timeout: a.health.timeout,
    expected_status: a.health.expectedStatus,
    unhealthy_threshold: a.health.unhealthyThreshold,
    healthy_threshold: a.health.healthyThreshold,
  };
  const levelOf = new Map<string, number>([...a.primaries.map((p) => [p, 0] as const), ...a.backups.map((b) => [b.address, b.level] as const)]);
  const backends = allAddresses(a).map((address) => {
    const level = levelOf.get(address) ?? 0;
    return defined({
      address,
      weight: weights.get(address),
      // The seed's spelling: `failover: true` for the first backup, failover_level for deeper ones.
      failover: level === 1 ? true : undefined,
      failover_level: level >= 2 ? level : undefined,
      region: a.regions[address],
      health_check: health,
    });
  });
  // A per-pool strategy or recovery interval would hide the answered top-level ones.
  const oldFailover = isObj(old?.['failover']) ? { ...old['failover'] } : undefined;
  if (oldFailover) for (const k of ['strategy', 'recovery_interval', 'delay', 'step_percent', 'step_interval']) delete oldFailover[k];
  const pool = defined({
    ...(old ?? {}),
    name: a.pool,
    algorithm: 'failover',
    backends,
    failover: oldFailover && Object.keys(oldFailover).length > 0 ? oldFailover : undefined,
  });
  if (at === -1) pools.push(pool);
  else pools[at] = pool;

  const route = defined({ host: a.host === '' ? undefined : a.host, path_prefix: a.pathPrefix, load_balancing: { method: 'failover' }, pool: a.pool });
  const routes = objects(base['routes']);
  const r = routes.findIndex((x) => x['pool'] === a.pool);
  if (r === -1) routes.push(route);
  else routes[r] = route;

  const failover: Obj = isObj(base['failover']) ? base['failover'] : {};
  const notification: Obj = isObj(failover['notification']) ? failover['notification'] : {};
  const oldChannels = objects(notification['channels']);
  const oldEmail = oldChannels.find((c) => c['type'] === 'email');
  const oldWebhook = oldChannels.find((c) => c['type'] === 'webhook');
  const channels: Obj[] = [{ type: 'log', level: a.logLevel }];
  if (a.email) {
    channels.push(defined({
      type: 'email',
      smtp_server: a.email.server,
      smtp_port: a.email.port,
      smtp_user: a.email.user === '' ? undefined : a.email.user,
      smtp_password: a.email.password === '' ? undefined : a.email.password,
      from: oldEmail?.['from'],
      recipients: [...a.email.recipients],
      tls: oldEmail?.['tls'],
    }));
  }
  if (a.webhook) channels.push(defined({ type: 'webhook', url: a.webhook.url, format: a.webhook.format, secret: oldWebhook?.['secret'] }));

  return defined({
    listen: base['listen'],
    admin: base['admin'],
    region: base['region'],
    ...base,
    pools,
    routes,
    failover: defined({
      enabled: failover['enabled'] ?? true,
      ...failover,
      strategy: a.strategy,
      recovery_interval: a.recoveryInterval,
      // What the strategy asks (delayed: delay; graceful: the steps); the others stay as they were.
      ...(a.strategy === 'delayed' ? { delay: a.delay } : {}),
      ...(a.strategy === 'graceful' ? { step_percent: a.stepPercent, step_interval: a.stepInterval } : {}),
      notification: { ...notification, enabled: notification['enabled'] ?? true, channels },
    }),
  });
}

/** Answers from a channel list (the proxy's own channel format). */
export function channelAnswers(channels: readonly ChannelConfig[]): Pick<Answers, 'logLevel' | 'email' | 'webhook'> {
  let logLevel = defaultAnswers().logLevel;
  let email: Email | undefined;
  let webhook: Webhook | undefined;
  for (const c of channels) {
    if (c.type === 'log') logLevel = c.level === 'warn' ? 'warning' : c.level;
    if (c.type === 'email' && !email) email = { server: c.smtp_server, port: c.smtp_port, user: c.smtp_user ?? '', password: c.smtp_password ?? '', recipients: c.recipients };
    if (c.type === 'webhook' && !webhook) webhook = { url: c.url, format: c.format as WebhookFormat };
  }
  return { logLevel, email, webhook };
}

/**
 * Answers from a running config, for the prompts' defaults: the pool named `pool`, else the first one.
 * Health-check answers come from the pool's first backend (setup writes the same check on every backend).
 */
export function answersFromConfig(config: Config, output: string, pool?: string): Partial<Answers> {
  const p = config.pools.find((x) => x.name === pool) ?? config.pools[0];
  if (!p) return { target: 'config', output, ...channelAnswers(config.notification.channels) };
  const route = config.routes.find((r) => r.pool === p.name);
  const first = p.backends[0];
  const regions: Record<string, string> = {};
  for (const b of p.backends) if (b.region !== undefined) regions[b.address] = b.region;
  return {
    target: 'config',
    output,
    pool: p.name,
    host: route?.host ?? '',
    pathPrefix: route?.pathPrefix ?? '/',
    primaries: p.backends.filter((b) => b.level === 0).map((b) => b.address),
    backups: p.backends.filter((b) => b.level > 0).map((b): Backup => ({ address: b.address, level: b.level })),
    regions,
    ...(first ? {
      health: {
        path: first.healthCheck.path,
        interval: formatDuration(first.healthCheck.intervalMs),
        timeout: formatDuration(first.healthCheck.timeoutMs),
        expectedStatus: first.healthCheck.expectedStatus,
        unhealthyThreshold: first.healthCheck.unhealthyThreshold,
        healthyThreshold: first.healthCheck.healthyThreshold,
      },
    } : {}),
    strategy: p.policy.strategy as Strategy,
    recoveryInterval: formatDuration(p.policy.recoveryIntervalMs),
    delay: formatDuration(p.policy.delayMs),
    stepPercent: p.policy.stepPercent,
    stepInterval: formatDuration(p.policy.stepIntervalMs),
    ...channelAnswers(config.notification.channels),
  };
}
