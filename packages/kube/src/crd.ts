// The FailoverPool CRD, generated from the proxy's config schema (packages/config/src/schema.ts), so a field
// means the same thing, with the same bounds, default and documentation, in config.yaml and in the CRD.
//
//   npm run crds            writes crds/failoverpool.yaml and the chart's copy (charts/veloflux/crds/, which helm installs)
//   (packages/kube/test/crd.test.ts fails when the committed file is not what this prints)
//
// What comes from the proxy schema: backends (address, weight, failover_level, region, health_check),
// routes (host, path_prefix), the failover policy (strategy, intervals, step_percent...) and the
// notification channels, with snake_case keys turned into camelCase. What only Kubernetes has is added here:
// `service` backends, Secret references instead of inline secrets, `override`, `proxySelector` and the
// status. Cross-field rules the proxy checks in resolve.ts are CEL rules here, so the apiserver refuses
// an invalid FailoverPool before the operator ever renders it.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { Described } from '@veloflux/config/dsl';
import { formatDuration } from '@veloflux/config/duration';
import { backendSchema, channelSchema, failoverSchema, healthCheckSchema, poolSchema, routeSchema } from '@veloflux/config/schema';
import { INLINE_SECRET_FIELDS, INLINE_SECRET_RULES, RULES, validation } from './rules.ts';

export const GROUP = 'veloflux.io';
export const VERSION = 'v1alpha1';
export const PLURAL = 'failoverpools';
export const KIND = 'FailoverPool';
export const CRD_FILE = fileURLToPath(new URL('../../../crds/failoverpool.yaml', import.meta.url));
export const CHART_CRD_FILE = fileURLToPath(new URL('../../../charts/veloflux/crds/failoverpool.yaml', import.meta.url));

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this CRD uses (wire names); setup's local check reads the
 *  shipped CRD with the same type (cli/src/kube-validate.ts). */
export interface Props {
  type?: 'string' | 'integer' | 'number' | 'boolean' | 'object' | 'array';
  description: string;
  default?: unknown;
  enum?: readonly string[];
  pattern?: string;
  format?: string;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  properties?: Record<string, Props>;
  required?: string[];
  items?: Props;
  additionalProperties?: Props;
  'x-kubernetes-int-or-string'?: true;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: { rule: string; message: string; reason?: string; fieldPath?: string }[];
}

/** Same grammar as packages/config/src/duration.ts, which CEL's duration() also accepts. */
const DURATION = '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$';
/** Bounds that keep CEL's cost estimate finite (the apiserver refuses rules it cannot bound). */
const MAX_STRING = 1024;
const MAX_BACKENDS = 256;
const MAX_ROUTES = 128;

export const camel = (key: string): string => key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

function showDefault(d: Described): string | undefined {
  if (d.defaultText !== undefined) return d.defaultText;
  if (d.default === undefined) return undefined;
  return typeof d.default === 'string' ? `"${d.default}"` : JSON.stringify(d.default);
}

/**
 * Described (proxy schema) -> JSONSchemaProps: camelCase keys, the default stated in the description
 * (units are in the proxy's own wording), durations as strings with a pattern.
 */
export function convert(d: Described, rename: (key: string) => string = camel): Props {
  const def = showDefault(d);
  const description = d.format === 'duration'
    ? `${d.description} A duration: a number with a unit (ms, s, m, h), e.g. "500ms", "5s", "1m30s".${def ? ` Default: ${def}.` : ''}`
    : `${d.description}${def ? ` Default: ${def}.` : ''}`;
  const p: Props = { type: d.type, description };
  if (d.default !== undefined && d.type !== 'object' && d.type !== 'array') p.default = d.default;
  if (d.enum) p.enum = d.enum;
  if (d.format === 'duration') p.pattern = DURATION;
  else if (d.pattern) p.pattern = d.pattern;
  if (d.type === 'string' && !d.enum) p.maxLength = MAX_STRING;
  if (d.minimum !== undefined) p.minimum = d.minimum;
  if (d.maximum !== undefined) p.maximum = d.maximum;
  if (d.minItems !== undefined) p.minItems = d.minItems;
  if (d.items) p.items = convert(d.items, rename);
  if (d.properties) {
    p.properties = Object.fromEntries(Object.entries(d.properties).map(([k, v]) => [rename(k), convert(v, rename)]));
    if (d.required?.length) p.required = d.required.map(rename);
  }
  return p;
}

