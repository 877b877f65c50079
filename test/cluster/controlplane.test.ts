// The test control plane does what the operator tests rely on: structural CRDs with CEL rules,
// status subresources, RBAC between a privileged and an unprivileged token, service-account tokens.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import {
  ApiextensionsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { UNPRIVILEGED_USER } from './controlplane.ts';
import {
  adminKubeConfig,
  clusterFromEnv,
  installCrds,
  kubeConfigFor,
  serviceAccountToken,
  userKubeConfig,
  waitFor,
  withNamespace,
} from './testenv.ts';

/** The status code of a failed client-node call; fails the test if the call succeeded. */
async function rejection(call: Promise<unknown>): Promise<{ code: number; body: { message?: string; details?: { causes?: { field?: string; message?: string }[] } } }> {
  try {
    await call;
  } catch (err) {
    const { code, body } = err as { code?: number; body?: unknown };
    assert.equal(typeof code, 'number', `expected an ApiException, got ${String(err)}`);
    return { code: code as number, body: typeof body === 'string' ? JSON.parse(body) : (body as object) };
  }
  assert.fail('expected the API server to reject the request');
}

test('control plane reports its warm start time', (t) => {
  const { startMs, server } = clusterFromEnv();
  t.diagnostic(`etcd + kube-apiserver ready at ${server} in ${(startMs / 1000).toFixed(1)} s`);
  assert.ok(startMs > 0);
});

