// Rotating the admin token on the real control plane: the operator switches to the Secret's new token at once,
// the proxies (token from admin.token_file, as the chart mounts it) answer 401 until their file changes, the
// status says why and names the pods, and once each proxy re-reads its file the operator's edits reach it
// within seconds (it retries 401s every 2 s at most rather than backing off).
import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TestBackend } from '../../proxy/test/helpers/backend.ts';
import type { FailoverPool } from '@veloflux/kube/types';
import { installCrds, withNamespace } from '../cluster/testenv.ts';
import { admin, createProxyPod, CRD_YAML, fpPath, freePort, operatorCredentials, startOperator, startProxy, through, until } from './env.ts';
import type { ProxyProc } from './env.ts';

const cond = (fp: FailoverPool, type: string): string | undefined => {
  const c = fp.status?.conditions?.find((x) => x.type === type);
  return c ? `${c.status} ${c.reason}` : undefined;
};

/** Replaces the file atomically, as the kubelet swaps a Secret volume's ..data symlink. */
function writeToken(file: string, token: string): void {
  writeFileSync(`${file}.tmp`, token);
  renameSync(`${file}.tmp`, file);
}

test('token rotation: status shows Unauthorized with the pods while proxies refuse, edits flow again once they re-read', { timeout: 180_000 }, async (t) => {
  const ns = await withNamespace(t, 'rot');
  await installCrds(CRD_YAML);
  const kube = admin();
  const kubeconfig = await operatorCredentials(ns);
  const secretPath = `/api/v1/namespaces/${ns}/secrets/veloflux-admin-token`;
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'veloflux-admin-token', labels: { 'veloflux.io/secret': 'true' } }, stringData: { token: 'old-token-0123456789' } });
  const backend = await TestBackend.start('app');
  t.after(async () => { await backend.kill(); });
  const [dataPort, adminPort] = [await freePort(), await freePort()];
  const proxies: { proc: ProxyProc; tokenFile: string }[] = [];
  t.after(async () => { await Promise.all(proxies.map((p) => p.proc.stop())); });
  for (let i = 0; i < 2; i++) {
    const ip = `127.0.0.${41 + i}`;
    const tokenFile = join(mkdtempSync(join(tmpdir(), 'vf-e2e-token-')), 'token');
    writeToken(tokenFile, 'old-token-0123456789');
    proxies.push({ proc: await startProxy(ip, dataPort, adminPort, backend.address, { tokenFile }), tokenFile });
    await createProxyPod(ns, `proxy-${i}`, ip, adminPort);
  }
  const operator = await startOperator(t, kubeconfig, ns);
  const pool = (hosts: string[]): Record<string, unknown> => ({
    apiVersion: 'veloflux.io/v1alpha1', kind: 'FailoverPool', metadata: { name: 'app' },
    spec: { proxySelector: { matchLabels: { app: 'proxy' } }, routes: [{ hosts }], backends: [{ address: backend.address }] },
  });
  await kube.create(fpPath(ns), pool(['a.example.com']));
  const serves = async (host: string): Promise<true | undefined> =>
    ((await Promise.all(proxies.map((p) => through(p.proc, host).catch(() => ({ status: 0, body: '' }))))).every((r) => r.status === 200) ? true : undefined);
  await until('both proxies serve a.example.com', () => serves('a.example.com'));

  // Rotate: the Secret first (the operator switches at once), the proxies' files later.
  const secret = await kube.get<{ metadata: { resourceVersion: string } }>(secretPath);
  await kube.update(secretPath, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'veloflux-admin-token', namespace: ns, labels: { 'veloflux.io/secret': 'true' }, resourceVersion: secret.metadata.resourceVersion }, stringData: { token: 'new-token-9876543210' } });
  await kube.mergePatch(fpPath(ns, 'app'), { spec: { routes: [{ hosts: ['b.example.com'] }] } });
  const refused = await until('Synced False Unauthorized naming both pods', async () => {
    const fp = await kube.get<FailoverPool>(fpPath(ns, 'app'));
    // Each pod's push fails on its own schedule: wait until the condition names both, not just the first.
    const message = fp.status?.conditions?.find((c) => c.type === 'Synced')?.message ?? '';
    return cond(fp, 'Synced') === 'False Unauthorized' && message.includes('proxy-0:') && message.includes('proxy-1:') ? fp : undefined;
  }, 30_000);
  const synced = refused.status?.conditions?.find((c) => c.type === 'Synced')?.message ?? '';
  assert.match(synced, /proxy-0: the proxy refuses the operator's admin token \(401\)/);
  assert.match(synced, /proxy-1: the proxy refuses the operator's admin token \(401\)/);
  assert.equal(cond(refused, 'Degraded'), 'True Unauthorized');
  assert.ok(!synced.includes('new-token') && !synced.includes('old-token'), 'no token in the status');

  // The kubelet updates the mounted files: each proxy re-reads its token, the operator's retry gets through.
  const t0 = performance.now();
  for (const p of proxies) writeToken(p.tokenFile, 'new-token-9876543210');
  await until('both proxies serve the edit made while they refused the token', () => serves('b.example.com'), 30_000);
  const ms = performance.now() - t0;
  process.stderr.write(`[e2e] token files rotated -> the pending edit served by both proxies: ${ms.toFixed(0)} ms\n`);
  t.diagnostic(`token files rotated -> edit served: ${ms.toFixed(0)} ms`);
  await until('Synced True again', async () => (cond(await kube.get<FailoverPool>(fpPath(ns, 'app')), 'Synced') === 'True AllSynced' ? true : undefined), 30_000);
  // And a further edit arrives promptly.
  await kube.mergePatch(fpPath(ns, 'app'), { spec: { routes: [{ hosts: ['c.example.com'] }] } });
  await until('both proxies serve the next edit', () => serves('c.example.com'), 20_000);
  assert.equal(await operator.stop(), 0);
  assert.ok(!operator.logs.some((l) => l.includes('new-token-9876543210') || l.includes('old-token-0123456789')), 'no token in the operator log');
});
