// Pure: every FailoverPool that selects a proxy pod -> that pod's config.yaml (the proxy's own format, SPEC 1).
// No I/O and no clock: the caller passes the objects from its caches, and `now` for override expiry.
//
// What the operator owns in a proxy's config: pools, routes and the failover block. What the pod owns:
// listen, admin, region and dataplane, which need a process restart to change (the proxy answers 409 to a
// config that changes them); they come in as `base`, copied from what the proxy reports it runs.
//
// A pool is left out of a pod's config, and refused with a reason, when:
//   Conflict       it claims a host + path prefix that an earlier FailoverPool (creation time, then name)
//                  selecting the same pod already claims;
//   SecretMissing  a Secret (or key) it references does not exist;
//   InvalidConfig  the proxy would refuse it (checked with the proxy's own loader), e.g. a `service`
//                  backend whose Service has no endpoint at all, leaving level 0 empty.
//
// `service` backends expand to the Service's ready endpoints; when none is ready, to all its endpoints, so
// the level stays and the proxy's health checks fail it over.
import { stringify } from 'yaml';
import { loadConfigText } from '@veloflux/config/load';
import type { Located } from '@veloflux/config/load';
import type { BackendSpec, ChannelSpec, FailoverPool, LabelSelector, OverrideMode } from './types.ts';

/** The EndpointSlice fields render reads (discovery.k8s.io/v1). */
export interface EndpointSliceLike {
  metadata?: { labels?: Record<string, string> };
  addressType?: string;
  ports?: { name?: string; port?: number }[] | null;
  endpoints?: { addresses: string[]; conditions?: { ready?: boolean | null } }[] | null;
}

/** Decoded Secret data (strings), by Secret name, of the pod's namespace. */
export type Secrets = ReadonlyMap<string, Readonly<Record<string, string>>>;

/** Process-level keys the pod runs with (snake_case, as in config.yaml). */
export interface ProxyBase {
  listen?: string;
  admin?: { listen?: string; token_file?: string };
  region?: string;
  dataplane?: Record<string, unknown>;
}

export type RefusalReason = 'Conflict' | 'SecretMissing' | 'InvalidConfig';

export interface Refusal {
  readonly reason: RefusalReason;
  readonly message: string;
}

export interface RenderInput {
  readonly labels: Readonly<Record<string, string>>;
  /** Every FailoverPool in the pod's namespace; render picks those whose proxySelector matches. */
  readonly pools: readonly FailoverPool[];
  readonly endpointSlices: readonly EndpointSliceLike[];
  readonly secrets: Secrets;
  readonly base: ProxyBase;
  /** Unix milliseconds, for override expiry. */
  readonly now: number;
}

export interface Rendered {
  /** FailoverPools rendered into the config, in config order. */
  readonly pools: readonly string[];
  /** FailoverPools that select the pod but were left out, and why. */
  readonly refused: ReadonlyMap<string, Refusal>;
  /** The config.yaml text (with no pools when none selects the pod or all were refused). */
  readonly text: string;
  /** What the proxy will report as its version after applying `text` (loadConfigText(text).version). */
  readonly version: string;
}

