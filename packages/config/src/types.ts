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
}

export type OverrideMode = 'auto' | 'active' | 'inactive';

export interface PoolConfig {
  readonly name: string;
  /** Manual failover held in the config; `inactive` is also applied as policy.enabled = false. */
  readonly override: { readonly mode: OverrideMode; readonly reason: string | undefined };
  readonly protocol: UpstreamProtocol;
  readonly tls: UpstreamTls | undefined;
  readonly backends: readonly BackendConfig[];
  /** Levels that have at least one backend, ascending. */
  readonly levels: readonly number[];
  readonly policy: FailoverPolicy;
}

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
