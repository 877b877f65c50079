// The questions of `veloflux setup`, once: each has its flag, its prompt, its check and when it is asked. The
// prompts, the flags, `--help`, the "missing: --pool, --primary" message and docs/setup.md all follow this table.
//
// Answers are collected as text (what was typed or passed as a flag) and turned into `Answers` at the end, so a
// prompt and a flag go through the same check.
import { parseArgs } from 'node:util';
import { LOG_LEVELS, STRATEGIES, WEBHOOK_FORMATS, check, checkTimeoutAgainst, defaultAnswers, formatBackup, formatForUrl, parseBackup, splitList } from './answers.ts';
import type { Answers, Target, WebhookFormat } from './answers.ts';

export interface Flat {
  target: string;
  output: string;
  namespace: string;
  proxySelector: string[];
  pool: string;
  host: string;
  pathPrefix: string;
  primaries: string[];
  backups: string[];
  regions: string[];
  healthPath: string;
  healthInterval: string;
  healthTimeout: string;
  expectedStatus: string;
  unhealthyThreshold: string;
  healthyThreshold: string;
  strategy: string;
  recoveryInterval: string;
  delay: string;
  stepPercent: string;
  stepInterval: string;
  logLevel: string;
  email: boolean;
  emailServer: string;
  emailPort: string;
  emailUser: string;
  emailPassword: string;
  emailTo: string[];
  webhook: boolean;
  webhookUrl: string;
  webhookFormat: string;
}

export type Key = keyof Flat;
type Kind = 'input' | 'list' | 'password' | 'select' | 'confirm';

export interface Question {
  readonly key: Key;
  readonly flag: string;
  readonly kind: Kind;
  readonly message: string;
  /** Shown by --help and in docs/setup.md. */
  readonly help: string;
  /** Without an answer and without a default, a non-interactive run fails naming this flag. */
  readonly required?: boolean;
  readonly choices?: readonly { value: string; name: string }[];
  /** Asked only when this holds for the answers so far. */
  readonly when?: (f: Partial<Flat>) => boolean;
  /** One value (a list item for lists) -> undefined or what is wrong; gets the answers so far. */
  readonly check?: (v: string, f: Partial<Flat>) => string | undefined;
  /** Secrets: masked at the prompt, never shown, and (Kubernetes) only in a Secret. */
  readonly secret?: boolean;
  readonly env?: string;
}

const k8s = (f: Partial<Flat>): boolean => f.target === 'kubernetes';
const withEmail = (f: Partial<Flat>): boolean => f.email === true;
const withWebhook = (f: Partial<Flat>): boolean => f.webhook === true;