test('a CRD with a structural schema and a CEL rule: the apiserver rejects an invalid object with the rule message', async (t) => {
  const ns = await withNamespace(t);
  const kc = adminKubeConfig();
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  const objects = kc.makeApiClient(CustomObjectsApi);
  // CRDs are cluster-scoped: a group per test keeps parallel test files apart. YAML, as shipped.
  const group = `t${randomBytes(3).toString('hex')}.test.veloflux.dev`;
  const [crd] = await installCrds(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ranges.${group}
spec:
  group: ${group}
  scope: Namespaced
  names: { plural: ranges, singular: range, kind: Range, listKind: RangeList }
  versions:
    - name: v1
      served: true
      storage: true
      subresources: { status: {} }
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [min, max]
              properties:
                min: { type: integer }
                max: { type: integer }
              x-kubernetes-validations:
                - rule: self.min <= self.max
                  message: min must not exceed max
            status:
              type: object
              properties:
                observed: { type: integer }
`);
  t.after(() => ext.deleteCustomResourceDefinition({ name: `ranges.${group}` }));
  const rules = crd?.spec.versions[0]?.schema?.openAPIV3Schema?.properties?.spec?.x_kubernetes_validations;
  assert.deepEqual(rules?.map(({ rule, message }) => ({ rule, message })), [
    { rule: 'self.min <= self.max', message: 'min must not exceed max' },
  ]);

  const target = { group, version: 'v1', namespace: ns, plural: 'ranges' };
  const range = (name: string, min: number, max: number) => ({
    apiVersion: `${group}/v1`,
    kind: 'Range',
    metadata: { name },
    spec: { min, max },
  });

  const created = await objects.createNamespacedCustomObject({ ...target, body: range('good', 1, 2) });
  assert.deepEqual((created as { spec: unknown }).spec, { min: 1, max: 2 });

  const { code, body } = await rejection(objects.createNamespacedCustomObject({ ...target, body: range('bad', 3, 2) }));
  assert.equal(code, 422);
  assert.deepEqual(body.details?.causes, [{ reason: 'FieldValueInvalid', field: 'spec', message: 'Invalid value: min must not exceed max' }]);
  assert.equal(body.message, `Range.${group} "bad" is invalid: spec: Invalid value: min must not exceed max`);

  const missing = await rejection(objects.createNamespacedCustomObject({ ...target, body: { ...range('partial', 0, 0), spec: { min: 0 } } }));
  assert.equal(missing.code, 422);
  // The schema is checked first; CEL rules run only on an object that passes it.
  assert.deepEqual(missing.body.details?.causes, [
    { reason: 'FieldValueRequired', message: 'Required value', field: 'spec.max' },
    {
      reason: 'FieldValueInvalid',
      message: 'Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
      field: '<nil>',
    },
  ]);
});

test('a Pod status is written through the /status subresource and read back', async (t) => {
  const ns = await withNamespace(t);
  const core = adminKubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespacedPod({
    namespace: ns,
    // no kubelet runs, so the image is never pulled
    body: { metadata: { name: 'web' }, spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] } },
  });
  const ready = { type: 'Ready', status: 'True', reason: 'TestSaysSo', lastTransitionTime: new Date('2025-01-02T03:04:05Z') };

  // The main resource ignores status changes...
  await core.patchNamespacedPod({ name: 'web', namespace: ns, body: [{ op: 'add', path: '/status/phase', value: 'Running' }] });
  assert.equal((await core.readNamespacedPodStatus({ name: 'web', namespace: ns })).status?.phase, 'Pending');

  // ...the /status subresource takes them.
  await core.patchNamespacedPodStatus({
    name: 'web',
    namespace: ns,
    body: [
      { op: 'replace', path: '/status/phase', value: 'Running' },
      { op: 'add', path: '/status/podIP', value: '10.1.2.3' },
      { op: 'add', path: '/status/conditions', value: [ready] },
    ],
  });
  const pod = await core.readNamespacedPod({ name: 'web', namespace: ns });
  assert.equal(pod.status?.phase, 'Running');
  assert.equal(pod.status?.podIP, '10.1.2.3');
  assert.deepEqual(
    pod.status?.conditions?.map((c) => ({ type: c.type, status: c.status, reason: c.reason, at: c.lastTransitionTime?.toISOString() })),
    [{ type: 'Ready', status: 'True', reason: 'TestSaysSo', at: '2025-01-02T03:04:05.000Z' }],
  );
  assert.deepEqual(pod.spec?.containers.map((c) => c.image), ['registry.invalid/web:1']);
});

test('the unprivileged token is authenticated but refused (403) until RBAC grants access', async (t) => {
  const ns = await withNamespace(t);
  const asUser = userKubeConfig();
  const review = await asUser.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  assert.equal(review.status?.userInfo?.username, UNPRIVILEGED_USER);
  assert.deepEqual(review.status?.userInfo?.groups, ['system:authenticated']);

  const userCore = asUser.makeApiClient(CoreV1Api);
  const denied = await rejection(userCore.listNamespacedPod({ namespace: ns }));
  assert.equal(denied.code, 403);
  assert.equal(
    denied.body.message,
    `pods is forbidden: User "${UNPRIVILEGED_USER}" cannot list resource "pods" in API group "" in the namespace "${ns}"`,
  );
  assert.equal((await rejection(userCore.listNamespace())).code, 403);

  // Grant list on pods in this namespace only; the RBAC authorizer sees it once its cache catches up.
  const rbac = adminKubeConfig().makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({
    namespace: ns,
    body: { metadata: { name: 'pod-reader' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: ns,
    body: {
      metadata: { name: 'pod-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: UNPRIVILEGED_USER }],
    },
  });
  const pods = await waitFor('the RoleBinding to let the user list pods', () => userCore.listNamespacedPod({ namespace: ns }));
  assert.deepEqual(pods.items, []);
  // still nothing beyond the grant
  assert.equal((await rejection(userCore.listNamespace())).code, 403);
  assert.equal((await rejection(userCore.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'x' }, spec: { containers: [{ name: 'x', image: 'x' }] } } }))).code, 403);
});

test('a service-account token from the TokenRequest API authenticates as the service account', async (t) => {
  const ns = await withNamespace(t);
  const token = await serviceAccountToken(ns, 'operator');
  const review = await kubeConfigFor(token, 'operator').makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
  assert.equal(review.status?.userInfo?.username, `system:serviceaccount:${ns}:operator`);
  assert.ok(review.status?.userInfo?.groups?.includes(`system:serviceaccounts:${ns}`));
});
