// Every default of the operator, in one place: the flags (main.ts), the manager and the leader election read
// them here, and operator/test/defaults.test.ts checks that the chart's values.yaml says the same.
export const OPERATOR_DEFAULTS = {
  /** Concurrent reconciles (never two on one key). */
  workers: 2,
  /** Name of the leader-election Lease. */
  leaseName: 'veloflux-operator',
  /** Leader election, ms: a Lease older than leaseDuration is free; a leader that cannot renew within renewDeadline stops; candidates retry every retryPeriod. */
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
  /** Periodic re-check of every pod and pool, ms. */
  resyncMs: 60_000,
  /** /metrics and /healthz listener. */
  metricsAddress: ':8081',
  /** Secret (key "token") holding the proxies' admin token, in each proxy pod's namespace. */
  tokenSecret: 'veloflux-admin-token',
  /** The proxies' admin API port, unless a pod's annotation veloflux.io/admin-port names another. */
  adminPort: 9000,
  /** On SIGTERM, reconciles in hand get this long to finish, ms. */
  stopGraceMs: 10_000,
  /** The work queue's per-key backoff after a failed reconcile, ms: base doubling up to max. */
  queueBaseMs: 100,
  queueMaxMs: 30_000,
} as const;