function pick(p: Props, keep: string[]): Props {
  const properties = Object.fromEntries(keep.map((k) => {
    const v = p.properties?.[k];
    if (!v) throw new Error(`proxy schema has no field ${k} (has ${Object.keys(p.properties ?? {}).join(', ')})`);
    return [k, v];
  }));
  const required = p.required?.filter((r) => keep.includes(r));
  return { ...p, properties, ...(required?.length ? { required } : { required: undefined }) };
}

const secretKeyRef = (what: string, defaultKey: string): Props => ({
  type: 'object',
  description: `${what}, read from a Secret in the FailoverPool's namespace (never inline).`,
  required: ['name'],
  properties: {
    name: { type: 'string', maxLength: 253, description: 'Name of the Secret.' },
    key: { type: 'string', maxLength: 253, default: defaultKey, description: `Key in the Secret's data. Default: "${defaultKey}".` },
  },
});

function backends(): Props {
  const backend = convert(backendSchema.describe());
  const props = backend.properties as Record<string, Props>;
  delete props.failover; // `failover: true` is config.yaml shorthand for failoverLevel 1; one spelling here.
  props.failoverLevel = { ...(props.failoverLevel as Props), default: 0, description: 'Failover tier: 0 primary, 1 first backup, 2 second backup, and so on. Default: 0.' };
  props.address = { ...(props.address as Props), description: `${(props.address as Props).description} Exactly one of address and service.` };
  props.healthCheck = { ...(props.healthCheck as Props), 'x-kubernetes-validations': [validation(RULES.healthCheckHttpOnly), validation(RULES.healthCheckGrpcOnly)] };
  props.service = {
    type: 'object',
    description: 'A Service in the FailoverPool\'s namespace: every ready endpoint of its EndpointSlices becomes a backend of this level (same weight, region and health check). Exactly one of address and service.',
    required: ['name', 'port'],
    properties: {
      name: { type: 'string', maxLength: 63, description: 'Name of the Service (EndpointSlices labelled kubernetes.io/service-name=<name>).' },
      port: {
        'x-kubernetes-int-or-string': true,
        description: 'Endpoint port: a port name as listed in the EndpointSlices (the Service port\'s name), or the endpoint (target) port number.',
      },
    },
  };
  return {
    type: 'array',
    description: 'The backends of this pool; at least one at failoverLevel 0.',
    minItems: 1,
    maxItems: MAX_BACKENDS,
    items: {
      ...backend,
      required: [],
      'x-kubernetes-validations': [validation(RULES.backendTarget)],
    },
  };
}

function routes(): Props {
  const route = convert(routeSchema.describe());
  const host = route.properties?.host as Props;
  return {
    type: 'array',
    description: 'Routes to this pool: host names and a path prefix. Two FailoverPools that select the same proxy must not claim the same host and prefix; the later one (by creation time) is refused with reason Conflict.',
    minItems: 1,
    maxItems: MAX_ROUTES,
    items: {
      type: 'object',
      description: 'Maps host names and a path prefix to this pool.',
      properties: {
        hosts: {
          type: 'array',
          description: 'Hosts to match, each exact ("app.example.com") or a suffix ("*.example.com"). Default: empty, which matches any host.',
          maxItems: 64,
          items: { ...host, description: 'Host to match: exact or "*.suffix".', maxLength: 253 },
        },
        pathPrefix: route.properties?.pathPrefix as Props,
      },
    },
  };
}

