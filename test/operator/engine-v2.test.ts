// Engine v2 in Kubernetes (SPEC 10), on the real control plane: a FailoverPool with spec.failback.mode manual is
// held on its backup until spec.failback.approve.approvedAt changes (idempotent: the same value approves nothing
// the next time), visible in status.failback; spec.holdDown's flapping episode is the Flapping condition and the
// FlappingStarted / FlappingEnded Events; a shared ramp (the operator decides for two proxies) pauses on a backup
// that answers 5xx, judged on the traffic both proxies report, and resumes when it recovers. The operator runs as a
// process, the proxies are real processes on 127.0.0.x.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TestBackend } from '../../proxy/test/helpers/backend.ts';
import type { FailoverPool } from '@veloflux/kube/types';
import { installCrds, withNamespace } from '../cluster/testenv.ts';
import { admin, adminGet, createAdminTokenSecret, createProxyPod, CRD_YAML, fpPath, freePort, operatorCredentials, startOperator, startProxy, through, TOKEN, until } from './env.ts';
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
  await createAdminTokenSecret(t, ns);
  const primary = await TestBackend.start('primary');
  const backup = await TestBackend.start('backup');
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

interface RampStatus { pools: { ramp: { from: number; to: number; percent: number; paused: { reason: string } | null } | null; activeLevel: number; decision: { source: string } }[] }