export function selects(selector: LabelSelector | undefined, labels: Readonly<Record<string, string>>): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const values = e.values ?? [];
    if (e.operator === 'In' && !(has && values.includes(value as string))) return false;
    if (e.operator === 'NotIn' && has && values.includes(value as string)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

/** Creation time, then name: the earlier pool wins a conflict, the same way on every pod. */
export function byAge(a: FailoverPool, b: FailoverPool): number {
  const ta = new Date(a.metadata.creationTimestamp ?? 0).getTime();
  const tb = new Date(b.metadata.creationTimestamp ?? 0).getTime();
  return ta - tb || a.metadata.name.localeCompare(b.metadata.name);
}

/** The override in force at `now`: spec.override.mode until expiresAt, then auto. */
export function effectiveOverride(pool: FailoverPool, now: number): { mode: OverrideMode; expired: boolean; reason: string | undefined } {
  const o = pool.spec.override;
  const mode = o?.mode ?? 'auto';
  if (mode === 'auto') return { mode, expired: false, reason: undefined };
  const expiresAt = o?.expiresAt ? Date.parse(o.expiresAt) : Number.POSITIVE_INFINITY;
  if (now >= expiresAt) return { mode: 'auto', expired: true, reason: undefined };
  return { mode, expired: false, reason: o?.reason };
}

/** `pools[].override` in config.yaml; only a real override is written, so plain configs stay plain. */
export function renderOverride(pool: FailoverPool, now: number): { mode: OverrideMode; reason?: string } | undefined {
  const o = effectiveOverride(pool, now);
  return o.mode === 'auto' ? undefined : o.reason === undefined ? { mode: o.mode } : { mode: o.mode, reason: o.reason };
}

function routeKeys(pool: FailoverPool): string[] {
  return pool.spec.routes.flatMap((r) => {
    const prefix = r.pathPrefix ?? '/';
    const hosts = r.hosts?.length ? r.hosts.map((h) => h.toLowerCase()) : ['*'];
    return hosts.map((h) => `${h} ${prefix}`);
  });
}

class Missing extends Error {}

function secretValue(secrets: Secrets, name: string, key: string): string {
  const value = secrets.get(name)?.[key];
  if (value === undefined) throw new Missing(secrets.has(name) ? `Secret "${name}" has no key "${key}"` : `Secret "${name}" not found`);
  return value;
}

const hostPort = (ip: string, port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** `service` backends: ready endpoints of the Service's EndpointSlices, each a backend with the same settings. */
function addresses(b: BackendSpec, slices: readonly EndpointSliceLike[]): string[] {
  if (b.address !== undefined) return [b.address];
  const svc = b.service;
  if (!svc) return [];
  const ready = new Set<string>();
  const all = new Set<string>();
  for (const slice of slices) {
    if (slice.metadata?.labels?.['kubernetes.io/service-name'] !== svc.name) continue;
    // IPv4, IPv6 and FQDN slices alike: an FQDN endpoint becomes a host-name backend the proxy resolves.
    const port = (slice.ports ?? []).find((p) => (typeof svc.port === 'number' ? p.port === svc.port : p.name === svc.port))?.port;
    if (port === undefined) continue;
    for (const ep of slice.endpoints ?? []) {
      for (const ip of ep.addresses) {
        all.add(hostPort(ip, port));
        if (ep.conditions?.ready !== false) ready.add(hostPort(ip, port)); // unset means ready (EndpointSlice API)
      }
    }
  }
  // None ready: keep them all rather than drop the level, so the proxy's own health checks find them down
  // and fail the pool over (a level that vanished from the config would not count as a failover).
  return [...(ready.size > 0 ? ready : all)].sort();
}

const HC_KEYS: Record<string, string> = { type: 'type', service: 'service', path: 'path', interval: 'interval', timeout: 'timeout', expectedStatus: 'expected_status', unhealthyThreshold: 'unhealthy_threshold', healthyThreshold: 'healthy_threshold' };

function snakeHealthCheck(hc: BackendSpec['healthCheck']): Record<string, unknown> | undefined {
  if (!hc) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(hc)) if (v !== undefined && HC_KEYS[k]) out[HC_KEYS[k] as string] = v;
  return out;
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** camelCase spec block -> config.yaml keys: minDwell -> min_dwell, consecutive5xx -> consecutive_5xx. */
function snake(block: object | undefined): Record<string, unknown> | undefined {
  if (block === undefined) return undefined;
  // An underscore before each capital, and before a digit that follows a lower-case letter.
  const key = (k: string): string => k.replace(/[A-Z]|(?<=[a-z])[0-9]/g, (c) => `_${c.toLowerCase()}`);
  return defined(Object.fromEntries(Object.entries(block).map(([k, v]) => [key(k), v])));
}

/** `pools[].override`, with spec.failback.approve.approvedAt as its failback_approval token (SPEC 10). */
function overrideWithApproval(pool: FailoverPool, now: number): Record<string, unknown> | undefined {
  const o = renderOverride(pool, now);
  const approval = pool.spec.failback?.approve?.approvedAt;
  return approval === undefined ? o : { ...(o ?? { mode: 'auto' }), failback_approval: approval };
}

function renderPool(pool: FailoverPool, input: RenderInput): { pool: Record<string, unknown>; routes: Record<string, unknown>[]; channels: Record<string, unknown>[] } {
  const s = pool.spec;
  const name = pool.metadata.name;
  const backends = s.backends.flatMap((b) => addresses(b, input.endpointSlices).map((address) => defined({
    address,
    weight: b.weight,
    failover_level: b.failoverLevel,
    region: b.region,
    health_check: snakeHealthCheck(b.healthCheck),
  })));
  const rendered = defined({
    name,
    protocol: s.protocol,
    tls: snake(s.tls),
    backends,
    failover: defined({
      enabled: s.automaticFailover,
      strategy: s.strategy,
      check_interval: s.checkInterval,
      recovery_interval: s.recoveryInterval,
      delay: s.delay,
      step_percent: s.stepPercent,
      step_interval: s.stepInterval,
      hold_down: snake(s.holdDown),
      ramp_gate: snake(s.rampGate),
      failback: s.failback?.mode,
    }),
    outlier_detection: snake(s.outlierDetection),
    retry: snake(s.retry),
    // Only a real override is written, so configs without one stay valid for proxies that predate it.
    override: overrideWithApproval(pool, input.now),
    // SPEC 9: shared is the Kubernetes default (the proxy's own default, standalone, is local).
    consensus: { mode: s.consensus?.mode ?? 'shared' },
  });
  const routes = s.routes.flatMap((r) => {
    const prefix = r.pathPrefix ?? '/';
    return r.hosts?.length ? r.hosts.map((host) => ({ host, path_prefix: prefix, pool: name })) : [{ path_prefix: prefix, pool: name }];
  });
  const channels = s.notifications?.enabled === false ? [] : (s.notifications?.channels ?? []).map((c) => renderChannel(c, input.secrets));
  return { pool: rendered, routes, channels };
}

function renderChannel(c: ChannelSpec, secrets: Secrets): Record<string, unknown> {
  switch (c.type) {
    case 'log':
      return defined({ type: 'log', level: c.level });
    case 'email': {
      const cred = c.credentialsSecretRef;
      return defined({
        type: 'email',
        smtp_server: c.smtpServer,
        smtp_port: c.smtpPort,
        smtp_user: cred ? secretValue(secrets, cred.name, cred.usernameKey ?? 'username') : undefined,
        smtp_password: cred ? secretValue(secrets, cred.name, cred.passwordKey ?? 'password') : undefined,
        from: c.from,
        recipients: c.recipients,
        tls: c.tls,
        timeout: c.timeout,
      });
    }
    case 'webhook':
      return defined({
        type: 'webhook',
        url: c.urlSecretRef ? secretValue(secrets, c.urlSecretRef.name, c.urlSecretRef.key ?? 'url') : undefined,
        format: c.format,
        secret: c.hmacSecretRef ? secretValue(secrets, c.hmacSecretRef.name, c.hmacSecretRef.key ?? 'secret') : undefined,
        timeout: c.timeout,
      });
  }
}

function document(base: ProxyBase, pools: unknown[], routes: unknown[], channels: unknown[]): Record<string, unknown> {
  return defined({
    listen: base.listen,
    admin: base.admin,
    region: base.region,
    dataplane: base.dataplane,
    pools,
    routes,
    failover: channels.length ? { notification: { channels } } : undefined,
  });
}

const issueText = (issues: readonly Located[]): string => issues.map((i) => `${i.path}: ${i.message}`).join('; ');

export function render(input: RenderInput): Rendered {
  const selecting = input.pools.filter((p) => selects(p.spec.proxySelector, input.labels)).sort(byAge);
  const refused = new Map<string, Refusal>();
  const claimed = new Map<string, string>();
  const pools: Record<string, unknown>[] = [];
  const routes: Record<string, unknown>[] = [];
  const channels = new Map<string, Record<string, unknown>>();
  const names: string[] = [];

  for (const pool of selecting) {
    const name = pool.metadata.name;
    const clash = routeKeys(pool).find((k) => claimed.has(k));
    if (clash) {
      const [host, prefix] = clash.split(' ');
      refused.set(name, { reason: 'Conflict', message: `host ${host === '*' ? '(any)' : host} with path prefix ${prefix} is already routed to FailoverPool "${claimed.get(clash)}"` });
      continue;
    }
    let part;
    try {
      part = renderPool(pool, input);
    } catch (err) {
      if (!(err instanceof Missing)) throw err;
      refused.set(name, { reason: 'SecretMissing', message: err.message });
      continue;
    }
    // Checked alone first, so one bad pool does not take the others off the pod.
    const alone = loadConfigText(stringify(document(input.base, [part.pool], part.routes, part.channels)));
    if (!alone.ok) {
      refused.set(name, { reason: 'InvalidConfig', message: `the proxy would refuse this pool: ${issueText(alone.issues)}` });
      continue;
    }
    for (const k of routeKeys(pool)) claimed.set(k, name);
    pools.push(part.pool);
    routes.push(...part.routes);
    for (const c of part.channels) channels.set(JSON.stringify(c), c);
    names.push(name);
  }

  // No pool left is a valid config too: the proxy then answers 404 until pools come back.
  const text = stringify(document(input.base, pools, routes, [...channels.values()]), { lineWidth: 0 });
  const loaded = loadConfigText(text);
  if (!loaded.ok) throw new Error(`rendered config is invalid although each pool was valid alone: ${issueText(loaded.issues)}`);
  return { pools: names, refused, text, version: loaded.version };
}