/** The pool's protocol to its backends (SPEC 8). */
function protocol(): Props {
  return convert((poolSchema.describe().properties as Record<string, Described>).protocol as Described);
}

/** pools[].tls (SPEC 8). Its caFile is read by the proxy: a path in the proxy container, where the chart mounts
 *  proxy.upstreamCA. The operator never reads or ships the CA itself. */
function upstreamTls(): Props {
  const t = convert((poolSchema.describe().properties as Record<string, Described>).tls as Described);
  const ca = t.properties?.caFile;
  if (ca === undefined) throw new Error('pool tls schema lost ca_file');
  ca.description = `${ca.description ?? ''} In Kubernetes: a path in the proxy container. The chart mounts proxy.upstreamCA (a ConfigMap or Secret) at /etc/veloflux/upstream-ca, e.g. /etc/veloflux/upstream-ca/ca.crt.`;
  return t;
}

function policy(): Record<string, Props> {
  const f = convert(failoverSchema.describe()).properties as Record<string, Props>;
  const { enabled, strategy, checkInterval, recoveryInterval, delay, stepPercent, stepInterval } = f as Record<string, Props>;
  return {
    automaticFailover: { ...(enabled as Props), description: (enabled as Props).description.replace('Automatic failover;', 'Automatic failover for this pool;') },
    strategy: strategy as Props,
    checkInterval: checkInterval as Props,
    recoveryInterval: recoveryInterval as Props,
    delay: delay as Props,
    stepPercent: {
      ...(stepPercent as Props),
      'x-kubernetes-validations': [validation(RULES.stepPercent)],
    },
    stepInterval: stepInterval as Props,
    holdDown: f.holdDown as Props,
    rampGate: f.rampGate as Props,
  };
}

/** SPEC 10 per pool: outlierDetection and retry, from the proxy's pool schema. */
function poolV2(): Record<string, Props> {
  const p = convert(poolSchema.describe()).properties as Record<string, Props>;
  const retry = p.retry as Props;
  const perTry = retry.properties?.perTryTimeout as Props;
  return {
    outlierDetection: p.outlierDetection as Props,
    retry: { ...retry, properties: { ...retry.properties, perTryTimeout: { ...perTry, pattern: `^auto$|${DURATION}` } } },
  };
}

/** failover.failback in config.yaml, and the approval that only Kubernetes has. */
function failback(): Props {
  const mode = convert(failoverSchema.describe()).properties?.failback as Props;
  return {
    type: 'object',
    description: 'Failback approval (SPEC 10). Default: mode auto.',
    properties: {
      mode: { ...mode, description: mode.description.replace("or, in Kubernetes, the FailoverPool's spec.failback.approve", 'or spec.failback.approve below') },
      approve: {
        type: 'object',
        description: 'Approves the failback the pool awaits (status.failback.awaitingApproval): set approvedAt to the current time (e.g. kubectl patch fp NAME --type merge -p \'{"spec":{"failback":{"approve":{"approvedAt":"2026-01-02T03:04:05Z"}}}}\'). Each new approvedAt approves the failback awaited when the proxies receive it, once; the same value again approves nothing (idempotent), and one that arrives while nothing awaits is not kept for later. The last one rendered is in status.failback.approvedAt.',
        required: ['approvedAt'],
        properties: { approvedAt: TS('When the failback was approved (RFC 3339); a new value is a new approval.') },
      },
    },
  };
}

/**
 * config.yaml channel fields the CRD does not offer as such: secrets (offered as Secret references) and
 * ca_file (a path inside the proxy container; the chart will mount CA bundles). packages/kube/test/crd.test.ts
 * fails when the proxy grows a channel field that is neither here nor in the CRD.
 */
export const CHANNEL_FIELDS_NOT_IN_CRD = ['smtp_user', 'smtp_password', 'url', 'secret', 'ca_file'];

