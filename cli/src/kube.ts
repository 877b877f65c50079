// Pure: answers <-> a FailoverPool manifest and the Secret manifests its references need (the Kubernetes target).
//
// The CRD takes secrets only by reference, so the SMTP credentials and the webhook URL go into Secrets
// (`<pool>-smtp` with keys username/password, `<pool>-webhook` with key url) written to their own file
// (`<output>.secrets.yaml`, mode 0600): the FailoverPool manifest holds no secret and can be committed.
import { parseAllDocuments, stringify } from 'yaml';
import { SERVICE_BACKEND, allAddresses, defaultAnswers } from './answers.ts';
import type { Answers, Backup, Email, Strategy, Webhook, WebhookFormat } from './answers.ts';
import { STRATEGIES } from './answers.ts';
import { levelText, toYaml } from './yaml.ts';

type Obj = Record<string, unknown>;

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface Kube {
  readonly pool: Manifest & { spec: Obj };
  readonly secrets: readonly (Manifest & { type: string; stringData: Record<string, string> })[];
}

/** Problems with a FailoverPool and its Secrets, each "path: message" (empty = valid). */
export type KubeValidator = (kube: Kube) => Promise<string[]> | string[];

export const API_VERSION = 'veloflux.io/v1alpha1';

export function secretsFileFor(output: string): string {
  return output.replace(/(\.ya?ml)?$/, '.secrets.yaml');
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
function defined(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/** A Service backend as setup asks for it: "svc/NAME:PORT". */
function serviceKey(s: { name: string; port: number | string }): string {
  return `svc/${s.name}:${s.port}`;
}

/** The answers as a FailoverPool and its Secrets; editing keeps spec fields setup does not ask about. */
export function buildKube(a: Answers, existing?: { pool?: Manifest; secrets: Manifest[] }): Kube {
  const oldSpec: Obj = isObj(existing?.pool?.['spec']) ? (existing.pool['spec'] as Obj) : {};
  const oldBackends = Array.isArray(oldSpec['backends']) ? (oldSpec['backends'] as Obj[]) : [];
  const weights = new Map(oldBackends.map((b) => [isObj(b['service']) ? serviceKey(b['service'] as { name: string; port: number | string }) : b['address'], b['weight']]));
  const levelOf = new Map<string, number>([...a.primaries.map((p) => [p, 0] as const), ...a.backups.map((b) => [b.address, b.level] as const)]);
  const healthCheck = {
    path: a.health.path,
    interval: a.health.interval,
    timeout: a.health.timeout,
    expectedStatus: a.health.expectedStatus,
    unhealthyThreshold: a.health.unhealthyThreshold,
    healthyThreshold: a.health.healthyThreshold,
  };
  const backends = allAddresses(a).map((address) => {
    // "svc/NAME:PORT": the Service's ready endpoints (the operator resolves them).
    const svc = SERVICE_BACKEND.exec(address);
    const target = svc ? { service: { name: svc[1] as string, port: /^\d+$/.test(svc[3] as string) ? Number(svc[3]) : svc[3] as string } } : { address };
    return defined({ ...target, weight: weights.get(svc ? serviceKey(target.service as { name: string; port: number | string }) : address), failoverLevel: levelOf.get(address) ?? 0, region: a.regions[address], healthCheck });
  });
  const secrets: Kube['secrets'][number][] = [];
  const secret = (name: string, stringData: Record<string, string>): void => {
    // The label lets the operator see it: it caches only Secrets labelled veloflux.io/secret=true.
    secrets.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: a.namespace, labels: { 'veloflux.io/secret': 'true' } }, type: 'Opaque', stringData });
  };
  const channels: Obj[] = [{ type: 'log', level: a.logLevel }];
  if (a.email) {
    const withAuth = a.email.user !== '';
    if (withAuth) secret(`${a.pool}-smtp`, { username: a.email.user, password: a.email.password });
    channels.push(defined({ type: 'email', smtpServer: a.email.server, smtpPort: a.email.port, recipients: [...a.email.recipients], credentialsSecretRef: withAuth ? { name: `${a.pool}-smtp` } : undefined }));
  }
  if (a.webhook) {
    secret(`${a.pool}-webhook`, { url: a.webhook.url });
    channels.push({ type: 'webhook', format: a.webhook.format, urlSecretRef: { name: `${a.pool}-webhook` } });
  }
  const oldNotifications = isObj(oldSpec['notifications']) ? oldSpec['notifications'] : {};
  const spec = defined({
    ...oldSpec,
    proxySelector: { matchLabels: { ...a.proxySelector } },
    routes: [defined({ hosts: a.host === '' ? undefined : [a.host], pathPrefix: a.pathPrefix })],
    backends,
    strategy: a.strategy,
    recoveryInterval: a.recoveryInterval,
    ...(a.strategy === 'delayed' ? { delay: a.delay } : {}),
    ...(a.strategy === 'graceful' ? { stepPercent: a.stepPercent, stepInterval: a.stepInterval } : {}),
    notifications: { ...oldNotifications, enabled: oldNotifications['enabled'] ?? true, channels },
  });
  const oldMeta = existing?.pool?.metadata ?? {};
  return {
    pool: { apiVersion: API_VERSION, kind: 'FailoverPool', metadata: { ...oldMeta, name: a.pool, namespace: a.namespace }, spec },
    secrets,
  };
}

