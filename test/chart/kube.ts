// Raw apiserver calls for the chart tests: server-side apply with dryRun and strict field validation (which
// client-node's generic object API cannot ask for), reads and label-selected lists of the kinds the chart and the
// examples create.
import { request } from 'node:https';
import { clusterFromEnv } from '../cluster/testenv.ts';
import type { KubeObject } from './helm.ts';

/** REST path pieces of every kind the chart or the examples contain; a new kind must be added here. */
const KINDS: Record<string, { group: string; plural: string; namespaced: boolean }> = {
  ConfigMap: { group: 'v1', plural: 'configmaps', namespaced: true },
  Secret: { group: 'v1', plural: 'secrets', namespaced: true },
  Service: { group: 'v1', plural: 'services', namespaced: true },
  ServiceAccount: { group: 'v1', plural: 'serviceaccounts', namespaced: true },
  Deployment: { group: 'apps/v1', plural: 'deployments', namespaced: true },
  PodDisruptionBudget: { group: 'policy/v1', plural: 'poddisruptionbudgets', namespaced: true },
  NetworkPolicy: { group: 'networking.k8s.io/v1', plural: 'networkpolicies', namespaced: true },
  ServiceMonitor: { group: 'monitoring.coreos.com/v1', plural: 'servicemonitors', namespaced: true },
  PrometheusRule: { group: 'monitoring.coreos.com/v1', plural: 'prometheusrules', namespaced: true },
  FailoverPool: { group: 'veloflux.io/v1alpha1', plural: 'failoverpools', namespaced: true },
  ClusterRole: { group: 'rbac.authorization.k8s.io/v1', plural: 'clusterroles', namespaced: false },
  ClusterRoleBinding: { group: 'rbac.authorization.k8s.io/v1', plural: 'clusterrolebindings', namespaced: false },
  Role: { group: 'rbac.authorization.k8s.io/v1', plural: 'roles', namespaced: true },
  RoleBinding: { group: 'rbac.authorization.k8s.io/v1', plural: 'rolebindings', namespaced: true },
  CustomResourceDefinition: { group: 'apiextensions.k8s.io/v1', plural: 'customresourcedefinitions', namespaced: false },
};
export const NAMESPACED_KINDS = Object.keys(KINDS).filter((k) => KINDS[k]?.namespaced && KINDS[k]?.group !== 'veloflux.io/v1alpha1');
export const CLUSTER_KINDS = Object.keys(KINDS).filter((k) => !KINDS[k]?.namespaced);

export interface ApiResponse { status: number; body: string }

export function api(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse> {
  const { server, caData, adminToken } = clusterFromEnv();
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(`${server}${path}`, {
      method,
      ca: Buffer.from(caData, 'base64').toString('utf8'),
      headers: { authorization: `Bearer ${adminToken}`, accept: 'application/json', ...(payload ? { 'content-type': contentType } : {}) },
      timeout: 15_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 15 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

function base(kind: string, namespace: string | undefined): string {
  const k = KINDS[kind];
  if (!k) throw new Error(`test/chart/kube.ts does not know kind ${kind}: add it to KINDS`);
  const prefix = k.group.includes('/') ? `/apis/${k.group}` : `/api/${k.group}`;
  return k.namespaced ? `${prefix}/namespaces/${namespace ?? 'default'}/${k.plural}` : `${prefix}/${k.plural}`;
}

export const objectPath = (o: KubeObject): string => `${base(o.kind, o.metadata.namespace)}/${o.metadata.name}`;

/**
 * Server-side apply with dryRun=All and fieldValidation=Strict: the apiserver validates the object as it would
 * store it (schema, unknown or duplicate fields, CEL rules, admission) and stores nothing. Returns the answer.
 */
export function dryRunApply(o: KubeObject): Promise<ApiResponse> {
  return api('PATCH', `${objectPath(o)}?dryRun=All&fieldValidation=Strict&fieldManager=veloflux-chart-test&force=true`, o, 'application/apply-patch+yaml');
}

/** Names of the objects of `kind` with the label selector, in `namespace` (or cluster-wide for cluster kinds). */
export async function listNames(kind: string, selector: string, namespace?: string): Promise<string[]> {
  const r = await api('GET', `${base(kind, namespace)}?labelSelector=${encodeURIComponent(selector)}`);
  if (r.status !== 200) throw new Error(`list ${kind} in ${namespace ?? 'cluster'}: ${r.status} ${r.body.slice(0, 300)}`);
  return (JSON.parse(r.body) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name);
}

export async function exists(o: KubeObject): Promise<boolean> {
  const r = await api('GET', objectPath(o));
  if (r.status === 200) return true;
  if (r.status === 404) return false;
  throw new Error(`GET ${objectPath(o)}: ${r.status} ${r.body.slice(0, 300)}`);
}

export async function readSecretToken(namespace: string, name: string): Promise<string> {
  const r = await api('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`);
  if (r.status !== 200) throw new Error(`Secret ${namespace}/${name}: ${r.status}`);
  return Buffer.from((JSON.parse(r.body) as { data: { token: string } }).data.token, 'base64').toString('utf8');
}

/** Whether the service account may do `verb` on `resource` (SubjectAccessReview, as the apiserver's RBAC decides). */
export async function allowed(namespace: string, serviceAccount: string, verb: string, group: string, resource: string, subresource = '', inNamespace = namespace): Promise<boolean> {
  const r = await api('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SubjectAccessReview',
    spec: {
      user: `system:serviceaccount:${namespace}:${serviceAccount}`,
      groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
      resourceAttributes: { namespace: inNamespace, verb, group, resource, subresource },
    },
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`SubjectAccessReview: ${r.status} ${r.body.slice(0, 300)}`);
  return (JSON.parse(r.body) as { status: { allowed: boolean } }).status.allowed;
}

export async function servedGroups(): Promise<string[]> {
  const r = await api('GET', '/apis');
  return (JSON.parse(r.body) as { groups: { name: string }[] }).groups.map((g) => g.name);
}
