// Every default of the proxy config, in one place: the schema, the resolver and the docs all read them here.
// Durations are milliseconds.

export const DEFAULTS = {
  listen: ':8080',
  /** Standalone, the admin API listens on loopback only (SPEC 3); the chart and the operator's pods set ":9000"
   *  (all interfaces, behind the chart's NetworkPolicy). */
  adminListen: '127.0.0.1:9000',
  /** admin.token_file is re-read on every change of its directory, and at least this often (ms) where such
   *  events do not arrive (network or overlay mounts). */
  adminTokenPollMs: 5000,
  /** SPEC 6 warm-up: off outside Kubernetes; the chart's bootstrap config turns it on. */
  bootstrap: false,
  backend: {
    weight: 100,
  },
  /** SPEC 9: standalone, a proxy decides alone; the operator renders `shared` (FailoverPool default). */
  consensus: {
    mode: 'local',
  },
  pool: {
    /** To the backends: HTTP/1.1 unless the pool says otherwise (SPEC 8). */
    protocol: 'http1',
  },
  healthCheck: {
    type: 'http',
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
    /** auto: traffic returns to a recovered level by itself; manual: it waits for an approval (SPEC 10). */
    failback: 'auto',
  },
  /** failover.hold_down (SPEC 10), off when the block is absent; these are its fields' defaults when present. */
  holdDown: {
    minDwellMs: 30_000,
    flapThreshold: 3,
    flapWindowMs: 5 * 60_000,
    maxHoldMs: 10 * 60_000,
  },
  /** failover.ramp_gate (SPEC 10), off when the block is absent. */
  rampGate: {
    maxErrorPercent: 5,
    maxP99Ms: 500,
  },
  /** pools[].outlier_detection (SPEC 10), off when the block is absent; its fields' defaults when present. */
  outlier: {
    consecutive5xx: 5,
    consecutiveGatewayErrors: 3,
    errorPercent: 50,
    minRequests: 20,
    intervalMs: 10_000,
    baseEjectionMs: 30_000,
    maxEjectionMs: 5 * 60_000,
    maxEjectionPercent: 50,
  },
  /** pools[].retry (SPEC 10), off when the block is absent. */
  retry: {
    perTryTimeout: 'auto',
    hedge: false,
    /** per_try_timeout auto: the backend's observed p99 time to response head, bounded to this much at least
     *  (and to header_timeout at most); until a backend has answered this many requests, header_timeout. */
    autoMinMs: 50,
    autoMinSamples: 20,
  },
  notification: {
    enabled: true,
    logLevel: 'warning',
    smtpPort: 587,
    webhookFormat: 'generic',
    /** One delivery attempt to an SMTP server (connect, greeting, each command) may take this long. */
    emailTimeoutMs: 10_000,
    /** One webhook POST (connect, headers, body) may take this long. */
    webhookTimeoutMs: 5000,
    /** Attempts per notification and channel, the first included; then it is dropped and counted as failed. */
    attempts: 3,
    /** Backoff before the second attempt, doubled for each further one (with up to 20% jitter), capped below. */
    backoffMs: 1000,
    maxBackoffMs: 30_000,
    /** Notifications waiting per channel; when full, the oldest waiting one is dropped (and counted as failed). */
    queueLimit: 100,
    /** The same notice (pool, event, subject) inside this window is sent once. */
    dedupeWindowMs: 5 * 60_000,
    /** Per-pool token bucket: at most `rateBurst` notices at once, then one more per `rateRefillMs`. */
    rateBurst: 10,
    rateRefillMs: 60_000,
    /** Tokens that backend down/up notices leave in the bucket, so backend churn cannot starve a failover notice. */
    rateReserve: 2,
    /** On shutdown, deliveries in flight get this long to finish, then they are abandoned. */
    closeGraceMs: 1000,
  },
  dataplane: {
    workers: 1,
    connectTimeoutMs: 2000,
    headerTimeoutMs: 10_000,
    idleTimeoutMs: 60_000,
    keepAliveTimeoutMs: 5000,
    /** A client must send a whole request head within this long (nginx's client_header_timeout); a connection
     *  that sends nothing at all is closed after it too. */
    clientHeaderTimeoutMs: 60_000,
    maxAttempts: 3,
    retryBudgetPercent: 50,
    retryBudgetMinConcurrent: 16,
    /** Bodies of idempotent requests up to this size are kept so they can be replayed on another backend. */
    replayBufferBytes: 64 * 1024,
    /** HTTP/2 to backends (h2, h2c, auto): streams per connection before another connection is opened, unless the
     *  backend's SETTINGS allow fewer. 100 is the floor RFC 9113 recommends servers allow. */
    h2MaxConcurrentStreams: 100,
    /** V8 young generation of each data-plane worker, MB (three semi-spaces' worth). Node's own sizing grows it
     *  to 128 MB under load (most of a proxy's memory); 24 MB keeps a worker near 115 MB of RSS at full speed,
     *  while 8 MB saves ~15 MB more but costs ~5% throughput in garbage collection (BENCHMARKS.md). */
    youngGenerationMb: 24,
  },
  tls: {
    listen: ':8443',
    minVersion: 'TLSv1.2',
    alpn: ['h2', 'http/1.1'],
    /** Certificate files are re-read on every change of their directory, and at least this often (ms) where
     *  such events do not arrive (network or overlay mounts). */
    reloadPollMs: 5000,
  },
  /** failover.drain_timeout: WebSocket tunnels and HTTP/2 streams on a level that lost its traffic are closed
   *  after this long (SPEC 8). */
  drainTimeoutMs: 30_000,
  accessLog: {
    enabled: false,
    format: 'json',
    path: '-',
    sample: 1,
    /** Lines waiting for a slow stdout or disk, per process, in bytes; beyond it new lines are dropped (and
     *  counted in veloflux_access_log_dropped_total) rather than held: a stalled disk must not grow memory. */
    bufferBytes: 4 * 1024 * 1024,
  },
  /** Seconds a 503 asks clients to wait before retrying. */
  retryAfterSeconds: 5,
} as const;
