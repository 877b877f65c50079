// The config.yaml format (SPEC section 1), stated once. Validation, the TypeScript type of the raw document and
// docs/configuration.md all come from here; cross-field rules and computed defaults live in resolve.ts.
import { formatDuration, parseDuration } from './duration.ts';
import { DEFAULTS } from './defaults.ts';
import { parseListen, parseUpstream } from './address.ts';
import * as s from './dsl.ts';
import type { Infer, Schema } from './dsl.ts';

const D = DEFAULTS;

const upstreamCheck = (v: string): string | undefined => { const u = parseUpstream(v); return typeof u === 'string' ? u : undefined; };
const listenCheck = (v: string): string | undefined => { const l = parseListen(v); return typeof l === 'string' ? l : undefined; };

function dur(doc: string, def?: number, defaultText?: string): Schema<number> {
  return s.duration({ doc, ...(def === undefined ? {} : { default: def }), ...(defaultText ? { defaultText } : {}), min: 1 }, parseDuration, formatDuration);
}

const NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;
const HOST = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

export const healthCheckSchema = s.object(
  {
    type: s.oneOf(['http', 'grpc', 'tcp'], { doc: 'What a probe does: http (GET path, healthy on expected_status), grpc (grpc.health.v1.Health/Check for `service` over HTTP/2, cleartext or TLS as the backend\'s address and its pool\'s protocol say; healthy on SERVING), tcp (a connection is accepted; nothing is sent).', default: D.healthCheck.type }),
    path: s.optional(s.string({ doc: 'type http: the path probed with GET.', defaultText: `"${D.healthCheck.path}"`, pattern: /^\//, patternText: 'a path starting with "/"' })),
    service: s.optional(s.string({ doc: 'type grpc: the service name asked about (grpc.health.v1 HealthCheckRequest.service); empty asks about the whole server.', defaultText: '"" (the whole server)', pattern: /^[A-Za-z0-9_.-]{0,512}$/, patternText: 'a gRPC service name: up to 512 letters, digits, "_", "." or "-"' })),
    interval: s.optional(dur('Time between probes (each probe is jittered by up to 10%).', undefined, 'the pool\'s failover.check_interval')),
    timeout: s.optional(dur('How long a probe may take; must be less than interval.', undefined, `${formatDuration(D.healthCheck.timeoutMs)}, or half the interval when that is shorter`)),
    expected_status: s.optional(s.int({ doc: 'type http: the HTTP status a healthy backend answers.', defaultText: String(D.healthCheck.expectedStatus), min: 100, max: 599 })),
    unhealthy_threshold: s.int({ doc: 'Consecutive failures (probes or real requests refused, reset or timed out) that mark a backend down.', default: D.healthCheck.unhealthyThreshold, min: 1, max: 100 }),
    healthy_threshold: s.int({ doc: 'Consecutive successful probes that mark a down backend up.', default: D.healthCheck.healthyThreshold, min: 1, max: 100 }),
  },
  { doc: 'Active health check of this backend.' },
);

export const backendSchema = s.object(
  {
    address: s.string({ doc: 'Where the backend listens: "host:port", "http://host:port" or "https://host:port".', minLength: 1, check: upstreamCheck }),
    weight: s.int({ doc: 'Relative share of traffic inside its level; 0 drains the backend (no new requests, still probed).', default: D.backend.weight, min: 0, max: 1_000_000 }),
    failover: s.optional(s.bool({ doc: 'Shorthand: true is failover_level 1.' })),
    failover_level: s.optional(s.int({ doc: 'Failover tier: 0 primary, 1 first backup, 2 second backup, and so on.', defaultText: '0 (1 with failover: true)', min: 0, max: 1000 })),
    region: s.optional(s.string({ doc: 'Region of this backend; the proxy prefers backends of its own region inside a level.', minLength: 1 })),
    health_check: healthCheckSchema,
  },
  { doc: 'One backend server.' },
);

/** `per_try_timeout`: "auto" or a duration. */
const perTrySchema: Schema<number | 'auto'> = {
  doc: `How long one try may go without response headers before the next try starts: "auto" = the backend's observed p99 (at least ${D.retry.autoMinMs}ms, at most dataplane.header_timeout; header_timeout until it has answered ${D.retry.autoMinSamples} requests) or a duration like "200ms". With hedge false the slow try is cut and the request retried on the next candidate (idempotent methods, within the retry budget).`,
  fallback: { value: D.retry.perTryTimeout },
  optional: false,
  parse(v, path, ctx) {
    if (v === 'auto') return 'auto';
    const ms = typeof v === 'string' ? parseDuration(v) : undefined;
    if (ms !== undefined && ms >= 1) return ms;
    ctx.issues.push({ path, message: `must be "auto" or a duration like "200ms", got ${s.show(v)}` });
    return s.INVALID;
  },
  describe: () => ({ type: 'string', description: perTrySchema.doc, default: D.retry.perTryTimeout }),
};

/** Strategy and timing; the top-level block sets them for every pool, a pool's own block overrides field by field. */
const policyFields = {
  strategy: s.oneOf(['immediate', 'graceful', 'delayed'], { doc: 'How traffic moves to the next level: immediate (all at once), graceful (step_percent every step_interval), delayed (only after the failure lasts `delay`).', default: D.failover.strategy }),
  check_interval: dur('Default health-check interval for backends without their own.', D.failover.checkIntervalMs),
  recovery_interval: dur('How long a better level must stay healthy before traffic returns to it.', D.failover.recoveryIntervalMs),
  delay: dur('delayed strategy: how long a failure must persist before failover.', D.failover.delayMs),
  step_percent: s.int({ doc: 'graceful strategy and failback: share of traffic moved per step, in percent.', default: D.failover.stepPercent, min: 1, max: 100 }),
  step_interval: dur('graceful strategy and failback: time between steps.', D.failover.stepIntervalMs),
  hold_down: s.optional(s.object(
    {
      min_dwell: dur('A level that just took traffic keeps it at least this long before traffic fails back from it (unless it fails itself).', D.holdDown.minDwellMs),
      flap_threshold: s.int({ doc: 'This many failovers of one pool within flap_window make the pool flapping (one `flapping` notification per episode).', default: D.holdDown.flapThreshold, min: 1, max: 1000 }),
      flap_window: dur('Window over which failovers are counted; a flapping episode ends after flap_window without a failover (`flapping_ended`).', D.holdDown.flapWindowMs),
      max_hold: dur('While flapping, failing back needs the earlier level healthy without a break for the hold: 2 x min_dwell at the flap_threshold-th failover, doubled at each further one, at most max_hold (and never less than recovery_interval).', D.holdDown.maxHoldMs),
    },
    { doc: 'Hold-down against flapping (SPEC 10); off when absent. A pool\'s block replaces the top-level one as a whole.' },
  )),
  ramp_gate: s.optional(s.object(
    {
      max_error_percent: s.int({ doc: 'A ramp step (graceful failover or failback) waits while the level taking traffic answered more than this percent of 5xx or cut responses over the last step_interval.', default: D.rampGate.maxErrorPercent, min: 0, max: 100 }),
      max_p99: dur('... or while its p99 latency over the last step_interval is above this.', D.rampGate.maxP99Ms),
    },
    { doc: 'Ramp gate (SPEC 10): graceful ramps and failback ramps advance only while the level taking traffic is well; a paused ramp shows why in status (`ramp.paused`), metrics and events. Off when absent: ramps advance on time alone. A pool\'s block replaces the top-level one as a whole.' },
  )),
  failback: s.oneOf(['auto', 'manual'], { doc: 'auto: traffic returns to a recovered level by the recovery rules; manual: it stays where it is ("awaiting failback approval" in status, a `failback_awaiting_approval` notification) until POST /api/v1/failover/failback?pool=P or, in Kubernetes, the FailoverPool\'s spec.failback.approve.', default: D.failover.failback }),
} as const;

type PolicyFields = typeof policyFields;
const poolPolicyFields = Object.fromEntries(
  Object.entries(policyFields).map(([k, v]) => {
    const field = s.optional(v as Schema<unknown>);
    // Left out, a pool field inherits the top-level one: say so instead of repeating the top-level default.
    return [k, { ...field, describe: () => ({ ...field.describe(), default: undefined, defaultText: `failover.${k}` }) }];
  }),
) as { [K in keyof PolicyFields]: Schema<Infer<PolicyFields[K]> | undefined> };

export const poolSchema = s.object(
  {
    name: s.string({ doc: 'Pool name, unique in the config; routes refer to it.', pattern: NAME, patternText: 'letters, digits, ".", "_" or "-", starting and ending with a letter or digit' }),
    algorithm: s.oneOf(['failover'], { doc: 'Load-balancing algorithm: lowest healthy level, weighted round-robin inside it.', default: 'failover' }),
    backends: s.list(backendSchema, { doc: 'The backends of this pool; at least one at level 0.', minItems: 1 }),
    protocol: s.oneOf(['http1', 'h2', 'h2c', 'auto'], { doc: 'Protocol to the backends: http1 (HTTP/1.1, over TLS for https:// addresses), h2 (HTTP/2 over TLS with ALPN, whatever the address\'s scheme), h2c (HTTP/2 with prior knowledge, cleartext; not for https:// addresses), auto (HTTP/2 over TLS when the backend offers it by ALPN, else HTTP/1.1; HTTP/1.1 for cleartext addresses). gRPC backends need h2 or h2c.', default: D.pool.protocol }),
    tls: s.optional(s.object(
      {
        ca_file: s.optional(s.string({ doc: 'PEM file of the CA certificates that sign the backends\' certificates (instead of the system ones); read when the pool\'s connections are set up (at load and reload).', minLength: 1 })),
        server_name: s.optional(s.string({ doc: 'Name sent by SNI and checked against the backend\'s certificate.', defaultText: 'the host of each backend\'s address', pattern: HOST, patternText: 'a host name' })),
        insecure_skip_verify: s.bool({ doc: 'Accept any certificate, unchecked (logged once per pool at load). For tests only: it gives up on knowing who the backend is.', default: false }),
      },
      { doc: 'TLS to the backends of this pool: for https:// addresses and protocol h2 (or auto over https://).' },
    )),
    failover: s.object(
      { enabled: s.optional(s.bool({ doc: 'Automatic failover for this pool.', defaultText: 'failover.enabled' })), ...poolPolicyFields },
      { doc: 'Per-pool override of the top-level failover block; fields left out are inherited.' },
    ),
    outlier_detection: s.optional(s.object(
      {
        consecutive_5xx: s.int({ doc: 'Eject a backend after this many consecutive 5xx answers or backend faults (refused, reset, timed out, invalid HTTP); 0 turns this detector off. A client that leaves (499) never counts.', default: D.outlier.consecutive5xx, min: 0, max: 100_000 }),
        consecutive_gateway_errors: s.int({ doc: 'Eject after this many consecutive 502/503/504 answers or backend faults (connect failures, resets, timeouts, and tries that got no response head within retry.per_try_timeout); 0 turns this detector off.', default: D.outlier.consecutiveGatewayErrors, min: 0, max: 100_000 }),
        error_percent: s.int({ doc: 'Eject when more than this percent of a backend\'s answers over `interval` were 5xx or backend faults, with at least min_requests in the interval; 100 turns this detector off.', default: D.outlier.errorPercent, min: 0, max: 100 }),
        min_requests: s.int({ doc: 'Requests a backend must have answered in one `interval` before error_percent judges it.', default: D.outlier.minRequests, min: 1, max: 10_000_000 }),
        interval: dur('Window of error_percent.', D.outlier.intervalMs),
        base_ejection: dur('How long a first ejection lasts; doubled at each repeat, up to max_ejection (the count restarts after a backend has not been ejected for max_ejection).', D.outlier.baseEjectionMs),
        max_ejection: dur('Longest ejection.', D.outlier.maxEjectionMs),
        max_ejection_percent: s.int({ doc: 'Never eject more than this percent of a level\'s backends at once (rounded down: 50 ejects 1 of 2 or 3, none of 1; 100 lets a single-backend level be ejected, so its pool fails over).', default: D.outlier.maxEjectionPercent, min: 0, max: 100 }),
      },
      { doc: 'Outlier detection from real traffic (SPEC 10, Envoy-style): backends whose answers fail are ejected (status `downBy: "outlier"`) for a while, counted per data-plane process; off when absent.' },
    )),
    retry: s.optional(s.object(
      {
        per_try_timeout: perTrySchema,
        hedge: s.bool({ doc: 'Idempotent requests (GET, HEAD, OPTIONS, TRACE, PUT, DELETE with a body of at most 64 KiB): after per_try_timeout, send a second try to the next candidate (same level, then the next level) and keep the first answer, cancelling the other. Never for other methods; a hedge is a retry for the retry budget (dataplane.retry_budget_percent), so a slow pool cannot double its own load; a hedge the budget has no slot for waits until a retry ends (at most until header_timeout) rather than being dropped. Counted in veloflux_hedged_requests_total.', default: D.retry.hedge }),
      },
      { doc: 'Per-try timeout and hedging (SPEC 10); off when absent: a try waits up to dataplane.header_timeout.' },
    )),
    override: s.object(
      {
        mode: s.oneOf(['auto', 'active', 'inactive'], { doc: 'Manual failover held in the config (the operator renders FailoverPool spec.override here): auto = automatic; active = failed over to the first serving level above 0, whatever the health of level 0; inactive = automatic failover off, traffic stays on (or returns to) level 0.', default: 'auto' }),
        reason: s.optional(s.string({ doc: 'Why the override is set; shown in status and events.' })),
        failback_approval: s.optional(s.string({ doc: 'failback: manual: an approval token (the operator renders FailoverPool spec.failback.approve.approvedAt here). A value this proxy has not seen yet approves the failback the pool awaits when it arrives; the same value again does nothing.', minLength: 1 })),
      },
      { doc: 'Manual failover override for this pool (a VeloFlux extension of the seed format).' },
    ),
    consensus: s.object(
      {
        mode: s.oneOf(['local', 'shared'], { doc: 'Who decides this pool\'s level and shares: local = this proxy alone, from its own probes; shared = the operator, from the probe views of every replica (SPEC 9): the proxy serves a fresh decision sent to PUT /api/v1/pools/{pool}/decision and decides alone only while it holds none (its ttl ran out, or none came yet). With bootstrap: true, /readyz waits for a first decision. The operator renders FailoverPool spec.consensus.mode here.', default: D.consensus.mode }),
      },
      { doc: 'One decision across proxy replicas (Kubernetes; a VeloFlux extension of the seed format).' },
    ),
  },
  { doc: 'A set of backends for one application.' },
);

export const routeSchema = s.object(
  {
    host: s.optional(s.string({ doc: 'Host to match: exact ("app.example.com") or a suffix ("*.example.com"); omitted matches any host.', pattern: HOST, patternText: 'a host name or "*.suffix"' })),
    path_prefix: s.string({ doc: 'Path prefix to match; the longest matching prefix wins.', default: '/', pattern: /^\//, patternText: 'a path starting with "/"' }),
    load_balancing: s.object(
      { method: s.oneOf(['failover'], { doc: 'Load-balancing method.', default: 'failover' }) },
      { doc: 'Load balancing for this route.' },
    ),
    pool: s.string({ doc: 'Name of the pool that serves this route.', minLength: 1 }),
  },
  { doc: 'Maps host and path prefix to a pool.' },
);

const logLevels = ['trace', 'debug', 'info', 'warning', 'warn', 'error'] as const;

export const channelSchema = s.tagged(
  'type',
  {
    log: s.object({ level: s.oneOf(logLevels, { doc: 'Log level of failover notifications.', default: D.notification.logLevel }) }, { doc: 'Structured log lines (stdout).' }),
    email: s.object(
      {
        smtp_server: s.string({ doc: 'SMTP server host name.', minLength: 1 }),
        smtp_port: s.int({ doc: 'SMTP port.', default: D.notification.smtpPort, min: 1, max: 65535 }),
        smtp_user: s.optional(s.string({ doc: 'SMTP user for authentication.' })),
        smtp_password: s.optional(s.secret(s.string({ doc: 'SMTP password (a secret: never logged).' }))),
        from: s.optional(s.string({ doc: 'Sender address.', defaultText: 'smtp_user when it is an address, else veloflux@localhost' })),
        recipients: s.list(s.string({ doc: 'Recipient address.', minLength: 3 }), { doc: 'Who receives the messages.', minItems: 1 }),
        tls: s.optional(s.oneOf(['starttls', 'tls', 'none'], { doc: 'Transport security: starttls (plain connection upgraded with STARTTLS, which the server must offer), tls (TLS from the first byte), none (no encryption: only for a relay on the same host).', defaultText: 'tls on port 465, else starttls' })),
        ca_file: s.optional(s.string({ doc: 'PEM file of CA certificates to trust for this server, in addition to the system ones (a private or self-signed relay); read at each delivery.', minLength: 1 })),
        timeout: dur('How long one delivery attempt may take (connection, greeting and each SMTP command); 3 attempts with backoff (docs/notifications.md).', D.notification.emailTimeoutMs),
      },
      { doc: 'Email through an SMTP server.' },
    ),
    webhook: s.object(
      {
        url: s.secret(s.string({ doc: 'Where to POST (a secret: never logged).', pattern: /^https?:\/\/\S+$/, patternText: 'an http:// or https:// URL' })),
        format: s.oneOf(['slack', 'discord', 'generic'], { doc: 'Body format.', default: D.notification.webhookFormat }),
        secret: s.optional(s.secret(s.string({ doc: 'Shared secret: each POST carries `X-VeloFlux-Signature: sha256=<hex HMAC-SHA256 of the body>` (never logged; docs/notifications.md).', minLength: 1 }))),
        timeout: dur('How long one POST may take (connect, response headers and body); 3 attempts with backoff (docs/notifications.md).', D.notification.webhookTimeoutMs),
      },
      { doc: 'HTTP webhook (Slack, Discord or generic JSON).' },
    ),
  },
  { doc: 'A notification channel.' },
);

export const failoverSchema = s.object(
  {
    enabled: s.bool({ doc: 'Automatic failover; false keeps traffic on level 0 (manual activation still works).', default: D.failover.enabled }),
    ...policyFields,
    drain_timeout: dur('WebSocket tunnels and HTTP/2 streams open on a level that loses its traffic keep running this long, then are closed (WebSocket close 1001, gRPC UNAVAILABLE), so clients reconnect onto the level now serving.', D.drainTimeoutMs),
    notification: s.object(
      {
        enabled: s.bool({ doc: 'Send notifications.', default: D.notification.enabled }),
        channels: s.list(channelSchema, { doc: 'Where notifications go.', default: [] }),
      },
      { doc: 'Failover notifications.' },
    ),
  },
  { doc: 'Failover behaviour for every pool (a pool may override it).' },
);

/** `workers`: a count, or "auto" for one per core. */
const workersSchema: Schema<number | 'auto'> = {
  doc: 'Data-plane worker processes: a number, or "auto" for one per core. Health checks run once, in the main process.',
  fallback: { value: D.dataplane.workers },
  optional: false,
  parse(v, path, ctx) {
    if (v === 'auto') return 'auto';
    if (typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 256) return v;
    ctx.issues.push({ path, message: `must be a whole number from 1 to 256 or "auto", got ${s.show(v)}` });
    return s.INVALID;
  },
  describe: () => ({ type: 'string', description: workersSchema.doc, default: D.dataplane.workers }),
};

export const dataplaneSchema = s.object(
  {
    workers: workersSchema,
    connect_timeout: dur('Time allowed to connect to a backend.', D.dataplane.connectTimeoutMs),
    header_timeout: dur('Time allowed for a backend to start answering (response headers) after the request is sent.', D.dataplane.headerTimeoutMs),
    idle_timeout: dur('Longest silence while a request or response body is streaming, and on an upgraded (WebSocket) connection in both directions.', D.dataplane.idleTimeoutMs),
    keepalive_timeout: dur('How long an idle client connection is kept open.', D.dataplane.keepAliveTimeoutMs),
    client_header_timeout: dur('Time a client has to send a whole request head (request line and headers), counted from its connection or its previous request; a connection that sends nothing is closed after it too (nginx: client_header_timeout).', D.dataplane.clientHeaderTimeoutMs),
    max_attempts: s.int({ doc: 'Attempts per request, the first included (per-request rescue on other backends).', default: D.dataplane.maxAttempts, min: 1, max: 10 }),
    young_generation_mb: s.int({ doc: 'Memory of each worker\'s V8 young generation, in MB: smaller keeps worker memory low, larger spends less CPU on garbage collection under heavy load.', default: D.dataplane.youngGenerationMb, min: 3, max: 1024 }),
    retry_budget_percent: s.int({ doc: 'Retries onto the same level as the failed attempt may be at most this percent of the requests in flight (at least 16); a rescue onto another level is never limited.', default: D.dataplane.retryBudgetPercent, min: 0, max: 100 }),
  },
  { doc: 'Data-plane tuning (a VeloFlux extension of the seed format).' },
);

export const certificateSchema = s.object(
  {
    cert_file: s.string({ doc: 'PEM file with the certificate chain (leaf first); re-read when its directory changes (a Kubernetes Secret\'s `..data` swap), no restart.', minLength: 1 }),
    key_file: s.string({ doc: 'PEM file with the private key of that certificate; re-read with it.', minLength: 1 }),
    hosts: s.optional(s.list(s.string({ doc: 'A host name ("api.example.com") or a wildcard ("*.example.com": one label).', pattern: HOST, patternText: 'a host name or "*.suffix"' }), { doc: 'SNI names this certificate is served for; omitted: the default certificate (served when no other matches, or without SNI).', minItems: 1 })),
  },
  { doc: 'One certificate and its key.' },
);

export const tlsSchema = s.object(
  {
    listen: s.string({ doc: 'TLS listen address: ":port" (every interface) or "host:port".', default: D.tls.listen, check: listenCheck }),
    min_version: s.oneOf(['TLSv1.2', 'TLSv1.3'], { doc: 'Lowest TLS version accepted; older handshakes are refused.', default: D.tls.minVersion }),
    alpn: s.list(s.oneOf(['h2', 'http/1.1'], { doc: 'An ALPN protocol.' }), { doc: 'ALPN protocols offered, in preference order; a client that offers none of them is refused, one that offers no ALPN gets HTTP/1.1.', default: [...D.tls.alpn], minItems: 1 }),
    certificates: s.list(certificateSchema, { doc: 'Certificates; the first one without `hosts` is the default (else the first one).', minItems: 1 }),
  },
  { doc: 'A second data-plane listener with TLS termination (SPEC 8); absent: no TLS listener.' },
);

export const accessLogSchema = s.object(
  {
    enabled: s.bool({ doc: 'Write one line per request (client, method, host, path, status, bytes, duration, pool, level, backend, attempts, rescued, hedged, trace id): docs/access-log.md.', default: D.accessLog.enabled }),
    format: s.oneOf(['json', 'combined'], { doc: '`json`: one JSON object per line; `combined`: the Apache/nginx combined format, VeloFlux fields appended as key=value.', default: D.accessLog.format }),
    path: s.string({ doc: '`-` for stdout, or a file, opened for appending and reopened on SIGHUP (log rotation).', default: D.accessLog.path, minLength: 1 }),
    sample: s.number({ doc: 'Share of requests logged, 0 to 1 (0.1 = one in ten, at random).', default: D.accessLog.sample, min: 0, max: 1 }),
  },
  { doc: 'Access log (a VeloFlux extension of the seed format).' },
);

export const configSchema = s.object(
  {
    listen: s.string({ doc: 'Data-plane listen address: ":port" (every interface) or "host:port".', default: D.listen, check: listenCheck }),
    admin: s.object(
      {
        listen: s.string({ doc: 'Admin API listen address: ":port" (every interface) or "host:port".', default: D.adminListen, check: listenCheck }),
        token_file: s.optional(s.string({ doc: 'File holding the admin bearer token (else env VELOFLUX_ADMIN_TOKEN).', minLength: 1 })),
      },
      { doc: 'Admin API.' },
    ),
    region: s.optional(s.string({ doc: 'This proxy\'s region, for locality preference.', minLength: 1 })),
    bootstrap: s.bool({ doc: 'Warm-up (Kubernetes): this is a bootstrap config, so /readyz answers 503 until the proxy runs a config pushed to it (PUT /api/v1/config), and a new pod never enters its Service answering 404. The operator\'s pushed configs do not set it.', default: D.bootstrap }),
    // Empty is valid: a proxy managed by the operator starts with no pools and gets them pushed (and loses them
    // when the last FailoverPool is deleted); every request then answers 404 (no route).
    pools: s.list(poolSchema, { doc: 'Backend pools (none: the proxy answers 404 to everything until a config with pools arrives).', default: [] }),
    tls: s.optional(tlsSchema),
    routes: s.list(routeSchema, { doc: 'Routes from host and path prefix to pools.', default: [] }),
    failover: failoverSchema,
    dataplane: dataplaneSchema,
    access_log: accessLogSchema,
  },
  { doc: 'VeloFlux proxy configuration.' },
);

export type RawConfig = Infer<typeof configSchema>;

/** Every secret field of config.yaml (`s.secret` above), e.g. `failover.notification.channels[].url`. */
export const SECRET_PATHS: readonly string[] = s.secretPaths(configSchema.describe());
export type RawPool = Infer<typeof poolSchema>;
export type RawBackend = Infer<typeof backendSchema>;
export type RawChannel = Infer<typeof channelSchema>;