export const QUESTIONS: readonly Question[] = [
  { key: 'target', flag: 'target', kind: 'select', message: 'What do you want to write?', help: '"config" (a proxy config.yaml, standalone) or "kubernetes" (a FailoverPool manifest and its Secrets)', check: check.target,
    choices: [{ value: 'config', name: 'config      a proxy config.yaml (standalone proxy)' }, { value: 'kubernetes', name: 'kubernetes  a FailoverPool manifest + Secret manifests (operator)' }] },
  { key: 'output', flag: 'output', kind: 'input', message: 'Output file', help: 'file to write (config.yaml / failoverpool.yaml); an existing one is edited' },
  { key: 'namespace', flag: 'namespace', kind: 'input', message: 'Kubernetes namespace', help: 'namespace of the FailoverPool and its Secrets (kubernetes)', when: k8s, check: check.namespace },
  { key: 'proxySelector', flag: 'proxy-selector', kind: 'list', message: 'Labels of the proxy pods that serve this pool (key=value, comma-separated)', help: 'label key=value of the proxy pods (repeatable; kubernetes)', when: k8s, check: check.label },
  { key: 'pool', flag: 'pool', kind: 'input', message: 'Pool name', help: 'name of the pool (one application)', required: true,
    check: (v, f) => check.pool(v) ?? (f.target === 'kubernetes' && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(v) ? `must be a Kubernetes name for a FailoverPool (lower-case letters, digits, "-" and "."), got ${JSON.stringify(v)}` : undefined) },
  { key: 'host', flag: 'host', kind: 'input', message: 'Host (exact or *.example.com; empty = any host)', help: 'host the route matches; empty = any host', check: check.host },
  { key: 'pathPrefix', flag: 'path-prefix', kind: 'input', message: 'Path prefix', help: 'path prefix the route matches', check: check.pathPrefix },
  { key: 'primaries', flag: 'primary', kind: 'list', message: 'Primary backend(s), host:port (kubernetes: or svc/SERVICE:PORT), comma-separated', help: 'primary backend host:port or http(s)://host:port; kubernetes: also svc/SERVICE:PORT, a Service\'s ready endpoints (repeatable)', required: true, check: (v, f) => check.backend(v, f.target) },
  { key: 'backups', flag: 'backup', kind: 'list', message: 'Backup backend(s), host:port (kubernetes: or svc/SERVICE:PORT), @LEVEL for a level other than 1, comma-separated', help: 'backup backend, "addr" (level 1) or "addr@LEVEL"; kubernetes: addr may be svc/SERVICE:PORT (repeatable)', check: (v, f) => check.backup(v, f.target) },
  { key: 'regions', flag: 'region', kind: 'list', message: 'Regions of backends, address=region, comma-separated (empty = none)', help: 'region of a backend, "addr=region" (repeatable)',
    check: (v) => {
      const eq = v.lastIndexOf('=');
      return eq <= 0 ? `must be "address=region", got ${JSON.stringify(v)}` : check.address(v.slice(0, eq)) ?? check.region(v.slice(eq + 1));
    } },
  { key: 'healthPath', flag: 'health-path', kind: 'input', message: 'Health check path', help: 'path probed with GET', check: check.healthPath },
  { key: 'healthInterval', flag: 'health-interval', kind: 'input', message: 'Health check interval', help: 'time between probes (duration: 500ms, 5s, 1m)', check: check.interval },
  { key: 'healthTimeout', flag: 'health-timeout', kind: 'input', message: 'Health check timeout', help: 'probe timeout, less than the interval', check: (v, f) => checkTimeoutAgainst(f.healthInterval ?? '', v) },
  { key: 'expectedStatus', flag: 'expected-status', kind: 'input', message: 'Expected HTTP status of a healthy backend', help: 'status a healthy backend answers (100-599)', check: check.expectedStatus },
  { key: 'unhealthyThreshold', flag: 'unhealthy-threshold', kind: 'input', message: 'Consecutive failures that mark a backend down', help: 'failures that mark a backend down (1-100)', check: check.threshold },
  { key: 'healthyThreshold', flag: 'healthy-threshold', kind: 'input', message: 'Consecutive successes that mark it up again', help: 'successes that mark a backend up (1-100)', check: check.threshold },
  { key: 'strategy', flag: 'strategy', kind: 'select', message: 'Failover strategy', help: 'immediate | graceful | delayed', check: check.strategy,
    choices: STRATEGIES.map((s) => ({ value: s.value, name: `${s.value.padEnd(10)} ${s.explain}` })) },
  { key: 'delay', flag: 'delay', kind: 'input', message: 'Delay (how long a failure must last before traffic moves)', help: 'delayed strategy: how long a failure must last before the pool\'s routing changes (duration)', when: (f) => f.strategy === 'delayed', check: check.delay },
  { key: 'stepPercent', flag: 'step-percent', kind: 'input', message: 'Step percent (share of traffic moved per step)', help: 'graceful strategy: percent of traffic moved per step (1-100; failback steps too)', when: (f) => f.strategy === 'graceful', check: check.stepPercent },
  { key: 'stepInterval', flag: 'step-interval', kind: 'input', message: 'Step interval (time between steps)', help: 'graceful strategy: time between steps (duration)', when: (f) => f.strategy === 'graceful', check: check.stepInterval },
  { key: 'recoveryInterval', flag: 'recovery-interval', kind: 'input', message: 'Recovery interval (how long the primary must stay healthy before traffic returns)', help: 'duration the primary must stay healthy before failback', check: check.recoveryInterval },
  { key: 'logLevel', flag: 'log-level', kind: 'select', message: 'Log level of failover notifications', help: LOG_LEVELS.join(' | '), check: check.logLevel,
    choices: LOG_LEVELS.map((l) => ({ value: l, name: l })) },
  { key: 'email', flag: 'email', kind: 'confirm', message: 'Send email notifications?', help: 'email notifications (implied by --email-server; --no-email removes them)' },
  { key: 'emailServer', flag: 'email-server', kind: 'input', message: 'SMTP server', help: 'SMTP server host name', when: withEmail, required: true, check: check.emailServer },
  { key: 'emailPort', flag: 'email-port', kind: 'input', message: 'SMTP port', help: 'SMTP port (1-65535)', when: withEmail, check: check.emailPort },
  { key: 'emailUser', flag: 'email-user', kind: 'input', message: 'SMTP user (empty = no authentication)', help: 'SMTP user; empty = no authentication', when: withEmail },
  { key: 'emailPassword', flag: 'email-password', kind: 'password', message: 'SMTP password', help: 'SMTP password (secret; prefer --email-password-file or env VELOFLUX_SMTP_PASSWORD)', when: (f) => withEmail(f) && (f.emailUser ?? '') !== '', secret: true, env: 'VELOFLUX_SMTP_PASSWORD' },
  { key: 'emailTo', flag: 'email-to', kind: 'list', message: 'Recipients, comma-separated', help: 'recipient address (repeatable)', when: withEmail, required: true, check: check.recipient },
  { key: 'webhook', flag: 'webhook', kind: 'confirm', message: 'Send webhook notifications (Slack, Discord, generic JSON)?', help: 'webhook notifications (implied by --webhook-url; --no-webhook removes them)' },
  { key: 'webhookUrl', flag: 'webhook-url', kind: 'password', message: 'Webhook URL (a secret: Slack and Discord URLs carry a token)', help: 'webhook URL (secret; prefer --webhook-url-file or env VELOFLUX_WEBHOOK_URL)', when: withWebhook, required: true, secret: true, env: 'VELOFLUX_WEBHOOK_URL', check: check.webhookUrl },
  { key: 'webhookFormat', flag: 'webhook-format', kind: 'select', message: 'Webhook format', help: WEBHOOK_FORMATS.join(' | '), when: withWebhook, check: check.webhookFormat,
    choices: WEBHOOK_FORMATS.map((w) => ({ value: w, name: w })) },
];

