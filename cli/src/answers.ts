// Pure: what `veloflux setup` asks, its defaults, and one check per answer.
//
// Each check parses a one-field fragment with the proxy's own schema (config/schema.ts), so a prompt, a flag and
// the proxy say the same thing about the same bad value ("must be a duration like "2s" ...").
import { DEFAULTS } from '@veloflux/config/defaults';
import { formatDuration, parseDuration } from '@veloflux/config/duration';
import type { Ctx, Schema } from '@veloflux/config/dsl';
import { backendSchema, channelSchema, failoverSchema, healthCheckSchema, poolSchema, routeSchema } from '@veloflux/config/schema';

export type Target = 'config' | 'kubernetes';
export type Strategy = 'immediate' | 'graceful' | 'delayed';
export type WebhookFormat = 'slack' | 'discord' | 'generic';

export const TARGETS: readonly Target[] = ['config', 'kubernetes'];
export const STRATEGIES: readonly { value: Strategy; explain: string }[] = [
  { value: 'immediate', explain: 'all traffic moves to the backup level at once' },
  { value: 'graceful', explain: 'traffic moves step by step (step_percent every step_interval), so the backup warms up' },
  { value: 'delayed', explain: 'nothing moves until the failure has lasted `delay`; short blips declare nothing' },
];
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error'] as const;
export const WEBHOOK_FORMATS: readonly WebhookFormat[] = ['slack', 'discord', 'generic'];

export interface Backup {
  readonly address: string;
  /** 1 = first backup, 2 = second backup, ... */
  readonly level: number;
}

export interface Email {
  readonly server: string;
  readonly port: number;
  /** '' = no SMTP authentication. */
  readonly user: string;
  /** A secret: masked at the prompt and in what is shown; only in config.yaml (0600) or a Secret. */
  readonly password: string;
  readonly recipients: readonly string[];
}

export interface Webhook {
  /** A secret (Slack and Discord URLs carry a token). */
  readonly url: string;
  readonly format: WebhookFormat;
}

export interface Answers {
  readonly target: Target;
  readonly output: string;
  /** Kubernetes target: namespace of the FailoverPool and its Secrets. */
  readonly namespace: string;
  /** Kubernetes target: labels of the proxy pods this pool is pushed to. */
  readonly proxySelector: Readonly<Record<string, string>>;
  readonly pool: string;
  /** '' = any host. */
  readonly host: string;
  readonly pathPrefix: string;
  readonly primaries: readonly string[];
  readonly backups: readonly Backup[];
  /** Region by backend address (only backends that have one). */
  readonly regions: Readonly<Record<string, string>>;
  readonly health: {
    readonly path: string;
    readonly interval: string;
    readonly timeout: string;
    readonly expectedStatus: number;
    readonly unhealthyThreshold: number;
    readonly healthyThreshold: number;
  };
  readonly strategy: Strategy;
  readonly recoveryInterval: string;
  /** delayed: how long a failure must last before the pool's routing changes. */
  readonly delay: string;
  /** graceful (and gradual failback): share moved per step, percent, and time between steps. */
  readonly stepPercent: number;
  readonly stepInterval: string;
  readonly logLevel: string;
  readonly email: Email | undefined;
  readonly webhook: Webhook | undefined;
}

const D = DEFAULTS;

export const DEFAULT_OUTPUT: Record<Target, string> = { config: 'config.yaml', kubernetes: 'failoverpool.yaml' };
/** The label the chart puts on its proxy pods (values.yaml proxyLabel), as the examples and docs use it. */
export const DEFAULT_SELECTOR: Readonly<Record<string, string>> = { 'veloflux.io/proxy': 'true' };