test('shared ramp gate: a backup that answers 5xx pauses the operator\'s ramp for every proxy; it resumes when the backup recovers', { timeout: 180_000 }, async (t) => {
  const ns = await withNamespace(t, 'v2ramp');
  await installCrds(CRD_YAML);
  const kube = admin();
  const kubeconfig = await operatorCredentials(ns);
  await createAdminTokenSecret(t, ns);
  const [p1, p2, p3, backup] = await Promise.all(['p1', 'p2', 'p3', 'backup'].map((n) => TestBackend.start(n))) as [TestBackend, TestBackend, TestBackend, TestBackend];
  let broken = false;
  backup.handler = (_req, res) => {
    if (!broken) return false;
    res.writeHead(500).end('backup broken');
    return true;
  };
  t.after(async () => { await Promise.all([p1, p2, p3, backup].map((b) => b.kill())); });
  const proxies: ProxyProc[] = [];
  for (const [i, ip] of ['127.0.0.44', '127.0.0.45'].entries()) {
    const [dataPort, adminPort] = [await freePort(), await freePort()];
    const proxy = await startProxy(ip, dataPort, adminPort, backup.address);
    proxies.push(proxy);
    t.after(async () => { await proxy.stop(); });
    await createProxyPod(ns, `proxy-${i}`, ip, adminPort);
  }
  await startOperator(t, kubeconfig, ns);
  const hc = { timeout: '250ms', unhealthyThreshold: 1, healthyThreshold: 1 };
  await kube.create(fpPath(ns), {
    apiVersion: 'veloflux.io/v1alpha1', kind: 'FailoverPool', metadata: { name: 'app' },
    spec: {
      proxySelector: { matchLabels: { app: 'proxy' } },
      routes: [{ hosts: ['app.example.com'] }],
      checkInterval: '300ms',
      recoveryInterval: '1m',
      strategy: 'graceful',
      stepPercent: 10,
      stepInterval: '1s',
      rampGate: { maxErrorPercent: 5, maxP99: '2s' },
      backends: [
        { address: p1.address, healthCheck: hc }, { address: p2.address, healthCheck: hc }, { address: p3.address, healthCheck: hc },
        { address: backup.address, failoverLevel: 1, healthCheck: hc },
      ],
    },
  });
  const getPool = (): Promise<FailoverPool> => kube.get<FailoverPool>(fpPath(ns, 'app'));
  const ramps = (): Promise<RampStatus['pools'][number][]> => Promise.all(proxies.map(async (p) => (await adminGet<RampStatus>(p, '/api/v1/failover/status?pool=app')).pools[0] as RampStatus['pools'][number]));
  const events = async (reason: string): Promise<{ message: string; type: string }[]> =>
    (await kube.get<{ items: { reason: string; message: string; type: string }[] }>(`/api/v1/namespaces/${ns}/events`)).items.filter((e) => e.reason === reason);
  const metric = async (p: ProxyProc): Promise<string | undefined> => (await (await fetch(`${p.adminUrl}/metrics`)).text()).split('\n').find((l) => l.startsWith('veloflux_ramp_paused{pool="app"}'));
  await until('both proxies to serve the primaries from a shared decision', async () => {
    const r = await Promise.all(proxies.map((p) => through(p, 'app.example.com').catch(() => ({ body: '' }))));
    const st = await ramps().catch(() => []);
    return r.every((x) => /^p\d$/.test(x.body)) && st.length === 2 && st.every((s) => s.decision.source === 'shared') ? true : undefined;
  }, 30_000);

  // Load through both proxies for the whole test: the gate judges the traffic both of them see.
  let stop = false;
  let sent = 0;
  const load = Promise.all(proxies.flatMap((p) => [0, 1].map(async () => {
    while (!stop) { await through(p, 'app.example.com').catch(() => undefined); sent++; }
  })));
  t.after(async () => { stop = true; await load; });

  // Two of three primaries die: level 0 is below half its capacity; the operator ramps onto level 1 by 10% a second.
  await Promise.all([p1.kill(), p2.kill()]);
  const at = await until('the shared ramp at 30% or more', async () => {
    const st = await ramps();
    const pct = st[0]?.ramp?.percent;
    return pct !== undefined && pct >= 30 && st.every((s) => s.ramp?.percent === pct) ? pct : undefined;
  }, 20_000);
  broken = true;
  // The next due step (or the one after: the break may fall late in a step) pauses, for every proxy at once.
  const paused = await until('status.consensus.paused', async () => { const p = await getPool(); return p.status?.consensus?.paused ? p : undefined; }, 15_000);
  assert.match(paused.status?.consensus?.paused?.reason ?? '', /level 1 answered .*% errors over the last step \(max_error_percent 5\)/);
  const held = await until('every proxy to show the pause', async () => {
    const st = await ramps();
    return st.every((s) => s.ramp?.paused) ? st : undefined;
  }, 5_000);
  const percent = held[0]?.ramp?.percent as number;
  assert.ok(percent >= at && percent <= at + 20, `paused at ${percent}% (the backup broke at ${at}%)`);
  for (const s of held) {
    assert.equal(s.ramp?.percent, percent, 'the same share on every proxy');
    assert.match(s.ramp?.paused?.reason ?? '', /max_error_percent 5/);
  }
  for (const p of proxies) assert.equal(await metric(p), 'veloflux_ramp_paused{pool="app"} 1');
  const pausedEvents = await until('a RampPaused Event', async () => { const e = await events('RampPaused'); return e.length > 0 ? e : undefined; });
  assert.equal(pausedEvents.length, 1);
  assert.equal(pausedEvents[0]?.type, 'Warning');
  assert.match(pausedEvents[0]?.message ?? '', /failover ramp paused at \d+% on level 1: level 1 answered/);
  // Still paused three steps later: no step while the backup errs.
  await sleep(3000);
  for (const s of await ramps()) assert.equal(s.ramp?.percent, percent, 'no ramp step while paused');

  broken = false;
  await until('the pause to end', async () => ((await getPool()).status?.consensus?.paused === undefined ? true : undefined), 15_000);
  const resumed = await until('a RampResumed Event', async () => { const e = await events('RampResumed'); return e.length > 0 ? e : undefined; });
  assert.equal(resumed[0]?.type, 'Normal');
  await until('the ramp at 100% on every proxy', async () => ((await ramps()).every((s) => s.ramp === null && s.activeLevel === 1) ? true : undefined), 20_000);
  for (const p of proxies) assert.equal(await metric(p), 'veloflux_ramp_paused{pool="app"} 0');
  assert.equal((await events('RampPaused')).length, 1, 'one RampPaused Event for the one pause');
  stop = true;
  await load;
  assert.ok(sent > 0);
});
