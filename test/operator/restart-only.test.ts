// A proxy started with non-default restart-only fields (RESTART_ONLY, packages/config/src/restart.ts) gets the
// operator's push applied (200), not refused with 409 VF_ERR_CONFIG_RESTART_REQUIRED: the operator renders every
// restart-only field back as the running proxy reports it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { FailoverPool } from '@veloflux/kube/types';
import { TestBackend } from '../../proxy/test/helpers/backend.ts';
import { installCrds, withNamespace } from '../cluster/testenv.ts';
import { admin, adminGet, createProxyPod, CRD_YAML, fpPath, freePort, operatorCredentials, startOperator, startProxy, through, TOKEN, until } from './env.ts';
import type { ProxyProc } from './env.ts';

interface View { version: string; config: { pools: { name: string }[]; dataplane: { youngGenerationMb: number; workers: number | 'auto' } } }

test('a proxy with a non-default dataplane.young_generation_mb and workers takes the operator\'s push', { timeout: 120_000 }, async (t) => {
  const young = DEFAULTS.dataplane.youngGenerationMb + 16;
  const workers = DEFAULTS.dataplane.workers + 1;
  const ns = await withNamespace(t, 'restart-only');
  await installCrds(CRD_YAML);
  const kube = admin();
  const kubeconfig = await operatorCredentials(ns);
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'veloflux-admin-token', labels: { 'veloflux.io/secret': 'true' } }, stringData: { token: TOKEN } });
  const backend = await TestBackend.start('app');
  t.after(() => backend.kill());

  const ip = '127.0.0.31';
  const proxy: ProxyProc = await startProxy(ip, await freePort(), await freePort(), backend.address, { extraYaml: [`dataplane: { young_generation_mb: ${young}, workers: ${workers} }`] });
  t.after(() => proxy.stop());
  await createProxyPod(ns, 'proxy-0', ip, Number(new URL(proxy.adminUrl).port));
  const before = await adminGet<View>(proxy, '/api/v1/config');
  assert.deepEqual([before.config.dataplane.youngGenerationMb, before.config.dataplane.workers], [young, workers]);

  const operator = await startOperator(t, kubeconfig, ns);
  await kube.create(fpPath(ns), {
    apiVersion: 'veloflux.io/v1alpha1', kind: 'FailoverPool', metadata: { name: 'app' },
    spec: { proxySelector: { matchLabels: { app: 'proxy' } }, routes: [{ hosts: ['app.example.com'] }], backends: [{ address: backend.address }] },
  });
  const synced = await until('status Synced 1/1', async () => {
    const p = await kube.get<FailoverPool>(fpPath(ns, 'app'));
    return p.status?.conditions?.some((c) => c.type === 'Synced' && c.status === 'True') ? p : undefined;
  }, 60_000);
  assert.equal(synced.status?.syncedProxies, '1/1');
  const after = await adminGet<View>(proxy, '/api/v1/config');
  assert.notEqual(after.version, before.version, 'the push was applied');
  assert.deepEqual(after.config.pools.map((p) => p.name), ['app']);
  assert.deepEqual([after.config.dataplane.youngGenerationMb, after.config.dataplane.workers], [young, workers]);
  assert.deepEqual(await through(proxy, 'app.example.com'), { status: 200, body: 'app' });
  assert.deepEqual(operator.logs.filter((l) => l.includes('VF_ERR_CONFIG_RESTART_REQUIRED')), []);
});