/** A Service backend of a FailoverPool (kubernetes target): "svc/NAME:PORT", PORT a number or a port name. */
export const SERVICE_BACKEND = /^svc\/([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?):([1-9]\d{0,4}|[a-z]([-a-z0-9]{0,13}[a-z0-9])?)$/;

/** The webhook format a URL's host says: Slack and Discord incoming webhooks. */
export function formatForUrl(url: string): WebhookFormat | undefined {
  let host: string;
  try { host = new URL(url).hostname.toLowerCase(); } catch { return undefined; }
  if (host === 'hooks.slack.com' || host.endsWith('.slack.com')) return 'slack';
  if (host === 'discord.com' || host === 'discordapp.com' || host.endsWith('.discord.com')) return 'discord';
  return undefined;
}

/** Answers nobody has to give (pool and primaries have none: they are asked, or required as flags). */
export function defaultAnswers(target: Target = 'config'): Answers {
  return {
    target,
    output: DEFAULT_OUTPUT[target],
    namespace: 'default',
    proxySelector: DEFAULT_SELECTOR,
    pool: '',
    host: '',
    pathPrefix: '/',
    primaries: [],
    backups: [],
    regions: {},
    health: {
      path: D.healthCheck.path,
      interval: formatDuration(D.failover.checkIntervalMs),
      timeout: formatDuration(D.healthCheck.timeoutMs),
      expectedStatus: D.healthCheck.expectedStatus,
      unhealthyThreshold: D.healthCheck.unhealthyThreshold,
      healthyThreshold: D.healthCheck.healthyThreshold,
    },
    strategy: D.failover.strategy,
    recoveryInterval: formatDuration(D.failover.recoveryIntervalMs),
    delay: formatDuration(D.failover.delayMs),
    stepPercent: D.failover.stepPercent,
    stepInterval: formatDuration(D.failover.stepIntervalMs),
    logLevel: D.notification.logLevel,
    email: undefined,
    webhook: undefined,
  };
}

/** The first problem the schema finds in `fragment`, or undefined. Required keys elsewhere are not asked for. */
function firstIssue(schema: Schema<unknown>, fragment: unknown): string | undefined {
  const ctx: Ctx = { issues: [], partial: true };
  schema.parse(fragment, '', ctx);
  return ctx.issues[0]?.message;
}

function int(text: string): number | string {
  return /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : text;
}

/** A backend of either target; the kubernetes target also takes a Service, "svc/NAME:PORT". */
function checkBackend(v: string, target: string | undefined): string | undefined {
  if (v.startsWith('svc/')) {
    if (target !== 'kubernetes') return `a Service backend ("svc/NAME:PORT") is for the kubernetes target; a config.yaml needs "host:port", got ${JSON.stringify(v)}`;
    return SERVICE_BACKEND.test(v) ? undefined : `must be "svc/NAME:PORT" with a Service name and a port number or name, got ${JSON.stringify(v)}`;
  }
  return firstIssue(backendSchema, { address: v });
}

/** One check per answer: the text as typed (at a prompt or in a flag) -> undefined, or what is wrong. */
export const check = {
  target: (v: string) => (TARGETS as readonly string[]).includes(v) ? undefined : `must be one of "config", "kubernetes", got ${JSON.stringify(v)}`,
  pool: (v: string) => firstIssue(poolSchema, { name: v }),
  host: (v: string) => (v === '' ? undefined : firstIssue(routeSchema, { host: v })),
  pathPrefix: (v: string) => firstIssue(routeSchema, { path_prefix: v }),
  address: (v: string) => firstIssue(backendSchema, { address: v }),
  backend: (v: string, target?: string) => checkBackend(v, target),
  backup: (v: string, target?: string) => {
    const b = parseBackup(v);
    return typeof b === 'string' ? b : checkBackend(b.address, target);
  },
  region: (v: string) => (v === '' ? undefined : firstIssue(backendSchema, { region: v })),
  healthPath: (v: string) => firstIssue(healthCheckSchema, { path: v }),
  interval: (v: string) => firstIssue(healthCheckSchema, { interval: v }),
  timeout: (v: string) => firstIssue(healthCheckSchema, { timeout: v }),
  expectedStatus: (v: string) => firstIssue(healthCheckSchema, { expected_status: int(v) }),
  threshold: (v: string) => firstIssue(healthCheckSchema, { unhealthy_threshold: int(v) }),
  strategy: (v: string) => firstIssue(failoverSchema, { strategy: v }),
  recoveryInterval: (v: string) => firstIssue(failoverSchema, { recovery_interval: v }),
  delay: (v: string) => firstIssue(failoverSchema, { delay: v }),
  stepPercent: (v: string) => firstIssue(failoverSchema, { step_percent: int(v) }),
  stepInterval: (v: string) => firstIssue(failoverSchema, { step_interval: v }),
  logLevel: (v: string) => firstIssue(channelSchema, { type: 'log', level: v }),
  emailServer: (v: string) => firstIssue(channelSchema, { type: 'email', smtp_server: v, recipients: ['a@b'] }),
  emailPort: (v: string) => firstIssue(channelSchema, { type: 'email', smtp_server: 'x', smtp_port: int(v), recipients: ['a@b'] }),
  recipient: (v: string) => (/^[^\s@]+@[^\s@]+$/.test(v) ? undefined : `must be an email address like "admin@example.com", got ${JSON.stringify(v)}`),
  webhookUrl: (v: string) => firstIssue(channelSchema, { type: 'webhook', url: v }),
  webhookFormat: (v: string) => firstIssue(channelSchema, { type: 'webhook', url: 'http://x', format: v }),
  namespace: (v: string) => (/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v) ? undefined : `must be a Kubernetes namespace name (lower-case letters, digits and "-", at most 63), got ${JSON.stringify(v)}`),
  label: (v: string) => (/^([a-z0-9.-]+\/)?[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?=([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/.test(v) ? undefined : `must be a label "key=value", got ${JSON.stringify(v)}`),
} as const satisfies Record<string, (v: string, target?: string) => string | undefined>;

/** Timeout must be shorter than the interval (the proxy's cross-field rule, asked here so the prompt can say so). */
export function checkTimeoutAgainst(interval: string, timeout: string): string | undefined {
  const own = check.timeout(timeout);
  if (own) return own;
  const i = parseDuration(interval);
  const t = parseDuration(timeout);
  return i !== undefined && t !== undefined && t >= i ? `must be less than the interval (${interval}), got ${JSON.stringify(timeout)}` : undefined;
}

/** "host:port" (level 1) or "host:port@2". */
export function parseBackup(text: string): Backup | string {
  const at = text.lastIndexOf('@');
  if (at === -1) return { address: text, level: 1 };
  const level = text.slice(at + 1);
  if (!/^\d+$/.test(level) || Number(level) < 1 || Number(level) > 1000) return `must be "host:port" or "host:port@LEVEL" with a level from 1 to 1000, got ${JSON.stringify(text)}`;
  return { address: text.slice(0, at), level: Number(level) };
}

export function formatBackup(b: Backup): string {
  return b.level === 1 ? b.address : `${b.address}@${b.level}`;
}

/** A comma- or space-separated list as typed at a prompt. */
export function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter((x) => x !== '');
}

/** Every address, primaries first, in level order. */
export function allAddresses(a: Pick<Answers, 'primaries' | 'backups'>): string[] {
  return [...a.primaries, ...[...a.backups].sort((x, y) => x.level - y.level).map((b) => b.address)];
}

/** The secrets in a set of answers (to mask them in what is shown, and to test where they end up). */
export function secretsOf(a: Answers): string[] {
  return [a.email?.password, a.webhook?.url].filter((s): s is string => typeof s === 'string' && s !== '');
}
