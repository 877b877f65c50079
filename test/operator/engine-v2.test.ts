// Engine v2 in Kubernetes (SPEC 10), on the real control plane: a FailoverPool with spec.failback.mode manual is
// held on its backup until spec.failback.approve.approvedAt changes (idempotent: the same value approves nothing
// the next time), visible in status.failback; spec.holdDown's flapping episode is the Flapping condition and the
// FlappingStarted / FlappingEnded Events. The operator runs as a process, the proxy is a real process on 127.0.0.x.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestBackend } from '../../proxy/test/helpers/backend.ts';
import type { FailoverPool } from '@veloflux/kube/types';
import { installCrds, withNamespace } from '../cluster/testenv.ts';
import { admin, createProxyPod, CRD_YAML, fpPath, freePort, operatorCredentials, startOperator, startProxy, through, TOKEN, until } from './env.ts';
import type { ProxyProc } from './env.ts';

const cond = (fp: FailoverPool | undefined, type: string): string | undefined => {
  const c = fp?.status?.conditions?.find((x) => x.type === type);
  return c ? `${c.status} ${c.reason}` : undefined;
};

test('failback manual through the FailoverPool: spec.failback.approve, idempotent, in status; flapping as a condition and Events', { timeout: 180_000 }, async (t) => {
  const ns = await withNamespace(t, 'v2');
  await installCrds(CRD_YAML);
  const kube = admin();
  const kubeconfig = await operatorCredentials(ns);
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'veloflux-admin-token', labels: { 'veloflux.io/secret': 'true' } }, stringData: { token: TOKEN } });
  const primary = await TestBackend.start('primary');
  const backup = await TestBackend.start('backup');
  // Labelled Secrets are counted cluster-wide by other operator suites: leave none behind.
  t.after(() => kube.request('DELETE', `/api/v1/namespaces/${ns}/secrets/veloflux-admin-token`).catch(() => undefined));
  t.after(async () => { await primary.kill(); await backup.kill(); });
  const [dataPort, adminPort] = [await freePort(), await freePort()];
  const proxy: ProxyProc = await startProxy('127.0.0.41', dataPort, adminPort, backup.address);
  t.after(async () => { await proxy.stop(); });
  await createProxyPod(ns, 'proxy-0', '127.0.0.41', adminPort);
  await startOperator(t, kubeconfig, ns);

  const hc = { timeout: '250ms', unhealthyThreshold: 1, healthyThreshold: 1 };
  await kube.create(fpPath(ns), {
    apiVersion: 'veloflux.io/v1alpha1', kind: 'FailoverPool', metadata: { name: 'app' },
    spec: {
      proxySelector: { matchLabels: { app: 'proxy' } },
      routes: [{ hosts: ['app.example.com'] }],
      checkInterval: '300ms',
      recoveryInterval: '500ms',
      backends: [{ address: primary.address, healthCheck: hc }, { address: backup.address, failoverLevel: 1, healthCheck: hc }],
      failback: { mode: 'manual' },
      // The first failover makes the pool flapping; the episode ends 4 s after it.
      holdDown: { minDwell: '300ms', flapThreshold: 1, flapWindow: '4s', maxHold: '1s' },
      outlierDetection: { consecutive5xx: 50 },
      retry: { perTryTimeout: 'auto', hedge: true },
    },
  });
  const getPool = (): Promise<FailoverPool> => kube.get<FailoverPool>(fpPath(ns, 'app'));
  const serves = async (body: string): Promise<true | undefined> => ((await through(proxy, 'app.example.com').catch(() => ({ body: '' }))).body === body ? true : undefined);
  const events = async (reason: string): Promise<{ message: string; type: string }[]> =>
    (await kube.get<{ items: { reason: string; message: string; type: string }[] }>(`/api/v1/namespaces/${ns}/events`)).items.filter((e) => e.reason === reason);
  await until('the proxy to serve the primary', () => serves('primary'), 30_000);
  // The SPEC 10 fields reached the proxy (GET /api/v1/config shows the resolved config).
  const view = await (await fetch(`http://127.0.0.41:${adminPort}/api/v1/config`, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as { config: { pools: { policy: Record<string, unknown>; outlier?: Record<string, unknown>; retry?: Record<string, unknown> }[] } };
  const rendered = view.config.pools[0];
  assert.equal(rendered?.policy.failback, 'manual');
  assert.deepEqual(rendered?.policy.holdDown, { minDwellMs: 300, flapThreshold: 1, flapWindowMs: 4000, maxHoldMs: 1000 });
  assert.equal(rendered?.outlier?.consecutive5xx, 50);
  assert.deepEqual(rendered?.retry, { perTryTimeoutMs: 'auto', hedge: true });
  const fp0 = await until('status.failback', async () => { const p = await getPool(); return p.status?.failback ? p : undefined; });
  assert.deepEqual(fp0.status?.failback, { mode: 'manual', awaitingApproval: false });
  assert.equal(cond(fp0, 'Flapping'), 'False Stable');

  // Failover, then the primary is back: the pool waits for an approval.
  await primary.kill();
  await until('activeLevel 1', async () => ((await getPool()).status?.activeLevel === 1 ? true : undefined));
  const flapping = await until('the Flapping condition', async () => { const p = await getPool(); return cond(p, 'Flapping') === 'True Flapping' ? p : undefined; });
  assert.equal(flapping.status?.flapping?.failovers, 1);
  await until('a FlappingStarted Event', async () => ((await events('FlappingStarted')).length === 1 ? true : undefined));
  await primary.revive();
  await until('status.failback.awaitingApproval', async () => ((await getPool()).status?.failback?.awaitingApproval === true ? true : undefined));
  await sleep(1500);
  assert.equal((await getPool()).status?.activeLevel, 1, 'held on the backup');
  assert.equal(await serves('backup'), true);
  // The episode ends flap_window after its failover: condition False, a FlappingEnded Event (Normal).
  await until('Flapping False', async () => (cond(await getPool(), 'Flapping') === 'False Stable' ? true : undefined), 15_000);
  const ended = await until('a FlappingEnded Event', async () => { const e = await events('FlappingEnded'); return e.length === 1 ? e : undefined; });
  assert.equal(ended[0]?.type, 'Normal');
  assert.equal((await getPool()).status?.flapping, undefined, 'status.flapping removed with the episode');

  // Approve through the CR.
  const approvedAt = '2026-12-02T01:00:00Z';
  await kube.mergePatch(fpPath(ns, 'app'), { spec: { failback: { approve: { approvedAt } } } });
  await until('activeLevel 0 after the approval', async () => ((await getPool()).status?.activeLevel === 0 ? true : undefined));
  await until('the proxy to serve the primary again', () => serves('primary'));
  const approved = await until('status.failback.approvedAt', async () => { const p = await getPool(); return p.status?.failback?.approvedAt === approvedAt && !p.status.failback.awaitingApproval ? p : undefined; });
  assert.equal(approved.status?.failback?.mode, 'manual');

  // Idempotent: a second failover waits again, and the approvedAt already given approves nothing.
  await primary.kill();
  await until('activeLevel 1 again', async () => ((await getPool()).status?.activeLevel === 1 ? true : undefined));
  await primary.revive();
  await until('awaiting approval again', async () => ((await getPool()).status?.failback?.awaitingApproval === true ? true : undefined));
  await kube.mergePatch(fpPath(ns, 'app'), { spec: { failback: { approve: { approvedAt } } } });
  await sleep(1500);
  assert.equal((await getPool()).status?.activeLevel, 1, 'the same approvedAt does not approve again');
  await kube.mergePatch(fpPath(ns, 'app'), { spec: { failback: { approve: { approvedAt: '2026-12-02T01:05:00Z' } } } });
  await until('activeLevel 0 after the second approval', async () => ((await getPool()).status?.activeLevel === 0 ? true : undefined));

  // The apiserver refuses a malformed approval and a bad per-try timeout (the CRD's schema).
  for (const [patch, field] of [[{ failback: { approve: { approvedAt: 'yesterday' } } }, 'approvedAt'], [{ retry: { perTryTimeout: 'soon' } }, 'perTryTimeout'], [{ failback: { mode: 'sometimes' } }, 'mode']] as const) {
    await assert.rejects(kube.mergePatch(fpPath(ns, 'app'), { spec: patch }), (err: Error) => err.message.includes(field));
  }
});