/**
 * Names a user may reach for when writing a secret inline, each with the Secret reference to use instead. They
 * are declared in the schema only so that a CEL rule can refuse them: an undeclared field is pruned silently
 * (kubectl apply --validate=false, or any client sending fieldValidation=Ignore), yet the value would still be
 * stored in the kubectl.kubernetes.io/last-applied-configuration annotation. Declared, the apiserver refuses
 * the whole object, whatever the client's validation mode, with a message naming the field to use.
 */
export { INLINE_SECRET_FIELDS } from './rules.ts';

function inlineSecretProps(): Record<string, Props> {
  return Object.fromEntries(Object.entries(INLINE_SECRET_FIELDS).map(([name, ref]) => [name, {
    type: 'string', maxLength: MAX_STRING,
    description: `Not allowed: a secret is never stored in a FailoverPool. Put the value in a Secret labelled veloflux.io/secret: "true" and name it in ${ref}.`,
  } satisfies Props]));
}


/** Notification channels with Secret references where config.yaml has secrets inline. */
function notifications(): Props {
  const variants = (channelSchema.describe().oneOf ?? []).map((v) => convert(v));
  const byType = new Map(variants.map((v) => [(v.properties?.type?.enum ?? [])[0] as string, v]));
  const log = byType.get('log') as Props;
  const email = pick(byType.get('email') as Props, ['smtpServer', 'smtpPort', 'from', 'recipients', 'tls', 'timeout']);
  const webhook = pick(byType.get('webhook') as Props, ['format', 'timeout']);
  const emailTimeout = email.properties?.timeout as Props;
  const webhookTimeout = webhook.properties?.timeout as Props;
  const emailProps = email.properties as Record<string, Props>;
  const channel: Props = {
    type: 'object',
    description: 'A notification channel: `type` says which of the other fields apply.',
    required: ['type'],
    properties: {
      type: { type: 'string', enum: ['log', 'email', 'webhook'], description: 'Channel type: log (structured log lines), email (SMTP) or webhook (HTTP POST).' },
      level: { ...(log.properties?.level as Props), default: undefined, description: `log: ${(log.properties?.level as Props).description}` },
      smtpServer: { ...(emailProps.smtpServer as Props), description: `email: ${(emailProps.smtpServer as Props).description}` },
      smtpPort: { ...(emailProps.smtpPort as Props), default: undefined, description: `email: ${(emailProps.smtpPort as Props).description}` },
      from: { ...(emailProps.from as Props), description: `email: ${(emailProps.from as Props).description}` },
      recipients: { ...(emailProps.recipients as Props), maxItems: 100, description: `email: ${(emailProps.recipients as Props).description}` },
      tls: { ...(emailProps.tls as Props), description: `email: ${(emailProps.tls as Props).description}` },
      credentialsSecretRef: {
        type: 'object',
        description: 'email: SMTP user name and password for authentication, read from a Secret in the FailoverPool\'s namespace (never inline). Default: no authentication.',
        required: ['name'],
        properties: {
          name: { type: 'string', maxLength: 253, description: 'Name of the Secret.' },
          usernameKey: { type: 'string', maxLength: 253, default: 'username', description: 'Key of the user name. Default: "username".' },
          passwordKey: { type: 'string', maxLength: 253, default: 'password', description: 'Key of the password. Default: "password".' },
        },
      },
      timeout: { ...emailTimeout, description: `email: ${emailTimeout.description} webhook: ${webhookTimeout.description}` },
      format: { ...(webhook.properties?.format as Props), default: undefined, description: `webhook: ${(webhook.properties?.format as Props).description}` },
      urlSecretRef: secretKeyRef('webhook: the URL to POST to (an http:// or https:// URL; it often embeds a token)', 'url'),
      hmacSecretRef: secretKeyRef('webhook: shared secret for an HMAC-SHA256 signature header over the body. Default: no signature', 'secret'),
      ...inlineSecretProps(),
    },
    'x-kubernetes-validations': [
      ...INLINE_SECRET_RULES.map(validation),
      ...[RULES.emailFields, RULES.webhookFields, RULES.logLevel, RULES.logTimeout].map(validation),
    ],
  };
  // Drop `undefined` values left by the spreads above (yaml would print them as null).
  const n = convert(failoverSchema.describe()).properties?.notification as Props;
  return {
    type: 'object',
    description: 'Failover notifications of this pool. A proxy serving several FailoverPools sends every pool\'s events to the channels of all of them.',
    properties: {
      enabled: n.properties?.enabled as Props,
      channels: { type: 'array', description: 'Where notifications go. Default: none.', maxItems: 32, items: channel },
    },
  };
}

