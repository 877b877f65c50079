// The FailoverPool resource as the operator reads it (crds/failoverpool.yaml is the schema), and what the
// proxies report through their admin API.

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

export interface HealthCheckSpec {
  type?: 'http' | 'grpc' | 'tcp';
  path?: string;
  service?: string;
  interval?: string;
  timeout?: string;
  expectedStatus?: number;
  unhealthyThreshold?: number;
  healthyThreshold?: number;
}

export interface BackendSpec {
  address?: string;
  service?: { name: string; port: number | string };
  weight?: number;
  failoverLevel?: number;
  region?: string;
  healthCheck?: HealthCheckSpec;
}

export interface SecretKeyRef { name: string; key?: string }

export interface ChannelSpec {
  type: 'log' | 'email' | 'webhook';
  level?: string;
  smtpServer?: string;
  smtpPort?: number;
  from?: string;
  recipients?: string[];
  tls?: 'starttls' | 'tls' | 'none';
  timeout?: string;
  credentialsSecretRef?: { name: string; usernameKey?: string; passwordKey?: string };
  format?: 'slack' | 'discord' | 'generic';
  urlSecretRef?: SecretKeyRef;
  hmacSecretRef?: SecretKeyRef;
}

export type OverrideMode = 'auto' | 'active' | 'inactive';

/** SPEC 10, in camelCase: config.yaml's failover.hold_down, ramp_gate, failback and a pool's outlier_detection, retry. */
export interface HoldDownSpec { minDwell?: string; flapThreshold?: number; flapWindow?: string; maxHold?: string }
export interface RampGateSpec { maxErrorPercent?: number; maxP99?: string }
export interface FailbackSpec {
  mode?: 'auto' | 'manual';
  /** Approves the failback the pool awaits: a new approvedAt (RFC 3339) approves once; the same one again does nothing. */
  approve?: { approvedAt: string };
}
export interface OutlierDetectionSpec {
  consecutive5xx?: number;
  consecutiveGatewayErrors?: number;
  errorPercent?: number;
  minRequests?: number;
  interval?: string;
  baseEjection?: string;
  maxEjection?: string;
  maxEjectionPercent?: number;
}
export interface RetrySpec { perTryTimeout?: string; hedge?: boolean }

export interface FailoverPoolSpec {
  proxySelector: LabelSelector;
  routes: { hosts?: string[]; pathPrefix?: string }[];
  backends: BackendSpec[];
  protocol?: 'http1' | 'h2' | 'h2c' | 'auto';
  /** SPEC 8 pools[].tls, camelCase: TLS to https:// and h2 backends. caFile is a path in the proxy container. */
  tls?: { caFile?: string; serverName?: string; insecureSkipVerify?: boolean };
  automaticFailover?: boolean;
  strategy?: 'immediate' | 'graceful' | 'delayed';
  checkInterval?: string;
  recoveryInterval?: string;
  delay?: string;
  stepPercent?: number;
  stepInterval?: string;
  notifications?: { enabled?: boolean; channels?: ChannelSpec[] };
  override?: { mode?: OverrideMode; reason?: string; expiresAt?: string };
  holdDown?: HoldDownSpec;
  rampGate?: RampGateSpec;
  failback?: FailbackSpec;
  outlierDetection?: OutlierDetectionSpec;
  retry?: RetrySpec;
  /** SPEC 9: one decision across the proxies (shared, the default) or each proxy alone (local). */
  consensus?: { mode?: ConsensusMode; quorum?: number };
}

export type ConsensusMode = 'shared' | 'local';

/** SPEC 9: status.consensus. */
export interface ConsensusStatus {
  mode: ConsensusMode;
  /** Sequence of the last decision (grows across operator restarts and leader changes). */
  sequence: number;
  /** Level and shares of the last decision (shared mode). */
  level?: number;
  shares?: { level: number; percent: number }[];
  /** Ready proxies serving the decision (shared) or the most common level (local), and ready proxies. */
  agreeing: number;
  proxies: number;
  /** "agreeing/proxies", for the AGREE column. */
  agree: string;
  /** Where the selected proxies' decisions come from: shared while the operator decides for them. */
  source: 'shared' | 'local';
  /** SPEC 10, shared: the decision's ramp waits on spec.rampGate (judged on the traffic the proxies report), and why. */
  paused?: { reason: string };
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface FailoverPoolStatus {
  observedGeneration?: number;
  activeLevel?: number;
  failoverCount?: number;
  lastFailoverTime?: string;
  syncedProxies?: string;
  proxies?: { selected: number; synced: number };
  override?: { mode: OverrideMode; expired: boolean };
  consensus?: ConsensusStatus;
  /** failback: mode, whether a failback awaits approval on a reporting proxy, and the approval rendered last. */
  failback?: { mode: 'auto' | 'manual'; awaitingApproval: boolean; approvedAt?: string };
  /** failover.hold_down: the flapping episode as the reporting proxies see it, or absent. */
  flapping?: { since: string; failovers: number; holdMs: number };
  conditions?: Condition[];
}

export interface FailoverPool {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; generation?: number; creationTimestamp?: string | Date; resourceVersion?: string; uid?: string };
  spec: FailoverPoolSpec;
  status?: FailoverPoolStatus;
}

/** One pool in a proxy's GET /api/v1/failover/status (the fields the operator reads). */
export interface ProxyPoolStatus {
  name: string;
  activeLevel: number;
  mode?: string;
  failoverActive?: boolean;
  failoverCount?: number;
  backends?: { address: string; level: number; health?: string; lastError?: string | null; downBy?: string | null }[];
  /** SPEC 9: where the pool's level comes from on that proxy. */
  decision?: { source: 'shared' | 'local'; sequence: number | null; expiresAt: string | null };
  flapping?: { since: string; failovers: number; holdMs: number } | null;
  failback?: { mode: 'auto' | 'manual'; awaitingApproval: boolean };
}

export interface ProxyStatus {
  version: string;
  ready?: boolean;
  /** The proxy id (pod name), SPEC 2. */
  proxy?: string;
  pools: ProxyPoolStatus[];
}
