// The resolved config back in config.yaml form: every value explicit (defaults and inherited values written
// out, durations as duration strings), so loading the result gives the same resolved config again
// (packages/config/test/serialize.test.ts checks the round trip). The operator uses the pod-owned part to keep a
// running proxy's own keys exactly when it renders a push.
import type { ListenAddress } from './address.ts';
import { formatDuration } from './duration.ts';
import type { PodOwned } from './restart.ts';
import type { ChannelConfig, Config, DataplaneConfig, FailoverPolicy, HealthCheckConfig, PoolConfig } from './types.ts';

/** ":port" for every interface, "[v6]:port", "host:port": the forms parseListen reads. */
export function listenText(l: Pick<ListenAddress, 'host' | 'port'>): string {
  if (l.host === '') return `:${l.port}`;
  return l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

/** A value of the yaml document, with the keys whose value is undefined left out. */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** Each resolved dataplane field: its config.yaml key, and whether it is a duration (milliseconds resolved). */
export const DATAPLANE_YAML: { readonly [K in keyof DataplaneConfig]: readonly [string, boolean] } = {
  workers: ['workers', false],
  connectTimeoutMs: ['connect_timeout', true],
  headerTimeoutMs: ['header_timeout', true],
  idleTimeoutMs: ['idle_timeout', true],
  keepAliveTimeoutMs: ['keepalive_timeout', true],
  clientHeaderTimeoutMs: ['client_header_timeout', true],
  maxAttempts: ['max_attempts', false],
  retryBudgetPercent: ['retry_budget_percent', false],
  youngGenerationMb: ['young_generation_mb', false],
};

/** listen, admin, region, tls, dataplane and access_log: what belongs to the proxy pod rather than to its FailoverPools. */
export function podOwnedYaml(c: PodOwned): Record<string, unknown> {
  return defined({
    listen: listenText(c.listen),
    admin: defined({ listen: listenText(c.admin.listen), token_file: c.admin.tokenFile ?? undefined }),
    region: c.region ?? undefined,
    tls: c.tls === undefined || c.tls === null ? undefined : {
      listen: listenText(c.tls.listen),
      min_version: c.tls.minVersion,
      alpn: [...c.tls.alpn],
      certificates: c.tls.certificates.map((x) => defined({ cert_file: x.certFile, key_file: x.keyFile, hosts: x.hosts.length > 0 ? [...x.hosts] : undefined })),
    },
    dataplane: Object.fromEntries(Object.entries(DATAPLANE_YAML).map(([k, [key, duration]]) => {
      const v = c.dataplane[k as keyof DataplaneConfig];
      return [key, duration && typeof v === 'number' ? formatDuration(v) : v];
    })),
    access_log: c.accessLog ? { enabled: c.accessLog.enabled, format: c.accessLog.format, path: c.accessLog.path, sample: c.accessLog.sample } : undefined,
  });
}

function healthCheckYaml(h: HealthCheckConfig): Record<string, unknown> {
  // Only the keys of the check's type: path and expected_status with another type are errors.
  if (h.type === 'tcp') return { type: h.type, interval: formatDuration(h.intervalMs), timeout: formatDuration(h.timeoutMs), unhealthy_threshold: h.unhealthyThreshold, healthy_threshold: h.healthyThreshold };
  if (h.type === 'grpc') return { type: h.type, service: h.service, interval: formatDuration(h.intervalMs), timeout: formatDuration(h.timeoutMs), unhealthy_threshold: h.unhealthyThreshold, healthy_threshold: h.healthyThreshold };
  return {
    type: h.type,
    path: h.path,
    interval: formatDuration(h.intervalMs),
    timeout: formatDuration(h.timeoutMs),
    expected_status: h.expectedStatus,
    unhealthy_threshold: h.unhealthyThreshold,
    healthy_threshold: h.healthyThreshold,
  };
}

function policyYaml(p: FailoverPolicy): Record<string, unknown> {
  return {
    enabled: p.enabled,
    strategy: p.strategy,
    check_interval: formatDuration(p.checkIntervalMs),
    recovery_interval: formatDuration(p.recoveryIntervalMs),
    delay: formatDuration(p.delayMs),
    step_percent: p.stepPercent,
    step_interval: formatDuration(p.stepIntervalMs),
    ...(p.holdDown ? { hold_down: { min_dwell: formatDuration(p.holdDown.minDwellMs), flap_threshold: p.holdDown.flapThreshold, flap_window: formatDuration(p.holdDown.flapWindowMs), max_hold: formatDuration(p.holdDown.maxHoldMs) } } : {}),
    ...(p.rampGate ? { ramp_gate: { max_error_percent: p.rampGate.maxErrorPercent, max_p99: formatDuration(p.rampGate.maxP99Ms) } } : {}),
    failback: p.failback ?? 'auto',
  };
}

function poolYaml(p: PoolConfig): Record<string, unknown> {
  return {
    name: p.name,
    protocol: p.protocol,
    ...(p.tls === undefined ? {} : { tls: defined({ ca_file: p.tls.caFile, server_name: p.tls.serverName, insecure_skip_verify: p.tls.insecureSkipVerify }) }),
    backends: p.backends.map((b) => defined({
      address: b.address,
      weight: b.weight,
      failover_level: b.level,
      region: b.region,
      health_check: healthCheckYaml(b.healthCheck),
    })),
    failover: policyYaml(p.policy),
    ...(p.outlier ? { outlier_detection: {
      consecutive_5xx: p.outlier.consecutive5xx, consecutive_gateway_errors: p.outlier.consecutiveGatewayErrors, error_percent: p.outlier.errorPercent,
      min_requests: p.outlier.minRequests, interval: formatDuration(p.outlier.intervalMs), base_ejection: formatDuration(p.outlier.baseEjectionMs),
      max_ejection: formatDuration(p.outlier.maxEjectionMs), max_ejection_percent: p.outlier.maxEjectionPercent,
    } } : {}),
    ...(p.retry ? { retry: { per_try_timeout: p.retry.perTryTimeoutMs === 'auto' ? 'auto' : formatDuration(p.retry.perTryTimeoutMs), hedge: p.retry.hedge } } : {}),
    override: defined({ mode: p.override.mode, reason: p.override.reason, failback_approval: p.override.failbackApproval }),
    consensus: { mode: p.consensus.mode },
  };
}

/** A channel as parsed (RawChannel): only its delivery timeout is held in milliseconds. */
function channelYaml(ch: ChannelConfig): Record<string, unknown> {
  return 'timeout' in ch ? { ...ch, timeout: formatDuration(ch.timeout) } : { ...ch };
}

/** The whole resolved config as a config.yaml document (a plain object for the yaml library's stringify). */
export function configYaml(c: Config): Record<string, unknown> {
  return {
    ...podOwnedYaml(c),
    pools: c.pools.map(poolYaml),
    routes: c.routes.map((r) => defined({ host: r.host, path_prefix: r.pathPrefix, pool: r.pool })),
    failover: { drain_timeout: formatDuration(c.drainTimeoutMs), notification: { enabled: c.notification.enabled, channels: c.notification.channels.map(channelYaml) } },
  };
}
