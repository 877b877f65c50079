// Cross-field rules and computed defaults: raw (schema-checked) document -> Config. Pure.
import { parseListen, parseUpstream } from './address.ts';
import { DEFAULTS } from './defaults.ts';
import type { Issue } from './dsl.ts';
import type { RawConfig, RawPool } from './schema.ts';
import type { BackendConfig, Config, FailoverPolicy, HoldDownPolicy, PoolConfig, RampGatePolicy, RouteConfig } from './types.ts';

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

  const addresses = new Map<string, number>();
  const backends: BackendConfig[] = [];
  pool.backends.forEach((b, j) => {
    const at = `${path}.backends[${j}]`;
    const upstream = parseUpstream(b.address);
    if (typeof upstream === 'string') { problem(`${at}.address`, upstream); return; }
    const twin = addresses.get(upstream.origin);
    if (twin !== undefined) problem(`${at}.address`, `duplicate backend ${b.address} (also ${path}.backends[${twin}])`);
    addresses.set(upstream.origin, j);

    let level = b.failover_level ?? (b.failover === true ? 1 : 0);
    if (b.failover !== undefined && b.failover_level !== undefined && b.failover !== (b.failover_level > 0)) {
      problem(`${at}.failover`, `failover: ${b.failover} contradicts failover_level: ${b.failover_level} (failover: true means a level >= 1)`);
      level = b.failover_level;
    }

    const hc = b.health_check;
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
      weight: b.weight,
      level,
      region: b.region,
      healthCheck: {
        path: hc.path,
        intervalMs,
        timeoutMs: Math.max(1, timeoutMs),
        expectedStatus: hc.expected_status,
        unhealthyThreshold: hc.unhealthy_threshold,
        healthyThreshold: hc.healthy_threshold,
      },
    });
  });

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
  return { name: pool.name, outlier, retry, override: { mode: pool.override.mode, reason: pool.override.reason, failbackApproval: pool.override.failback_approval }, backends, levels, policy, consensus: { mode: pool.consensus.mode } };
}
