// The resolved configuration the proxy runs on: defaults applied, inheritance done, durations in milliseconds.
import type { ListenAddress, Upstream } from './address.ts';
import type { RawChannel } from './schema.ts';

export type Strategy = 'immediate' | 'graceful' | 'delayed';

export type HealthCheckType = 'http' | 'grpc' | 'tcp';

export interface HealthCheckConfig {
  readonly type: HealthCheckType;
  /** type http: the path probed with GET (the default for other types, unused). */
  readonly path: string;
  /** type grpc: grpc.health.v1 HealthCheckRequest.service ("" = the whole server). */
  readonly service: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly expectedStatus: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
}

export type UpstreamProtocol = 'http1' | 'h2' | 'h2c' | 'auto';

export interface UpstreamTls {
  readonly caFile: string | undefined;
  readonly serverName: string | undefined;
  readonly insecureSkipVerify: boolean;
}

/** How the proxy talks to a backend: its pool's protocol and TLS settings (SPEC 8). */
export interface Transport {
  readonly protocol: UpstreamProtocol;
  /** Whether connections use TLS: an https:// address, or protocol h2. */
  readonly secure: boolean;
  readonly tls: UpstreamTls | undefined;
}

export interface BackendConfig {
  /** Stable identity across reloads: `<pool>/<address>`. */
  readonly id: string;
  readonly pool: string;
  readonly address: string;
  readonly upstream: Upstream;
  /** Protocol and TLS to this backend, from its pool. */
  readonly transport: Transport;
  readonly weight: number;
  readonly level: number;
  readonly region: string | undefined;
  readonly healthCheck: HealthCheckConfig;
}

export interface FailoverPolicy {
  readonly enabled: boolean;
  readonly strategy: Strategy;
  readonly checkIntervalMs: number;
  readonly recoveryIntervalMs: number;
  readonly delayMs: number;
  readonly stepPercent: number;
  readonly stepIntervalMs: number;
  /** SPEC 10 hold-down against flapping; absent: off. */
  readonly holdDown?: HoldDownPolicy | undefined;
  /** SPEC 10 ramp gate; absent: ramps advance on time alone. */
  readonly rampGate?: RampGatePolicy | undefined;
  /** SPEC 10 failback approval; absent means auto. */
  readonly failback?: FailbackMode | undefined;
}

export type FailbackMode = 'auto' | 'manual';

export interface HoldDownPolicy {
  /** A level that just took traffic keeps it at least this long, unless it fails itself. */
  readonly minDwellMs: number;
  /** Failovers of one pool within flapWindowMs that make it flapping. */
  readonly flapThreshold: number;
  readonly flapWindowMs: number;
  /** Upper bound of the hold a flapping pool needs before failing back. */
  readonly maxHoldMs: number;
}

export interface RampGatePolicy {
  /** A ramp step waits while the level taking traffic answers more than this percent of 5xx/errors... */
  readonly maxErrorPercent: number;
  /** ...or is slower than this at p99, over the last step_interval. */
  readonly maxP99Ms: number;
}

/** pools[].outlier_detection (SPEC 10): ejection of backends from what real traffic sees. 0 turns a detector off. */
export interface OutlierPolicy {
  /** Consecutive 5xx answers or backend faults (refused, reset, timed out, invalid HTTP). */
  readonly consecutive5xx: number;
  /** Consecutive 502/503/504 answers or backend faults. */
  readonly consecutiveGatewayErrors: number;
  /** Errors over `intervalMs`, in percent, with at least `minRequests` requests in it. */
  readonly errorPercent: number;
  readonly minRequests: number;
  readonly intervalMs: number;
  /** First ejection; doubled at each repeat, at most maxEjectionMs. */
  readonly baseEjectionMs: number;
  readonly maxEjectionMs: number;
  /** At most this share of a level's backends is ejected at once. */
  readonly maxEjectionPercent: number;
}

/** pools[].retry (SPEC 10): per-try timeout and hedging. */
export interface RetryPolicy {
  /** `auto`: the backend's observed p99 (bounded 50 ms..header_timeout); else milliseconds. */
  readonly perTryTimeoutMs: number | 'auto';
  /** After the per-try timeout, idempotent requests get a second try on the next candidate; the first answer wins. */
  readonly hedge: boolean;
}

export type OverrideMode = 'auto' | 'active' | 'inactive';

export interface PoolConfig {
  readonly name: string;
  /** Manual failover held in the config; `inactive` is also applied as policy.enabled = false. */
  readonly override: {
    readonly mode: OverrideMode;
    readonly reason: string | undefined;
    /** failback: manual, the approval carried by the config (the operator renders FailoverPool
     *  spec.failback.approve.approvedAt here): a value the proxy has not seen approves the failback the pool
     *  awaits when it arrives; the same value again does nothing. */
    readonly failbackApproval?: string | undefined;
  };
  readonly protocol: UpstreamProtocol;
  readonly tls: UpstreamTls | undefined;
  readonly backends: readonly BackendConfig[];
  /** Levels that have at least one backend, ascending. */
  readonly levels: readonly number[];
  readonly policy: FailoverPolicy;
  /** SPEC 9: `shared` follows the operator's decisions while one is fresh; `local` decides alone. */
  readonly consensus: { readonly mode: ConsensusMode };
  /** SPEC 10 outlier detection; absent: off. */
  readonly outlier?: OutlierPolicy | undefined;
  /** SPEC 10 per-try timeout and hedging; absent: off (a try waits up to header_timeout). */
  readonly retry?: RetryPolicy | undefined;
}

export type ConsensusMode = 'local' | 'shared';

export interface RouteConfig {
  /** Lower-case exact host, "*.suffix", or undefined for any host. */
  readonly host: string | undefined;
  readonly pathPrefix: string;
  readonly pool: string;
}

export type ChannelConfig = RawChannel;

export interface DataplaneConfig {
  readonly workers: number | 'auto';
  readonly connectTimeoutMs: number;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly clientHeaderTimeoutMs: number;
  readonly maxAttempts: number;
  readonly retryBudgetPercent: number;
  readonly youngGenerationMb: number;
}

export interface CertificateConfig {
  readonly certFile: string;
  readonly keyFile: string;
  /** Lower-case SNI names ("*.suffix" allowed); empty: the default certificate. */
  readonly hosts: readonly string[];
}

export interface TlsConfig {
  readonly listen: ListenAddress;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly alpn: readonly ('h2' | 'http/1.1')[];
  readonly certificates: readonly CertificateConfig[];
}

export interface AccessLogConfig {
  readonly enabled: boolean;
  readonly format: 'json' | 'combined';
  /** "-" = stdout. */
  readonly path: string;
  /** 0..1. */
  readonly sample: number;
}

export interface Config {
  readonly listen: ListenAddress;
  /** The TLS listener, when configured. */
  readonly tls: TlsConfig | undefined;
  /** failover.drain_timeout. */
  readonly drainTimeoutMs: number;
  readonly admin: { readonly listen: ListenAddress; readonly tokenFile: string | undefined };
  readonly region: string | undefined;
  /** A bootstrap config: not ready until a pushed config (bootstrap false) runs. */
  readonly bootstrap: boolean;
  readonly pools: readonly PoolConfig[];
  readonly routes: readonly RouteConfig[];
  readonly notification: { readonly enabled: boolean; readonly channels: readonly ChannelConfig[] };
  readonly dataplane: DataplaneConfig;
  readonly accessLog: AccessLogConfig;
}
