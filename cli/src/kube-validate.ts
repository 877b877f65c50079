// A FailoverPool checked the way the cluster and the proxies will check it, before anything is written:
//  1. the CRD as shipped (crds/failoverpool.yaml): its defaults applied first (the apiserver defaults before it
//     validates), then its openAPIV3Schema (types, required, enums, patterns, bounds, unknown fields) and the
//     intent of its CEL rules (x-kubernetes-validations, matched by rule text: a rule this file does not know is
//     reported, so a new rule in the CRD cannot pass unnoticed; the meanings come from packages/kube/src/rules.ts, the
//     table that also writes the rules into the CRD);
//  2. the operator's own render (packages/kube/src/render.ts) with the Secrets setup writes, whose result must pass the
//     proxy's loader (loadConfigText): the same schema as the proxy.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { loadConfigText } from '@veloflux/config/load';
import { render } from '@veloflux/kube/render';
import type { FailoverPool } from '@veloflux/kube/types';
import type { Kube } from './kube.ts';
import type { Props } from '@veloflux/kube/crd';
import { CHECKS } from '@veloflux/kube/rules';

type Obj = Record<string, unknown>;
/** The CRD's schema type: the one JSON-Schema (apiextensions v1 JSONSchemaProps) definition, packages/kube/src/crd.ts. */
export type OpenApi = Props;

export const CRD_FILE = new URL('../../crds/failoverpool.yaml', import.meta.url);

/** spec.versions[v1alpha1].schema.openAPIV3Schema of the CRD text. */
export function crdSchema(text: string): OpenApi {
  const crd = parse(text) as { spec: { versions: { name: string; schema: { openAPIV3Schema: OpenApi } }[] } };
  const v = crd.spec.versions.find((x) => x.name === 'v1alpha1') ?? crd.spec.versions[0];
  if (!v) throw new Error('CRD has no version');
  return v.schema.openAPIV3Schema;
}

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The CEL rules of the CRD, by rule text, as JavaScript with the same meaning. */
/** The meaning of each CEL rule, by its text: from the same table that writes the rules into the CRD. */
export const CEL: Readonly<Record<string, (self: unknown) => boolean>> = Object.fromEntries(CHECKS);

/** A copy with the schema's defaults filled in where a field is absent (structural defaulting). */
export function withDefaults(schema: OpenApi, value: unknown): unknown {
  if (Array.isArray(value)) return schema.items ? value.map((v) => withDefaults(schema.items as OpenApi, v)) : value;
  if (!isObj(value)) return value;
  const out: Obj = { ...value };
  for (const [k, s] of Object.entries(schema.properties ?? {})) {
    if (out[k] === undefined && s.default !== undefined) out[k] = structuredClone(s.default);
    if (out[k] !== undefined) out[k] = withDefaults(s, out[k]);
  }
  return out;
}