/** Flags that are not answers. */
export const ACTION_FLAGS = {
  'email-password-file': { type: 'string', help: 'read the SMTP password from this file (keeps it out of shell history)' },
  'webhook-url-file': { type: 'string', help: 'read the webhook URL from this file' },
  'no-email': { type: 'boolean', help: 'no email notifications (removes an existing email channel)' },
  'no-webhook': { type: 'boolean', help: 'no webhook notifications (removes an existing webhook channel)' },
  apply: { type: 'boolean', help: 'after writing, apply: PUT to the proxy admin API (config) or kubectl apply (kubernetes)' },
  'admin-url': { type: 'string', help: 'admin API of the running proxy, e.g. http://127.0.0.1:9000 (with --apply)' },
  'admin-token': { type: 'string', help: 'admin API bearer token (prefer env VELOFLUX_ADMIN_TOKEN)' },
  yes: { type: 'boolean', help: 'ask nothing: use flags, the existing file and defaults; write without confirming' },
  help: { type: 'boolean', help: 'this text' },
} as const;

export function parseOptions(): Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const q of QUESTIONS) options[q.flag] = q.kind === 'confirm' ? { type: 'boolean' } : q.kind === 'list' ? { type: 'string', multiple: true } : { type: 'string' };
  for (const [name, o] of Object.entries(ACTION_FLAGS)) options[name] = { type: o.type };
  options['yes'] = { type: 'boolean', short: 'y' };
  options['help'] = { type: 'boolean', short: 'h' };
  return options;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export function parseFlags(argv: readonly string[]): { values: FlagValues } | { error: string } {
  try {
    const { values } = parseArgs({ args: [...argv], options: parseOptions(), allowPositionals: false, strict: true });
    return { values: values as FlagValues };
  } catch (err) {
    return { error: flagError((err as Error).message) };
  }
}

