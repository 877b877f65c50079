// The FailoverPool's CEL rules (x-kubernetes-validations), each with its meaning in JavaScript next to it: one
// source for what the apiserver checks (crd.ts writes `rule` and `message` into the CRD) and for the local check of
// `veloflux setup` (cli/src/kube-validate.ts runs `check` for a rule it finds in the shipped CRD). A rule in the CRD
// without a check here is reported by that validator, so the two cannot drift. test/operator/crd.test.ts runs both
// against the real apiserver.
import { DEFAULTS } from '@veloflux/config/defaults';
import { formatDuration, parseDuration } from '@veloflux/config/duration';

export interface Rule {
  /** CEL, as the CRD states it. */
  readonly rule: string;
  readonly message: string;
  readonly fieldPath?: string;
  /** What the rule means, on the value at the rule's place (`self`). */
  readonly check: (self: unknown) => boolean;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const has = (o: unknown, k: string): boolean => isObj(o) && o[k] !== undefined;
const field = (o: unknown, k: string): unknown => (isObj(o) ? o[k] : undefined);
const dur = (v: unknown): number => (typeof v === 'string' ? parseDuration(v) ?? Number.NaN : Number.NaN);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const none = (o: unknown, keys: readonly string[]): boolean => !keys.some((k) => has(o, k));

/** Inline secrets the CRD declares only to refuse them: field name -> the reference to use instead. */
export const INLINE_SECRET_FIELDS: Readonly<Record<string, string>> = {
  smtpUser: 'credentialsSecretRef', smtpPassword: 'credentialsSecretRef', username: 'credentialsSecretRef', password: 'credentialsSecretRef',
  url: 'urlSecretRef', webhookUrl: 'urlSecretRef', token: 'urlSecretRef',
  secret: 'hmacSecretRef', hmacSecret: 'hmacSecretRef',
};

export const INLINE_SECRET_RULES: readonly Rule[] = Object.entries(INLINE_SECRET_FIELDS).map(([name, ref]) => ({
  rule: `!has(self.${name})`,
  message: `${name} is not allowed inline (the FailoverPool and its last-applied annotation would store the secret): put it in a Secret labelled veloflux.io/secret: "true" and reference it with ${ref}`,
  fieldPath: `.${name}`,
  check: (s) => !has(s, name),
}));

const CHECK_DEFAULT = formatDuration(DEFAULTS.failover.checkIntervalMs);

export const RULES = {
  backendTarget: {
    rule: 'has(self.address) != has(self.service)', message: 'a backend has exactly one of address and service',
    check: (s) => has(s, 'address') !== has(s, 'service'),
  },
  stepPercent: {
    rule: 'self >= 1 && self <= 100', message: 'stepPercent must be from 1 to 100',
    check: (s) => typeof s === 'number' && s >= 1 && s <= 100,
  },
  emailFields: {
    rule: "self.type == 'email' ? has(self.smtpServer) && has(self.recipients) : !has(self.smtpServer) && !has(self.recipients) && !has(self.credentialsSecretRef) && !has(self.smtpPort) && !has(self.from) && !has(self.tls)",
    message: 'smtpServer and recipients are required for type email, and email fields are allowed only there',
    check: (s) => (field(s, 'type') === 'email' ? has(s, 'smtpServer') && has(s, 'recipients') : none(s, ['smtpServer', 'recipients', 'credentialsSecretRef', 'smtpPort', 'from', 'tls'])),
  },
  webhookFields: {
    rule: "self.type == 'webhook' ? has(self.urlSecretRef) : !has(self.urlSecretRef) && !has(self.hmacSecretRef) && !has(self.format)",
    message: 'urlSecretRef is required for type webhook, and webhook fields are allowed only there',
    check: (s) => (field(s, 'type') === 'webhook' ? has(s, 'urlSecretRef') : none(s, ['urlSecretRef', 'hmacSecretRef', 'format'])),
  },
  logLevel: {
    rule: "self.type == 'log' || !has(self.level)", message: 'level is allowed only for type log',
    check: (s) => field(s, 'type') === 'log' || !has(s, 'level'),
  },
  logTimeout: {
    rule: "self.type != 'log' || !has(self.timeout)", message: 'timeout is allowed only for types email and webhook',
    check: (s) => field(s, 'type') !== 'log' || !has(s, 'timeout'),
  },
  overrideReason: {
    rule: "self.mode == 'auto' || (has(self.reason) && size(self.reason) > 0)", message: 'override.reason is required when mode is active or inactive',
    check: (s) => field(s, 'mode') === 'auto' || (typeof field(s, 'reason') === 'string' && (field(s, 'reason') as string).length > 0),
  },
  healthCheckHttpOnly: {
    rule: "!has(self.type) || self.type == 'http' || (!has(self.path) && !has(self.expectedStatus))", message: 'healthCheck.path and healthCheck.expectedStatus are only for type http',
    check: (s) => !has(s, 'type') || field(s, 'type') === 'http' || none(s, ['path', 'expectedStatus']),
  },
  healthCheckGrpcOnly: {
    rule: "!has(self.service) || (has(self.type) && self.type == 'grpc')", message: 'healthCheck.service is only for type grpc',
    check: (s) => !has(s, 'service') || field(s, 'type') === 'grpc',
  },
  grpcNeedsHttp2: {
    rule: "!self.backends.exists(b, has(b.healthCheck) && has(b.healthCheck.type) && b.healthCheck.type == 'grpc') || (has(self.protocol) && self.protocol != 'http1')",
    message: 'a grpc health check needs HTTP/2 to the backends: set protocol to h2c, h2 or auto',
    fieldPath: '.protocol',
    check: (s) => !list(field(s, 'backends')).some((b) => field(field(b, 'healthCheck'), 'type') === 'grpc') || (has(s, 'protocol') && field(s, 'protocol') !== 'http1'),
  },
  tlsCaOrSkip: {
    rule: "!has(self.tls) || !has(self.tls.caFile) || !has(self.tls.insecureSkipVerify) || !self.tls.insecureSkipVerify",
    message: 'tls.caFile is not used with tls.insecureSkipVerify: true (nothing is verified); set one or the other',
    fieldPath: '.tls.caFile',
    check: (s) => { const t = field(s, 'tls'); return !isObj(t) || !has(t, 'caFile') || t['insecureSkipVerify'] !== true; },
  },
  levelZero: {
    rule: 'self.backends.exists(b, !has(b.failoverLevel) || b.failoverLevel == 0)', message: 'at least one backend must be at failoverLevel 0', fieldPath: '.backends',
    check: (s) => list(field(s, 'backends')).some((b) => !has(b, 'failoverLevel') || field(b, 'failoverLevel') === 0),
  },
  timeoutBelowInterval: {
    rule: `self.backends.all(b, !has(b.healthCheck) || !has(b.healthCheck.timeout) || duration(b.healthCheck.timeout) < duration(has(b.healthCheck.interval) ? b.healthCheck.interval : (has(self.checkInterval) ? self.checkInterval : '${CHECK_DEFAULT}')))`,
    message: 'healthCheck.timeout must be less than its interval (healthCheck.interval, else spec.checkInterval)',
    fieldPath: '.backends',
    check: (s) => list(field(s, 'backends')).every((b) => {
      const hc = field(b, 'healthCheck');
      if (!isObj(hc) || !has(hc, 'timeout')) return true;
      const interval = has(hc, 'interval') ? hc['interval'] : has(s, 'checkInterval') ? field(s, 'checkInterval') : CHECK_DEFAULT;
      return dur(hc['timeout']) < dur(interval);
    }),
  },
} as const satisfies Record<string, Rule>;

/** Every rule, by its CEL text. */
export const CHECKS: ReadonlyMap<string, (self: unknown) => boolean> = new Map([...INLINE_SECRET_RULES, ...Object.values(RULES)].map((r) => [r.rule, r.check]));

/** A rule as the CRD states it (x-kubernetes-validations entry). */
export function validation(r: Rule): { rule: string; message: string; fieldPath?: string } {
  return { rule: r.rule, message: r.message, ...(r.fieldPath ? { fieldPath: r.fieldPath } : {}) };
}
