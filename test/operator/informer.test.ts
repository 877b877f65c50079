// The informer against the real apiserver: it restarts (jittered backoff) while RBAC refuses it, syncs as
// soon as access is granted, and reports adds, updates and deletes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Informer } from '@veloflux/operator/informer';
import type { Change } from '@veloflux/operator/informer';
import { Kube } from '@veloflux/operator/kube';
import type { KubeObject } from '@veloflux/operator/kube';
import { createLogger } from '@veloflux/service/log';
import { kubeConfigFor, serviceAccountToken, withNamespace } from '../cluster/testenv.ts';
import { admin, until } from './env.ts';

test('an informer restarts on errors until RBAC allows it, then follows changes', async (t) => {
  const ns = await withNamespace(t, 'inf');
  const token = await serviceAccountToken(ns, 'watcher');
  const log = createLogger('veloflux-operator', { level: 'silent' });
  const informer = new Informer<KubeObject & { data?: Record<string, string> }>('configmaps', new Kube(kubeConfigFor(token)), { path: `/api/v1/namespaces/${ns}/configmaps`, backoffBaseMs: 20, backoffMaxMs: 200 }, log);
  const changes: Change<KubeObject>[] = [];
  informer.onChange((c) => changes.push(c));
  informer.start();
  t.after(() => informer.stop());

  await until('two restarts while forbidden', () => (informer.restarts >= 2 ? true : undefined), 10_000);
  assert.equal(informer.synced, false);

  const kube = admin();
  await kube.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'watch-configmaps' },
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list', 'watch'] }],
  });
  await kube.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'watcher' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'watch-configmaps' },
    subjects: [{ kind: 'ServiceAccount', name: 'watcher', namespace: ns }],
  });
  await until('the informer to sync once allowed', () => (informer.synced ? true : undefined), 10_000);

  await kube.create(`/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' }, data: { k: '1' } });
  await until('added', () => (informer.get(ns, 'a') ? true : undefined));
  await kube.mergePatch(`/api/v1/namespaces/${ns}/configmaps/a`, { data: { k: '2' } });
  await until('updated', () => (informer.get(ns, 'a')?.data?.k === '2' ? true : undefined));
  await kube.request('DELETE', `/api/v1/namespaces/${ns}/configmaps/a`);
  await until('deleted', () => (informer.get(ns, 'a') === undefined ? true : undefined));
  assert.deepEqual(changes.filter((c) => c.object.metadata.name === 'a').map((c) => c.type), ['added', 'updated', 'deleted']);
});
