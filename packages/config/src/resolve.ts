// Cross-field rules and computed defaults: raw (schema-checked) document -> Config. Pure.
import { parseListen, parseUpstream } from './address.ts';
import { DEFAULTS } from './defaults.ts';
import type { Issue } from './dsl.ts';
import type { RawConfig, RawPool } from './schema.ts';
import type { BackendConfig, Config, FailoverPolicy, HoldDownPolicy, PoolConfig, RampGatePolicy, RouteConfig, TlsConfig, UpstreamTls } from './types.ts';

type RawHoldDown = RawConfig['failover']['hold_down'];
type RawRampGate = RawConfig['failover']['ramp_gate'];

function holdDown(h: RawHoldDown): HoldDownPolicy | undefined {
  return h === undefined ? undefined : { minDwellMs: h.min_dwell, flapThreshold: h.flap_threshold, flapWindowMs: h.flap_window, maxHoldMs: h.max_hold };
}

function rampGate(g: RawRampGate): RampGatePolicy | undefined {
  return g === undefined ? undefined : { maxErrorPercent: g.max_error_percent, maxP99Ms: g.max_p99 };
}

export function resolve(raw: RawConfig, issues: Issue[]): Config | undefined {
  const before = issues.length;
  const problem = (path: string, message: string): void => { issues.push({ path, message }); };

  const listen = parseListen(raw.listen);
  if (typeof listen === 'string') problem('listen', listen);
  const adminListen = parseListen(raw.admin.listen);
  if (typeof adminListen === 'string') problem('admin.listen', adminListen);
  let tls: TlsConfig | undefined;
  if (raw.tls !== undefined) {
    const t = raw.tls;
    const tlsListen = parseListen(t.listen);
    if (typeof tlsListen === 'string') problem('tls.listen', tlsListen);
    else if (typeof listen !== 'string' && tlsListen.port === listen.port && tlsListen.port !== 0 && (tlsListen.host === listen.host || tlsListen.host === '' || listen.host === '')) problem('tls.listen', `must not be the cleartext listen address (${t.listen})`);
    const alpnSeen = new Set<string>();
    t.alpn.forEach((a, i) => { if (alpnSeen.has(a)) problem(`tls.alpn[${i}]`, `"${a}" is listed twice`); alpnSeen.add(a); });
    const hostOwner = new Map<string, number>();
    t.certificates.forEach((c, i) => (c.hosts ?? []).forEach((h, j) => {
      const lower = h.toLowerCase();
      const other = hostOwner.get(lower);
      if (other !== undefined && other !== i) problem(`tls.certificates[${i}].hosts[${j}]`, `"${h}" is also a host of tls.certificates[${other}]`);
      hostOwner.set(lower, i);
    }));
    if (typeof tlsListen !== 'string') {
      tls = {
        listen: tlsListen,
        minVersion: t.min_version,
        alpn: t.alpn,
        certificates: t.certificates.map((c) => ({ certFile: c.cert_file, keyFile: c.key_file, hosts: (c.hosts ?? []).map((h) => h.toLowerCase()) })),
      };
    }
  }

  const top: FailoverPolicy = {
    enabled: raw.failover.enabled,
    strategy: raw.failover.strategy,
    checkIntervalMs: raw.failover.check_interval,
    recoveryIntervalMs: raw.failover.recovery_interval,
    delayMs: raw.failover.delay,
    stepPercent: raw.failover.step_percent,
    stepIntervalMs: raw.failover.step_interval,
    holdDown: holdDown(raw.failover.hold_down),
    rampGate: rampGate(raw.failover.ramp_gate),
    failback: raw.failover.failback,
  };

  const names = new Map<string, number>();
  const pools = raw.pools.map((pool, i) => {
    const seen = names.get(pool.name);
    if (seen !== undefined) problem(`pools[${i}].name`, `duplicate pool name "${pool.name}" (also pools[${seen}])`);
    else names.set(pool.name, i);
    return resolvePool(pool, `pools[${i}]`, top, problem);
  });

  const claimed = new Map<string, number>();
  const routes: RouteConfig[] = raw.routes.map((r, i) => {
    if (!names.has(r.pool)) {
      const known = [...names.keys()].map((n) => `"${n}"`).join(', ');
      problem(`routes[${i}].pool`, `names no pool: "${r.pool}" (pools: ${known})`);
    }
    const host = r.host?.toLowerCase();
    const key = `${host ?? '*'} ${r.path_prefix}`;
    const other = claimed.get(key);
    if (other !== undefined) problem(`routes[${i}]`, `same host and path_prefix as routes[${other}] (${host ?? 'any host'} ${r.path_prefix})`);
    else claimed.set(key, i);
    return { host, pathPrefix: r.path_prefix, pool: r.pool };
  });

  if (issues.length > before || typeof listen === 'string' || typeof adminListen === 'string') return undefined;
  return {
    listen,
    tls,
    drainTimeoutMs: raw.failover.drain_timeout,
    admin: { listen: adminListen, tokenFile: raw.admin.token_file },
    region: raw.region,
    bootstrap: raw.bootstrap,
    pools: pools as PoolConfig[],
    routes,
    notification: { enabled: raw.failover.notification.enabled, channels: raw.failover.notification.channels },
    dataplane: {
      workers: raw.dataplane.workers,
      connectTimeoutMs: raw.dataplane.connect_timeout,
      headerTimeoutMs: raw.dataplane.header_timeout,
      idleTimeoutMs: raw.dataplane.idle_timeout,
      keepAliveTimeoutMs: raw.dataplane.keepalive_timeout,
      clientHeaderTimeoutMs: raw.dataplane.client_header_timeout,
      maxAttempts: raw.dataplane.max_attempts,
      retryBudgetPercent: raw.dataplane.retry_budget_percent,
      youngGenerationMb: raw.dataplane.young_generation_mb,
    },
    accessLog: { enabled: raw.access_log.enabled, format: raw.access_log.format, path: raw.access_log.path, sample: raw.access_log.sample },
  };
}