const HEADER_POOL = 'FailoverPool written by `veloflux setup` (run it again to edit). No secrets here: they are in the\nSecrets this pool references (see the .secrets.yaml file next to this one). kubectl explain failoverpool.spec';
const HEADER_SECRETS = 'Secrets for the FailoverPool, written by `veloflux setup`. Keep this file out of version control.';

export function kubeText(k: Kube): { pool: string; secrets: string | undefined } {
  const comments: Record<string, string> = {};
  const backends = Array.isArray(k.pool.spec['backends']) ? (k.pool.spec['backends'] as Obj[]) : [];
  backends.forEach((b, i) => { comments[`spec.backends.${i}`] = levelText(typeof b['failoverLevel'] === 'number' ? b['failoverLevel'] : 0); });
  const strategy = STRATEGIES.find((s) => s.value === k.pool.spec['strategy']);
  if (strategy) comments['spec.strategy'] = `${strategy.value}: ${strategy.explain}`;
  comments['spec.proxySelector'] = 'the proxy pods this pool is pushed to';
  const pool = toYaml(k.pool, HEADER_POOL, comments);
  const secrets = k.secrets.length === 0 ? undefined : `# ${HEADER_SECRETS}\n${k.secrets.map((s) => stringify(s, { lineWidth: 0 })).join('---\n')}`;
  return { pool, secrets };
}

/** Every document of a manifest file (and its secrets file): the FailoverPool and the Secrets. */
export function parseManifests(text: string): { pool: Manifest | undefined; secrets: Manifest[] } {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs.map((d) => d.toJS() as unknown).filter(isObj) : [];
  const pool = list.find((d) => d['kind'] === 'FailoverPool') as Manifest | undefined;
  const secrets = list.filter((d) => d['kind'] === 'Secret') as Manifest[];
  return { pool, secrets };
}

function secretData(secrets: readonly Manifest[], name: string | undefined, key: string): string {
  if (!name) return '';
  const s = secrets.find((x) => x.metadata?.name === name);
  const stringData = isObj(s?.['stringData']) ? (s['stringData'] as Record<string, string>) : {};
  if (typeof stringData[key] === 'string') return stringData[key];
  const data = isObj(s?.['data']) ? (s['data'] as Record<string, string>) : {};
  return typeof data[key] === 'string' ? Buffer.from(data[key], 'base64').toString('utf8') : '';
}

