// Every default of the proxy config, in one place: the schema, the resolver and the docs all read them here.
// Durations are milliseconds.

export const DEFAULTS = {
  listen: ':8080',
  adminListen: ':9000',
  backend: {
    weight: 100,
  },
  healthCheck: {
    path: '/health',
    /** The probe timeout; when the interval is shorter than twice this, half the interval is used. */
    timeoutMs: 2000,
    expectedStatus: 200,
    unhealthyThreshold: 2,
    healthyThreshold: 2,
  },
  failover: {
    enabled: true,
    strategy: 'immediate',
    checkIntervalMs: 5000,
    recoveryIntervalMs: 10_000,
    delayMs: 30_000,
    stepPercent: 25,
    stepIntervalMs: 5000,
  },
  notification: {
    enabled: true,
    logLevel: 'warning',
    smtpPort: 587,
    webhookFormat: 'generic',
  },
  dataplane: {
    workers: 1,
    connectTimeoutMs: 2000,
    headerTimeoutMs: 10_000,
    idleTimeoutMs: 60_000,
    keepAliveTimeoutMs: 5000,
    maxAttempts: 3,
    retryBudgetPercent: 50,
    retryBudgetMinConcurrent: 16,
    /** Bodies of idempotent requests up to this size are kept so they can be replayed on another backend. */
    replayBufferBytes: 64 * 1024,
  },
  /** Seconds a 503 asks clients to wait before retrying. */
  retryAfterSeconds: 5,
} as const;