const TS = (description: string): Props => ({ type: 'string', format: 'date-time', description });

function status(): Props {
  return {
    type: 'object',
    description: 'What the operator and the proxies report; written by the operator only.',
    properties: {
      observedGeneration: { type: 'integer', description: 'The metadata.generation this status describes.' },
      activeLevel: { type: 'integer', description: 'Failover level serving traffic, as most synced proxies report it (0 = primary).' },
      failoverCount: { type: 'integer', description: 'Times the pool has left level 0 since the FailoverPool was created (counted by the operator).' },
      lastFailoverTime: TS('When the pool last left level 0 (RFC 3339).'),
      syncedProxies: { type: 'string', description: 'Proxies running this pool\'s current config, "synced/selected" (e.g. "3/3").' },
      proxies: {
        type: 'object',
        description: 'Proxy pods this pool is rendered into.',
        properties: {
          selected: { type: 'integer', description: 'Ready pods that proxySelector selects.' },
          synced: { type: 'integer', description: 'Of those, pods that report the config the operator rendered for them.' },
        },
      },
      override: {
        type: 'object',
        description: 'The manual override in effect (spec.override until it expires).',
        properties: {
          mode: { type: 'string', enum: ['auto', 'active', 'inactive'], description: 'Effective mode: spec.override.mode, or auto once expiresAt has passed.' },
          expired: { type: 'boolean', description: 'spec.override.expiresAt has passed, so the pool is back to auto.' },
        },
      },
      consensus: {
        type: 'object',
        description: 'One decision across the proxy replicas (SPEC 9): its mode, sequence and how many proxies serve it.',
        properties: {
          mode: { type: 'string', enum: ['shared', 'local'], description: 'spec.consensus.mode in effect.' },
          source: { type: 'string', enum: ['shared', 'local'], description: 'Where the proxies\' decisions come from: shared while the operator decides for them, local when each decides alone.' },
          sequence: { type: 'integer', description: 'Sequence of the last shared decision; it only grows, across operator restarts and leader changes.' },
          level: { type: 'integer', description: 'Failover level of the last shared decision.' },
          shares: {
            type: 'array', maxItems: 64, description: 'Shares of new requests by level of the last shared decision.',
            items: { type: 'object', description: 'A share of new requests sent to one level.', properties: { level: { type: 'integer', description: 'Failover level.' }, percent: { type: 'integer', description: 'Percent of new requests.' } } },
          },
          agreeing: { type: 'integer', description: 'Ready proxies serving the current decision (shared: its sequence, from a fresh decision; local: the most common level).' },
          proxies: { type: 'integer', description: 'Ready proxies the pool selects.' },
          agree: { type: 'string', description: '"agreeing/proxies" (e.g. "3/3"), the AGREE column.' },
          paused: {
            type: 'object', description: 'spec.rampGate, shared: the decision\'s ramp waits because the level taking traffic answered more errors than maxErrorPercent or was slower than maxP99 over the last step, summed over the traffic every proxy reports (absent while it advances; Events RampPaused and RampResumed).',
            properties: { reason: { type: 'string', maxLength: 1024, description: 'Why, with the figures of the step.' } },
          },
        },
      },
      failback: {
        type: 'object',
        description: 'Failback approval (spec.failback).',
        properties: {
          mode: { type: 'string', enum: ['auto', 'manual'], description: 'spec.failback.mode.' },
          awaitingApproval: { type: 'boolean', description: 'A reporting proxy holds traffic on a backup level until the failback is approved (spec.failback.approve).' },
          approvedAt: TS('The spec.failback.approve.approvedAt last rendered to the proxies.'),
        },
      },
      flapping: {
        type: 'object',
        description: 'spec.holdDown: the flapping episode as the reporting proxies see it (absent when none is flapping; also the Flapping condition).',
        properties: {
          since: TS('When the episode began.'),
          failovers: { type: 'integer', description: 'Failovers in the episode.' },
          holdMs: { type: 'integer', description: 'How long, in milliseconds, the earlier level must be healthy without a break before traffic fails back.' },
        },
      },
      conditions: {
        type: 'array',
        description: 'Ready (accepted and serving), Synced (every selected proxy runs the current config), FailoverActive (serving from a level above 0, or manually activated), Degraded (a backend is down, proxies disagree, or pushes fail), Flapping (spec.holdDown: a proxy reports the pool flapping).',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
        maxItems: 16,
        items: {
          type: 'object',
          description: 'A standard Kubernetes condition.',
          required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
          properties: {
            type: { type: 'string', maxLength: 316, description: 'Condition type: Ready, Synced, FailoverActive or Degraded.' },
            status: { type: 'string', enum: ['True', 'False', 'Unknown'], description: 'True, False or Unknown.' },
            observedGeneration: { type: 'integer', description: 'The metadata.generation the condition was set for.' },
            lastTransitionTime: TS('When the status last changed (not when it was last checked).'),
            reason: { type: 'string', maxLength: 1024, description: 'CamelCase reason for the last transition.' },
            message: { type: 'string', maxLength: 32768, description: 'Human-readable detail.' },
          },
        },
      },
    },
  };
}