/** Answers from an existing FailoverPool (and the Secrets found next to it), for the prompts' defaults. */
export function answersFromManifests(m: { pool: Manifest | undefined; secrets: Manifest[] }, output: string): Partial<Answers> {
  if (!m.pool) return { target: 'kubernetes', output };
  const spec = (isObj(m.pool['spec']) ? m.pool['spec'] : {}) as Obj;
  // A Service backend comes back as "svc/NAME:PORT", as it is asked.
  const backends = (Array.isArray(spec['backends']) ? spec['backends'] : []).filter(isObj)
    .map((b) => (isObj(b['service']) ? { ...b, address: serviceKey(b['service'] as { name: string; port: number | string }) } : b))
    .filter((b) => typeof b['address'] === 'string');
  const level = (b: Obj): number => (typeof b['failoverLevel'] === 'number' ? b['failoverLevel'] : 0);
  const regions: Record<string, string> = {};
  for (const b of backends) if (typeof b['region'] === 'string') regions[b['address'] as string] = b['region'];
  const route = (Array.isArray(spec['routes']) ? spec['routes'] : []).find(isObj) ?? {};
  const hosts = Array.isArray(route['hosts']) ? (route['hosts'] as string[]) : [];
  const hc = (backends.map((b) => b['healthCheck']).find(isObj) ?? {}) as Obj;
  const d = defaultAnswers('kubernetes');
  const selector = isObj(spec['proxySelector']) && isObj(spec['proxySelector']['matchLabels']) ? (spec['proxySelector']['matchLabels'] as Record<string, string>) : d.proxySelector;
  const channels = (isObj(spec['notifications']) && Array.isArray(spec['notifications']['channels']) ? spec['notifications']['channels'] : []).filter(isObj);
  const log = channels.find((c) => c['type'] === 'log');
  const em = channels.find((c) => c['type'] === 'email');
  const wh = channels.find((c) => c['type'] === 'webhook');
  const cred = isObj(em?.['credentialsSecretRef']) ? (em['credentialsSecretRef'] as Obj) : undefined;
  const urlRef = isObj(wh?.['urlSecretRef']) ? (wh['urlSecretRef'] as Obj) : undefined;
  const email: Email | undefined = em ? {
    server: String(em['smtpServer'] ?? ''),
    port: typeof em['smtpPort'] === 'number' ? em['smtpPort'] : 587,
    user: secretData(m.secrets, cred?.['name'] as string | undefined, (cred?.['usernameKey'] as string | undefined) ?? 'username'),
    password: secretData(m.secrets, cred?.['name'] as string | undefined, (cred?.['passwordKey'] as string | undefined) ?? 'password'),
    recipients: Array.isArray(em['recipients']) ? (em['recipients'] as string[]) : [],
  } : undefined;
  const webhook: Webhook | undefined = wh ? { url: secretData(m.secrets, urlRef?.['name'] as string | undefined, (urlRef?.['key'] as string | undefined) ?? 'url'), format: ((wh['format'] as WebhookFormat | undefined) ?? 'generic') } : undefined;
  return {
    target: 'kubernetes',
    output,
    namespace: m.pool.metadata?.namespace ?? d.namespace,
    proxySelector: selector,
    pool: m.pool.metadata?.name ?? '',
    host: hosts[0] ?? '',
    pathPrefix: typeof route['pathPrefix'] === 'string' ? route['pathPrefix'] : '/',
    primaries: backends.filter((b) => level(b) === 0).map((b) => b['address'] as string),
    backups: backends.filter((b) => level(b) > 0).map((b): Backup => ({ address: b['address'] as string, level: level(b) })),
    regions,
    health: {
      path: typeof hc['path'] === 'string' ? hc['path'] : d.health.path,
      interval: typeof hc['interval'] === 'string' ? hc['interval'] : typeof spec['checkInterval'] === 'string' ? spec['checkInterval'] : d.health.interval,
      timeout: typeof hc['timeout'] === 'string' ? hc['timeout'] : d.health.timeout,
      expectedStatus: typeof hc['expectedStatus'] === 'number' ? hc['expectedStatus'] : d.health.expectedStatus,
      unhealthyThreshold: typeof hc['unhealthyThreshold'] === 'number' ? hc['unhealthyThreshold'] : d.health.unhealthyThreshold,
      healthyThreshold: typeof hc['healthyThreshold'] === 'number' ? hc['healthyThreshold'] : d.health.healthyThreshold,
    },
    strategy: (spec['strategy'] as Strategy | undefined) ?? d.strategy,
    recoveryInterval: typeof spec['recoveryInterval'] === 'string' ? spec['recoveryInterval'] : d.recoveryInterval,
    delay: typeof spec['delay'] === 'string' ? spec['delay'] : d.delay,
    stepPercent: typeof spec['stepPercent'] === 'number' ? spec['stepPercent'] : d.stepPercent,
    stepInterval: typeof spec['stepInterval'] === 'string' ? spec['stepInterval'] : d.stepInterval,
    logLevel: typeof log?.['level'] === 'string' ? (log['level'] === 'warn' ? 'warning' : log['level']) : d.logLevel,
    email,
    webhook,
  };
}