/** node's parseArgs messages, shortened to one line that names the flag ("unknown flag --frobnicate"). */
export function flagError(message: string): string {
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag ${unknown[1]}`;
  return message.split('\n')[0]?.replace(/\. To specify .*$/, '') ?? message;
}

export function usage(): string {
  const rows = QUESTIONS.map((q) => [`--${q.flag}${q.kind === 'confirm' ? '' : q.kind === 'list' ? ' V...' : ' V'}`, q.help]);
  rows.push(...Object.entries(ACTION_FLAGS).map(([n, o]) => [`--${n}${o.type === 'string' ? ' V' : ''}`, o.help]));
  const w = Math.max(...rows.map((r) => (r[0] as string).length));
  return [
    'usage: veloflux setup [flags]',
    '',
    'Asks for what a failover config needs (each prompt has a default and is checked), shows the result, writes it,',
    'and can apply it. Every answer is also a flag; with no terminal (or --yes) nothing is asked. docs/setup.md',
    '',
    ...rows.map(([f, h]) => `  ${(f as string).padEnd(w)}  ${h}`),
  ].join('\n');
}

/**
 * Flag values (and secrets from env or files) -> answers given, plus every bad value (flag, what is wrong).
 * `readSecret` reads a --*-file flag (I/O kept out: the caller passes it).
 */
export function givenFromFlags(values: FlagValues, env: Readonly<Record<string, string | undefined>>, readSecret: (file: string) => string): { given: Partial<Flat>; errors: string[] } {
  const given: Record<string, unknown> = {};
  const errors: string[] = [];
  for (const q of QUESTIONS) {
    const v = values[q.flag];
    if (v === undefined) continue;
    if (q.kind === 'list') {
      const items = (v as string[]).flatMap((x) => splitList(x));
      given[q.key] = items;
    } else {
      given[q.key] = v;
    }
  }
  const fromFile = (flag: string): string | undefined => {
    const file = values[flag];
    if (typeof file !== 'string') return undefined;
    try {
      return readSecret(file).replace(/\r?\n$/, '');
    } catch (err) {
      errors.push(`--${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return undefined;
    }
  };
  const pw = fromFile('email-password-file') ?? env['VELOFLUX_SMTP_PASSWORD'];
  if (given['emailPassword'] === undefined && pw !== undefined) given['emailPassword'] = pw;
  const url = fromFile('webhook-url-file') ?? env['VELOFLUX_WEBHOOK_URL'];
  if (given['webhookUrl'] === undefined && url !== undefined && url !== '') given['webhookUrl'] = url;
  // An email or webhook flag turns the channel on; --no-email / --no-webhook turn it off.
  if (values['no-email'] === true) given['email'] = false;
  else if (['email-server', 'email-to', 'email-port', 'email-user'].some((f) => values[f] !== undefined)) given['email'] ??= true;
  if (values['no-webhook'] === true) given['webhook'] = false;
  else if (values['webhook-url'] !== undefined || values['webhook-url-file'] !== undefined || values['webhook-format'] !== undefined) given['webhook'] ??= true;
  if (given['email'] === false) for (const k of ['emailServer', 'emailPort', 'emailUser', 'emailPassword', 'emailTo']) delete given[k];
  if (given['webhook'] === false) for (const k of ['webhookUrl', 'webhookFormat']) delete given[k];

  const f = given as Partial<Flat>;
  for (const q of QUESTIONS) {
    const v = given[q.key];
    if (v === undefined || !q.check) continue;
    for (const item of Array.isArray(v) ? v : [v]) {
      const problem = q.check(String(item), f);
      if (problem) errors.push(`--${q.flag}: ${problem}`);
    }
  }
  return { given: f, errors };
}

