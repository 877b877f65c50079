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

export interface FailoverPoolSpec {
  proxySelector: LabelSelector;
  routes: { hosts?: string[]; pathPrefix?: string }[];
  backends: BackendSpec[];
  protocol?: 'http1' | 'h2' | 'h2c' | 'auto';
  automaticFailover?: boolean;
  strategy?: 'immediate' | 'graceful' | 'delayed';
  checkInterval?: string;
  recoveryInterval?: string;
  delay?: string;
  stepPercent?: number;
  stepInterval?: string;
  notifications?: { enabled?: boolean; channels?: ChannelSpec[] };
  override?: { mode?: OverrideMode; reason?: string; expiresAt?: string };
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
  backends?: { address: string; level: number; health?: string; lastError?: string | null }[];
}

export interface ProxyStatus {
  version: string;
  ready?: boolean;
  pools: ProxyPoolStatus[];
}