function resolvePool(pool: RawPool, path: string, top: FailoverPolicy, problem: (path: string, message: string) => void): PoolConfig {
  const o = pool.failover;
  const policy: FailoverPolicy = {
    enabled: pool.override.mode === 'inactive' ? false : (o.enabled ?? top.enabled),
    strategy: o.strategy ?? top.strategy,
    checkIntervalMs: o.check_interval ?? top.checkIntervalMs,
    recoveryIntervalMs: o.recovery_interval ?? top.recoveryIntervalMs,
    delayMs: o.delay ?? top.delayMs,
    stepPercent: o.step_percent ?? top.stepPercent,
    stepIntervalMs: o.step_interval ?? top.stepIntervalMs,
    holdDown: o.hold_down === undefined ? top.holdDown : holdDown(o.hold_down),
    rampGate: o.ramp_gate === undefined ? top.rampGate : rampGate(o.ramp_gate),
    failback: o.failback ?? top.failback,
  };

  const protocol = pool.protocol;
  const tls: UpstreamTls | undefined = pool.tls === undefined ? undefined
    : { caFile: pool.tls.ca_file, serverName: pool.tls.server_name, insecureSkipVerify: pool.tls.insecure_skip_verify };
  if (tls !== undefined && tls.insecureSkipVerify && tls.caFile !== undefined) {
    problem(`${path}.tls.ca_file`, 'is not used with insecure_skip_verify: true (nothing is verified); set one or the other');
  }
  let anySecure = false;

  const addresses = new Map<string, number>();
  const backends: BackendConfig[] = [];
  pool.backends.forEach((b, j) => {
    const at = `${path}.backends[${j}]`;
    const upstream = parseUpstream(b.address);
    if (typeof upstream === 'string') { problem(`${at}.address`, upstream); return; }
    if (protocol === 'h2c' && upstream.tls) {
      problem(`${at}.address`, `h2c is HTTP/2 without TLS, but "${b.address}" is an https:// address (use protocol h2 for HTTP/2 over TLS)`);
    }
    const secure = upstream.tls || protocol === 'h2';
    anySecure ||= secure;
    const twin = addresses.get(upstream.origin);
    if (twin !== undefined) problem(`${at}.address`, `duplicate backend ${b.address} (also ${path}.backends[${twin}])`);
    addresses.set(upstream.origin, j);

    let level = b.failover_level ?? (b.failover === true ? 1 : 0);
    if (b.failover !== undefined && b.failover_level !== undefined && b.failover !== (b.failover_level > 0)) {
      problem(`${at}.failover`, `failover: ${b.failover} contradicts failover_level: ${b.failover_level} (failover: true means a level >= 1)`);
      level = b.failover_level;
    }

    const hc = b.health_check;
    const type = hc.type;
    if (type !== 'http' && hc.path !== undefined) problem(`${at}.health_check.path`, `is only for type http, but the type is ${type}`);
    if (type !== 'http' && hc.expected_status !== undefined) problem(`${at}.health_check.expected_status`, `is only for type http, but the type is ${type}`);
    if (type !== 'grpc' && hc.service !== undefined) problem(`${at}.health_check.service`, `is only for type grpc, but the type is ${type}`);
    if (type === 'grpc' && protocol === 'http1') {
      problem(`${at}.health_check.type`, `grpc needs HTTP/2 to the backend, but ${path}.protocol is http1 (set protocol h2c, h2 or auto)`);
    }
    const intervalMs = hc.interval ?? policy.checkIntervalMs;
    const timeoutMs = hc.timeout ?? Math.min(DEFAULTS.healthCheck.timeoutMs, Math.floor(intervalMs / 2));
    if (timeoutMs >= intervalMs) {
      problem(`${at}.health_check.timeout`, `must be less than the interval (${intervalMs}ms), got ${timeoutMs}ms`);
    }
    backends.push({
      id: `${pool.name}/${b.address}`,
      pool: pool.name,
      address: b.address,
      upstream,
      transport: { protocol, secure, tls },
      weight: b.weight,
      level,
      region: b.region,
      healthCheck: {
        type,
        path: hc.path ?? DEFAULTS.healthCheck.path,
        service: hc.service ?? '',
        intervalMs,
        timeoutMs: Math.max(1, timeoutMs),
        expectedStatus: hc.expected_status ?? DEFAULTS.healthCheck.expectedStatus,
        unhealthyThreshold: hc.unhealthy_threshold,
        healthyThreshold: hc.healthy_threshold,
      },
    });
  });

  if (tls !== undefined && backends.length === pool.backends.length && !anySecure) {
    problem(`${path}.tls`, 'applies to https:// backends and protocol h2, but this pool has neither (its backends are cleartext)');
  }

  const levels = [...new Set(backends.map((b) => b.level))].sort((a, b) => a - b);
  if (pool.backends.length > 0 && backends.length === pool.backends.length && !levels.includes(0)) {
    problem(`${path}.backends`, 'needs at least one level-0 (primary) backend: one without failover: true or failover_level > 0');
  }
  const od = pool.outlier_detection;
  const outlier = od === undefined ? undefined : {
    consecutive5xx: od.consecutive_5xx, consecutiveGatewayErrors: od.consecutive_gateway_errors, errorPercent: od.error_percent,
    minRequests: od.min_requests, intervalMs: od.interval, baseEjectionMs: od.base_ejection, maxEjectionMs: od.max_ejection, maxEjectionPercent: od.max_ejection_percent,
  };
  if (outlier !== undefined && outlier.maxEjectionMs < outlier.baseEjectionMs) {
    problem(`${path}.outlier_detection.max_ejection`, `must be at least base_ejection (${outlier.baseEjectionMs}ms), got ${outlier.maxEjectionMs}ms`);
  }
  const retry = pool.retry === undefined ? undefined : { perTryTimeoutMs: pool.retry.per_try_timeout, hedge: pool.retry.hedge };
  return { name: pool.name, outlier, retry, override: { mode: pool.override.mode, reason: pool.override.reason, failbackApproval: pool.override.failback_approval }, protocol, tls, backends, levels, policy, consensus: { mode: pool.consensus.mode } };
}