function labelSelector(): Props {
  return {
    type: 'object',
    description: 'Which proxy Pods (in the FailoverPool\'s namespace) serve this pool: a standard label selector. Each selected ready pod gets a config rendered from every FailoverPool that selects it.',
    properties: {
      matchLabels: { type: 'object', description: 'Labels a pod must have, all of them.', additionalProperties: { type: 'string', maxLength: 63, description: 'Label value.' } },
      matchExpressions: {
        type: 'array',
        description: 'Label requirements, all of which must hold.',
        maxItems: 32,
        items: {
          type: 'object',
          description: 'A label requirement.',
          required: ['key', 'operator'],
          properties: {
            key: { type: 'string', maxLength: 317, description: 'Label key.' },
            operator: { type: 'string', enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'], description: 'In, NotIn, Exists or DoesNotExist.' },
            values: { type: 'array', maxItems: 64, description: 'Values for In and NotIn; empty for Exists and DoesNotExist.', items: { type: 'string', maxLength: 63, description: 'Label value.' } },
          },
        },
      },
    },
  };
}

function override(): Props {
  return {
    type: 'object',
    description: 'Manual failover, applied by every selected proxy so all replicas agree. Default: mode auto.',
    properties: {
      mode: { type: 'string', enum: ['auto', 'active', 'inactive'], default: 'auto', description: 'auto: normal automatic failover; active: failover forced on (traffic on the lowest healthy level above 0); inactive: automatic failover off (traffic stays on level 0). Default: "auto".' },
      reason: { type: 'string', maxLength: 1024, description: 'Why; required for active and inactive. Shown in proxy status and events.' },
      expiresAt: TS('When the override ends by itself and the pool returns to auto (RFC 3339). Default: never.'),
    },
    'x-kubernetes-validations': [validation(RULES.overrideReason)],
  };
}

function consensus(): Props {
  return {
    type: 'object',
    description: 'One decision across the proxy replicas (SPEC 9). Default: mode shared.',
    default: {},
    properties: {
      mode: { type: 'string', enum: ['shared', 'local'], default: 'shared', description: 'shared: every selected proxy reports its probe view, the operator combines them into one verdict per backend, runs the failover engine on it and sends every proxy the same level and shares (with a sequence and a lease of 3 x checkInterval, at least 2s); a proxy without a fresh decision (operator down, partitioned) decides alone until one arrives. local: each proxy decides alone from its own probes. Default: "shared".' },
      quorum: { type: 'integer', minimum: 1, maximum: 1000, description: 'shared: how many reporting proxies must see a backend down for the verdict to be down (capped at the number reporting). Default: a strict majority of the reporting proxies.' },
    },
  };
}

export function openApiSchema(): Props {
  const hc = convert(healthCheckSchema.describe());
  if (!hc.properties?.timeout || !hc.properties.interval) throw new Error('health check schema lost timeout/interval');
  const spec: Props = {
    type: 'object',
    description: 'A pool of backends in failover levels, the routes to it and the proxies that serve it.',
    required: ['proxySelector', 'routes', 'backends'],
    properties: {
      proxySelector: labelSelector(),
      routes: routes(),
      backends: backends(),
      protocol: protocol(),
      tls: upstreamTls(),
      ...policy(),
      notifications: notifications(),
      override: override(),
      consensus: consensus(),
      failback: failback(),
      ...poolV2(),
    },
    'x-kubernetes-validations': [
      validation(RULES.levelZero),
      validation(RULES.timeoutBelowInterval),
      validation(RULES.grpcNeedsHttp2),
      validation(RULES.tlsCaOrSkip),
    ],
  };
  return {
    type: 'object',
    description: 'FailoverPool: an application\'s backends in failover levels, served by VeloFlux proxies that the operator configures.',
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this object: veloflux.io/v1alpha1.' },
      kind: { type: 'string', description: 'Kind of this object: FailoverPool.' },
      // The apiserver allows nothing but the type here (metadata's schema is built in).
      metadata: { type: 'object' } as Props,
      spec,
      status: status(),
    },
    required: ['spec'],
  };
}