/** Answers -> their text form (prompt defaults). */
export function flatten(a: Answers): Flat {
  return {
    target: a.target,
    output: a.output,
    namespace: a.namespace,
    proxySelector: Object.entries(a.proxySelector).map(([k, v]) => `${k}=${v}`),
    pool: a.pool,
    host: a.host,
    pathPrefix: a.pathPrefix,
    primaries: [...a.primaries],
    backups: a.backups.map(formatBackup),
    regions: Object.entries(a.regions).map(([addr, r]) => `${addr}=${r}`),
    healthPath: a.health.path,
    healthInterval: a.health.interval,
    healthTimeout: a.health.timeout,
    expectedStatus: String(a.health.expectedStatus),
    unhealthyThreshold: String(a.health.unhealthyThreshold),
    healthyThreshold: String(a.health.healthyThreshold),
    strategy: a.strategy,
    recoveryInterval: a.recoveryInterval,
    delay: a.delay,
    stepPercent: String(a.stepPercent),
    stepInterval: a.stepInterval,
    logLevel: a.logLevel,
    email: a.email !== undefined,
    emailServer: a.email?.server ?? '',
    emailPort: String(a.email?.port ?? 587),
    emailUser: a.email?.user ?? '',
    emailPassword: a.email?.password ?? '',
    emailTo: [...(a.email?.recipients ?? [])],
    webhook: a.webhook !== undefined,
    webhookUrl: a.webhook?.url ?? '',
    webhookFormat: a.webhook?.format ?? 'generic',
  };
}