/** Every problem with `value` against `schema`, each "path: message". */
export function checkSchema(schema: OpenApi, value: unknown, path = '', issues: string[] = []): string[] {
  const at = path === '' ? '(top level)' : path;
  const bad = (m: string): void => { issues.push(`${at}: ${m}`); };
  if (schema['x-kubernetes-int-or-string']) {
    if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) bad(`must be an integer or a string, got ${JSON.stringify(value)}`);
    return issues;
  }
  switch (schema.type) {
    case 'object':
      if (!isObj(value)) { bad(`must be an object, got ${JSON.stringify(value)}`); return issues; }
      for (const r of schema.required ?? []) if (value[r] === undefined) issues.push(`${path === '' ? '' : `${path}.`}${r}: is required`);
      for (const [k, v] of Object.entries(value)) {
        const p = path === '' ? k : `${path}.${k}`;
        const s = schema.properties?.[k] ?? (isObj(schema.additionalProperties) ? schema.additionalProperties : undefined);
        if (s) checkSchema(s, v, p, issues);
        else if (schema.properties && !schema['x-kubernetes-preserve-unknown-fields']) issues.push(`${p}: unknown field (the apiserver would drop it)`);
      }
      break;
    case 'array':
      if (!Array.isArray(value)) { bad(`must be a list, got ${JSON.stringify(value)}`); return issues; }
      if (schema.minItems !== undefined && value.length < schema.minItems) bad(`must have at least ${schema.minItems} item(s)`);
      if (schema.maxItems !== undefined && value.length > schema.maxItems) bad(`must have at most ${schema.maxItems} items`);
      if (schema.items) value.forEach((v, i) => checkSchema(schema.items as OpenApi, v, `${path}[${i}]`, issues));
      break;
    case 'string':
      if (typeof value !== 'string') { bad(`must be a string, got ${JSON.stringify(value)}`); return issues; }
      if (schema.maxLength !== undefined && value.length > schema.maxLength) bad(`must be at most ${schema.maxLength} characters`);
      if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value)) bad(`must match ${schema.pattern}, got ${JSON.stringify(value)}`);
      break;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) { bad(`must be an integer, got ${JSON.stringify(value)}`); return issues; }
      if (schema.minimum !== undefined && value < schema.minimum) bad(`must be >= ${schema.minimum}, got ${value}`);
      if (schema.maximum !== undefined && value > schema.maximum) bad(`must be <= ${schema.maximum}, got ${value}`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') bad(`must be true or false, got ${JSON.stringify(value)}`);
      break;
  }
  if (schema.enum && !(schema.enum as readonly unknown[]).includes(value)) bad(`must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}, got ${JSON.stringify(value)}`);
  for (const v of schema['x-kubernetes-validations'] ?? []) {
    const intent = CEL[v.rule];
    if (!intent) bad(`CEL rule not known to veloflux setup (add its meaning to kube-validate.ts): ${v.rule}`);
    else if (!intent(value)) bad(v.message ?? `fails ${v.rule}`);
  }
  return issues;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Every problem with the FailoverPool and its Secrets; empty = the cluster and the proxies will take them. */
export function validateKubeWith(schema: OpenApi, kube: Kube): string[] {
  const issues: string[] = [];
  const name = kube.pool.metadata.name;
  if (!DNS_SUBDOMAIN.test(name) || name.length > 253) issues.push(`metadata.name: must be a lower-case DNS name, got ${JSON.stringify(name)}`);
  for (const s of kube.secrets) if (!DNS_SUBDOMAIN.test(s.metadata.name)) issues.push(`Secret ${s.metadata.name}: metadata.name must be a lower-case DNS name`);
  const defaulted = withDefaults(schema, kube.pool) as FailoverPool;
  checkSchema(schema, defaulted, '', issues);
  if (issues.length > 0) return issues;

  const secrets = new Map(kube.secrets.map((s) => [s.metadata.name, s.stringData]));
  const labels = (defaulted.spec.proxySelector.matchLabels ?? {}) as Record<string, string>;
  // Service backends: the cluster's endpoints are not known here, so each Service backend gets one ready stand-in
  // endpoint of its own (192.0.2.N, TEST-NET-1) on its port: the render checks the pool's shape, as it will be once
  // the Service has endpoints.
  const endpointSlices = (defaulted.spec.backends ?? []).flatMap((b, i) => (b.service ? [{
    metadata: { labels: { 'kubernetes.io/service-name': b.service.name } },
    addressType: 'IPv4',
    ports: [typeof b.service.port === 'number' ? { port: b.service.port } : { name: b.service.port, port: 80 }],
    endpoints: [{ addresses: [`192.0.2.${(i % 254) + 1}`], conditions: { ready: true } }],
  }] : []));
  const rendered = render({ labels, pools: [{ ...defaulted, metadata: { ...defaulted.metadata, namespace: defaulted.metadata.namespace ?? 'default' } }], endpointSlices, secrets, base: {}, now: 0 });
  const refusal = rendered.refused.get(name);
  if (refusal) return [`operator render: ${refusal.reason}: ${refusal.message}`];
  if (rendered.text === undefined) return ['operator render: the proxySelector does not select the labels it gives (no config rendered)'];
  const loaded = loadConfigText(rendered.text);
  if (!loaded.ok) return loaded.issues.map((i) => `rendered config: ${i.path}: ${i.message}`);
  return [];
}

let cached: OpenApi | undefined;
export function validateKube(kube: Kube): string[] {
  cached ??= crdSchema(readFileSync(CRD_FILE, 'utf8'));
  return validateKubeWith(cached, kube);
}