/** Drops keys whose value is undefined, recursively, so the YAML has no nulls. */
function clean<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clean) as T;
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => [k, clean(x)])) as T;
  return v;
}

export function failoverPoolCrd(): Record<string, unknown> {
  return clean({
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: { kind: KIND, listKind: `${KIND}List`, plural: PLURAL, singular: 'failoverpool', shortNames: ['fp'], categories: ['veloflux'] },
      versions: [{
        name: VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'Strategy', type: 'string', jsonPath: '.spec.strategy', description: 'How traffic moves to the next level.' },
          { name: 'Active Level', type: 'integer', jsonPath: '.status.activeLevel', description: 'Failover level serving traffic.' },
          { name: 'Failover', type: 'string', jsonPath: '.status.conditions[?(@.type=="FailoverActive")].status', description: 'Whether failover is active.' },
          { name: 'Synced', type: 'string', jsonPath: '.status.syncedProxies', description: 'Proxies running the current config, synced/selected.' },
          { name: 'Agree', type: 'string', jsonPath: '.status.consensus.agree', description: 'Proxies serving the pool\'s one decision, agreeing/proxies (SPEC 9).' },
          { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Accepted and served by at least one synced proxy.' },
          { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', description: 'Why Ready is what it is (e.g. Serving, Conflict, SecretMissing, NoProxies).' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: { openAPIV3Schema: openApiSchema() },
      }],
    },
  });
}

export function crdYaml(): string {
  return `# Generated by packages/kube/src/crd.ts from packages/config/src/schema.ts (npm run crds). Do not edit.\n${stringify(failoverPoolCrd(), { lineWidth: 0 })}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const file of [CRD_FILE, CHART_CRD_FILE]) {
    writeFileSync(file, crdYaml());
    process.stdout.write(`wrote ${file}\n`);
  }
}