/** Text form -> answers (every value already checked). */
export function unflatten(f: Flat): Answers {
  const regions: Record<string, string> = {};
  for (const r of f.regions) {
    const eq = r.lastIndexOf('=');
    regions[r.slice(0, eq)] = r.slice(eq + 1);
  }
  const selector: Record<string, string> = {};
  for (const l of f.proxySelector) {
    const eq = l.indexOf('=');
    selector[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return {
    target: f.target as Target,
    output: f.output,
    namespace: f.namespace,
    proxySelector: selector,
    pool: f.pool,
    host: f.host,
    pathPrefix: f.pathPrefix,
    primaries: f.primaries,
    backups: f.backups.map((b) => parseBackup(b)).filter((b) => typeof b !== 'string'),
    regions,
    health: {
      path: f.healthPath,
      interval: f.healthInterval,
      timeout: f.healthTimeout,
      expectedStatus: Number(f.expectedStatus),
      unhealthyThreshold: Number(f.unhealthyThreshold),
      healthyThreshold: Number(f.healthyThreshold),
    },
    strategy: f.strategy as Answers['strategy'],
    recoveryInterval: f.recoveryInterval,
    delay: f.delay,
    stepPercent: Number(f.stepPercent),
    stepInterval: f.stepInterval,
    logLevel: f.logLevel,
    email: f.email ? { server: f.emailServer, port: Number(f.emailPort), user: f.emailUser, password: f.emailUser === '' ? '' : f.emailPassword, recipients: f.emailTo } : undefined,
    webhook: f.webhook ? { url: f.webhookUrl, format: f.webhookFormat as WebhookFormat } : undefined,
  };
}

/** The prompts, as the flow needs them (an @inquirer/prompts implementation lives in prompt.ts). */
export interface Ask {
  input(q: { message: string; default?: string; validate: (v: string) => true | string }): Promise<string>;
  password(q: { message: string; validate: (v: string) => true | string }): Promise<string>;
  select(q: { message: string; choices: readonly { value: string; name: string }[]; default?: string }): Promise<string>;
  confirm(q: { message: string; default: boolean }): Promise<boolean>;
  /** A line of information between prompts. */
  say(text: string): void;
}

function isEmpty(v: unknown): boolean {
  return v === undefined || (Array.isArray(v) && v.length === 0) || v === '';
}

/**
 * Walks the questions in order. A question answered by a flag is not asked. Otherwise, with `ask` it is asked
 * with `defaults` as its default; without `ask` the default is taken, and a required question without one is
 * missing. `defaultsFor` is called once target and output are known, so an existing file can supply defaults.
 */
export async function collect(
  given: Partial<Flat>,
  defaultsFor: (target: Target, output: string) => Promise<Flat>,
  ask: Ask | undefined,
): Promise<{ flat: Flat } | { missing: string[] }> {
  const f: Partial<Flat> = {};
  const missing: string[] = [];
  let defaults: Flat = flatten(defaultAnswers((given.target as Target | undefined) ?? 'config'));
  for (const q of QUESTIONS) {
    // First question after the output file: the file (if it exists) now supplies the defaults.
    if (q.key === 'namespace') defaults = await defaultsFor(f.target as Target, f.output as string);
    if (q.when && !q.when(f)) {
      (f as Record<string, unknown>)[q.key] = defaults[q.key];
      continue;
    }
    const g = given[q.key];
    if (g !== undefined) {
      (f as Record<string, unknown>)[q.key] = g;
      if (ask && !q.secret) ask.say(`${q.message}: ${Array.isArray(g) ? g.join(', ') : String(g)} (from --${q.flag})`);
      continue;
    }
    let def = q.key === 'output' ? (defaults.target === f.target ? defaults.output : defaultAnswers(f.target as Target).output) : defaults[q.key];
    // A Slack or Discord URL says its format: suggest it (unless an existing file already chose another).
    if (q.key === 'webhookFormat' && def === 'generic') def = formatForUrl(f.webhookUrl ?? '') ?? def;
    if (!ask) {
      if (q.required && isEmpty(def)) missing.push(`--${q.flag}`);
      (f as Record<string, unknown>)[q.key] = def;
      continue;
    }
    (f as Record<string, unknown>)[q.key] = await askOne(q, def, f, ask);
  }
  if (missing.length > 0) return { missing };
  return { flat: f as Flat };
}

async function askOne(q: Question, def: Flat[Key], f: Partial<Flat>, ask: Ask): Promise<Flat[Key]> {
  const checkOne = (v: string): true | string => (q.check ? q.check(v, f) ?? true : true);
  switch (q.kind) {
    case 'confirm':
      return ask.confirm({ message: q.message, default: def as boolean });
    case 'select':
      return ask.select({ message: q.message, choices: q.choices ?? [], default: def as string });
    case 'password': {
      const current = def as string;
      const message = current === '' ? q.message : `${q.message} (empty keeps the current one)`;
      const v = await ask.password({ message, validate: (v) => (v === '' ? (current !== '' || !q.required ? true : 'is required') : checkOne(v)) });
      return v === '' ? current : v;
    }
    case 'list': {
      const v = await ask.input({
        message: q.message,
        default: (def as string[]).join(', '),
        validate: (text) => {
          const items = splitList(text);
          if (q.required && items.length === 0) return 'give at least one';
          for (const item of items) {
            const r = checkOne(item);
            if (r !== true) return `${item}: ${r}`;
          }
          return true;
        },
      });
      return splitList(v);
    }
    case 'input':
      return ask.input({ message: q.message, default: def as string, validate: (v) => (q.required && v.trim() === '' ? 'is required' : checkOne(v.trim())) }).then((v) => v.trim());
  }
}
