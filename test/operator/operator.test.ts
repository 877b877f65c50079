// The operator end to end, on the real control plane: the operator runs as a process with a ServiceAccount
// token bound to the shipped ClusterRole (so RBAC is proven enough), three real proxy processes on 127.0.0.x
// stand in for proxy Pods whose status the test sets, and real backends die and come back.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { TestBackend } from '../../proxy/test/helpers/backend.ts';
import type { FailoverPool } from '@veloflux/kube/types';
import { installCrds, withNamespace } from '../cluster/testenv.ts';
import {
  admin, adminGet, createProxyPod, CRD_YAML, fpPath, freePort, operatorCredentials, setPodReady, startOperator, startProxy, through, TOKEN, until,
} from './env.ts';
import type { ProxyProc } from './env.ts';

interface ProxyConfigView { version: string; config: { pools: { name: string; backends: { address: string }[] }[]; routes: { host?: string; pathPrefix: string; pool: string }[] } }

function appPool(primary: string, backup: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'veloflux.io/v1alpha1', kind: 'FailoverPool',
    metadata: { name: 'app' },
    spec: {
      proxySelector: { matchLabels: { app: 'proxy' } },
      routes: [{ hosts: ['app.example.com'] }],
      // Fast health checks so a failure is seen in well under a second.
      checkInterval: '300ms',
      recoveryInterval: '500ms',
      backends: [
        { address: primary, healthCheck: { timeout: '250ms', unhealthyThreshold: 1, healthyThreshold: 1 } },
        { address: backup, failoverLevel: 1, healthCheck: { timeout: '250ms', unhealthyThreshold: 1, healthyThreshold: 1 } },
      ],
      ...extra,
    },
  };
}

/** The Secrets of namespace `ns` in an operator's cache, by name, from its debug log ("labelled Secret cached"). */
const cachedSecretsIn = (op: { logs: readonly string[] }, ns: string): string[] => {
  const cached = new Set<string>();
  for (const line of op.logs) {
    if (!line.includes('labelled Secret cached')) continue;
    const { secret, change } = JSON.parse(line) as { secret: string; change: string };
    if (!secret.startsWith(`${ns}/`)) continue;
    const name = secret.slice(ns.length + 1);
    if (change === 'deleted') cached.delete(name); else cached.add(name);
  }
  return [...cached].sort();
};
const cond = (fp: FailoverPool | undefined, type: string): string | undefined => {
  const c = fp?.status?.conditions?.find((x) => x.type === type);
  return c ? `${c.status} ${c.reason}` : undefined;
};

test('the operator drives real proxies from FailoverPools (one leader at a time)', { timeout: 240_000 }, async (t) => {
  const ns = await withNamespace(t, 'op');
  await installCrds(CRD_YAML);
  const kube = admin();
  const kubeconfig = await operatorCredentials(ns);
  await kube.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'veloflux-admin-token', labels: { 'veloflux.io/secret': 'true' } }, stringData: { token: TOKEN } });

  const primary = await TestBackend.start('primary');
  const backup = await TestBackend.start('backup');
  t.after(async () => { await primary.kill(); await backup.kill(); });

  const [dataPort, adminPort] = [await freePort(), await freePort()];
  const proxies: ProxyProc[] = [];
  t.after(async () => { await Promise.all(proxies.map((p) => p.stop())); });
  for (let i = 0; i < 3; i++) {
    const ip = `127.0.0.${21 + i}`;
    proxies.push(await startProxy(ip, dataPort, adminPort, backup.address));
    await createProxyPod(ns, `proxy-${i}`, ip, adminPort);
  }
  const bootstrapVersion = (await adminGet<ProxyConfigView>(proxies[0] as ProxyProc, '/api/v1/config')).version;

  let operator = await startOperator(t, kubeconfig, ns);
  const getPool = (name = 'app'): Promise<FailoverPool> => kube.get<FailoverPool>(fpPath(ns, name));
  const events = async (reason: string): Promise<{ message: string }[]> =>
    (await kube.get<{ items: { reason: string; message: string; involvedObject: { name: string } }[] }>(`/api/v1/namespaces/${ns}/events`)).items.filter((e) => e.reason === reason);
  const labelledSecrets = async (): Promise<number> => (await kube.get<{ items: unknown[] }>('/api/v1/secrets?labelSelector=veloflux.io%2Fsecret%3Dtrue')).items.length;
  const allServe = async (host: string, body: string, path = '/'): Promise<true | undefined> => {
    const answers = await Promise.all(proxies.map((p) => through(p, host, path).catch(() => ({ status: 0, body: '' }))));
    return answers.every((a) => a.status === 200 && a.body === body) ? true : undefined;
  };

  await t.test('applying a FailoverPool pushes its config to every selected proxy', async () => {
    // Measured from a running operator (leading, caches synced), as a user's `kubectl apply` would meet it.
    await until('the operator to lead with synced caches', () => (operator.logs.some((l) => l.includes('leading: starting workers')) ? true : undefined));
    const t0 = performance.now();
    await kube.create(fpPath(ns), appPool(primary.address, backup.address));
    await until('every proxy to serve app.example.com from the primary', () => allServe('app.example.com', 'primary'), 20_000, 10);
    const ms = performance.now() - t0;
    process.stderr.write(`[e2e] apply -> all 3 proxies serving the new config: ${ms.toFixed(0)} ms\n`);
    t.diagnostic(`apply -> all 3 proxies serving: ${ms.toFixed(0)} ms`);
    const fp = await until('status Synced 3/3, Ready', async () => {
      const p = await getPool();
      return cond(p, 'Synced') === 'True AllSynced' && cond(p, 'Ready') === 'True Serving' && p.status?.observedGeneration === p.metadata.generation ? p : undefined;
    });
    assert.equal(fp.status?.syncedProxies, '3/3');
    assert.equal(fp.status?.activeLevel, 0);
    // The same counts as metrics, for the chart's out-of-sync alert.
    for (const state of ['selected', 'synced']) {
      await until(`veloflux_operator_pool_proxies ${state} = 3`, async () => ((await operator.metric('veloflux_operator_pool_proxies', `pool_namespace="${ns}",pool="app",state="${state}"`)) === 3 ? true : undefined));
    }
    assert.equal(cond(fp, 'FailoverActive'), 'False Primary');
    // A Secret without the label veloflux.io/secret=true never enters the operator: the apiserver filters it.
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'unlabelled' }, stringData: { password: 'not-for-the-operator' } });
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'labelled', labels: { 'veloflux.io/secret': 'true' } }, stringData: { x: 'y' } });
    await until('the labelled Secret cached', () => (operator.logs.some((l) => l.includes('labelled Secret cached') && l.includes(`${ns}/labelled`)) ? true : undefined));
    // Other test files share this apiserver and create labelled Secrets in their own namespaces, which this
    // operator (watching the whole cluster) caches too: so its Secrets are read per namespace from its debug log,
    // and the gauge is compared with the apiserver's own count of labelled Secrets.
    assert.deepEqual(cachedSecretsIn(operator, ns), ['labelled', 'veloflux-admin-token'], 'the token Secret and the labelled one, not the unlabelled one');
    await until('veloflux_operator_cached_secrets = the labelled Secrets in the cluster', async () => ((await operator.metric('veloflux_operator_cached_secrets')) === (await labelledSecrets()) ? true : undefined));
    assert.ok(!operator.logs.some((l) => l.includes('unlabelled')), 'the unlabelled Secret never reached the operator');
    // promtool accepts the operator's /metrics.
    const text = await (await fetch(`${operator.metricsUrl}/metrics`)).text();
    const check = await promtool(text);
    assert.equal(check.code, 0, check.text);
    const { version } = JSON.parse(readFileSync(new URL('../../operator/package.json', import.meta.url), 'utf8')) as { version: string };
    assert.ok(text.includes(`veloflux_build_info{version="${version}"} 1`), 'veloflux_build_info');
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds']) assert.match(text, new RegExp(`^${name} \\d`, 'm'), name);
    for (const p of proxies) {
      const view = await adminGet<ProxyConfigView>(p, '/api/v1/config');
      assert.notEqual(view.version, bootstrapVersion);
      assert.deepEqual(view.config.pools.map((x) => x.name), ['app']);
    }
  });

  await t.test('killing the primary moves status.activeLevel to 1 with an Event; recovery moves it back', async () => {
    await primary.kill();
    const down = await until('activeLevel 1', async () => { const p = await getPool(); return p.status?.activeLevel === 1 ? p : undefined; });
    assert.equal(cond(down, 'FailoverActive'), 'True Failover');
    assert.equal(down.status?.failoverCount, 1);
    assert.ok(down.status?.lastFailoverTime);
    await until('a FailoverActivated Event', async () => ((await events('FailoverActivated')).length === 1 ? true : undefined));
    await until('every proxy to serve from the backup', () => allServe('app.example.com', 'backup'));

    await primary.revive();
    const up = await until('activeLevel 0', async () => { const p = await getPool(); return p.status?.activeLevel === 0 ? p : undefined; });
    assert.equal(cond(up, 'FailoverActive'), 'False Primary');
    assert.equal(up.status?.failoverCount, 1);
    await until('a FailoverRecovered Event', async () => ((await events('FailoverRecovered')).length === 1 ? true : undefined));
    await until('Degraded False', async () => (cond(await getPool(), 'Degraded') === 'False AsExpected' ? true : undefined));
  });

  await t.test('editing the FailoverPool re-pushes', async () => {
    const before = (await adminGet<ProxyConfigView>(proxies[0] as ProxyProc, '/api/v1/config')).version;
    await kube.mergePatch(fpPath(ns, 'app'), { spec: { routes: [{ hosts: ['app.example.com'] }, { hosts: ['v2.example.com'], pathPrefix: '/v2' }] } });
    await until('every proxy to route v2.example.com/v2', () => allServe('v2.example.com', 'primary', '/v2/x'));
    // Versions differ per pod (each keeps its own listen address), so compare each with its own.
    const after = await Promise.all(proxies.map((p) => adminGet<ProxyConfigView>(p, '/api/v1/config')));
    assert.notEqual(after[0]?.version, before);
    await until('Synced for generation 2', async () => { const p = await getPool(); return p.status?.observedGeneration === 2 && cond(p, 'Synced') === 'True AllSynced' ? true : undefined; });
  });

  await t.test('service backends follow the EndpointSlices of their Service', async () => {
    // EndpointSlices refuse loopback IPs and one-label names like "localhost", and tests reach nothing but
    // loopback: the endpoints are FQDN slices whose name is "127.0.0.1" (a valid multi-label DNS name, and
    // loopback to the proxy), on the ports of real backends. A not-ready endpoint is never used.
    const [web1, web2] = await Promise.all([TestBackend.start('web-1'), TestBackend.start('web-2')]);
    t.after(async () => { await web1.kill(); await web2.kill(); });
    const slice = (name: string, port: number, ready: boolean): Record<string, unknown> => ({
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name, labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'FQDN',
      ports: [{ name: 'http', port, protocol: 'TCP' }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready } }],
    });
    await kube.create(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, slice('web-a', web1.port, true));
    await kube.create(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, slice('web-b', web2.port, false));
    const svc = appPool(primary.address, backup.address) as { metadata: { name: string }; spec: Record<string, unknown> };
    svc.metadata = { name: 'svc' };
    svc.spec = { ...svc.spec, routes: [{ hosts: ['svc.example.com'] }], backends: [{ service: { name: 'web', port: 'http' }, healthCheck: { timeout: '150ms' } }, { address: backup.address, failoverLevel: 1 }] };
    await kube.create(fpPath(ns), svc);
    const svcBackends = async (p: ProxyProc): Promise<string> =>
      ((await adminGet<ProxyConfigView>(p, '/api/v1/config')).config.pools.find((x) => x.name === 'svc')?.backends ?? []).map((b) => b.address).join(',');
    await until('every proxy to get the ready endpoint as the level-0 backend', async () =>
      ((await Promise.all(proxies.map(svcBackends))).every((b) => b === `127.0.0.1:${web1.port},${backup.address}`) ? true : undefined));
    await until('svc.example.com served by the ready endpoint', () => allServe('svc.example.com', 'web-1'));
    // The endpoints move: web-1 goes not ready, web-2 becomes ready.
    await kube.mergePatch(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/web-a`, { endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: false } }] });
    await kube.mergePatch(`/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices/web-b`, { endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }] });
    await until('every proxy to follow the EndpointSlices', async () =>
      ((await Promise.all(proxies.map(svcBackends))).every((b) => b === `127.0.0.1:${web2.port},${backup.address}`) ? true : undefined));
    await until('svc.example.com served by the endpoint that became ready', () => allServe('svc.example.com', 'web-2'));
    await kube.request('DELETE', fpPath(ns, 'svc'));
    await until('svc gone from every proxy', async () => ((await Promise.all(proxies.map(svcBackends))).every((b) => b === '') ? true : undefined));
  });

  await t.test('spec.override active fails over every proxy; its expiry returns the pool to auto by itself', async () => {
    const expiresAt = new Date(Date.now() + 3_000).toISOString().replace(/\.\d+Z$/, 'Z');
    await kube.mergePatch(fpPath(ns, 'app'), { spec: { override: { mode: 'active', reason: 'e2e drill', expiresAt } } });
    await until('every proxy to serve from the backup (manual)', () => allServe('app.example.com', 'backup'));
    const on = await until('FailoverActive ManualOverride', async () => { const p = await getPool(); return cond(p, 'FailoverActive') === 'True ManualOverride' ? p : undefined; });
    assert.equal(on.status?.override?.mode, 'active');
    await until('the override to expire and traffic to return to the primary', () => allServe('app.example.com', 'primary'), 15_000);
    const off = await until('status override expired', async () => { const p = await getPool(); return p.status?.override?.expired && cond(p, 'FailoverActive') === 'False Primary' ? p : undefined; });
    assert.equal(off.status?.override?.mode, 'auto');
    await kube.mergePatch(fpPath(ns, 'app'), { spec: { override: null } });
  });

  await t.test('a pool claiming a host + prefix that another pool has is refused with Conflict', async () => {
    await kube.create(fpPath(ns), { ...appPool(primary.address, backup.address), metadata: { name: 'clash' } });
    const clash = await until('clash Ready False Conflict', async () => { const p = await getPool('clash'); return cond(p, 'Ready') === 'False Conflict' ? p : undefined; });
    assert.match(clash.status?.conditions?.find((c) => c.type === 'Ready')?.message ?? '', /already routed to FailoverPool "app"/);
    assert.equal(cond(await getPool('app'), 'Ready'), 'True Serving');
    await kube.request('DELETE', fpPath(ns, 'clash'));
  });

  await t.test('restarting the operator causes no push and loses no status', async () => {
    const other = appPool(primary.address, backup.address) as { metadata: { name: string }; spec: Record<string, unknown> };
    other.metadata = { name: 'other' };
    other.spec = { ...other.spec, routes: [{ hosts: ['other.example.com'] }] };
    await kube.create(fpPath(ns), other);
    await until('every proxy to serve other.example.com', () => allServe('other.example.com', 'primary'));
    await until('other and app Synced', async () => (cond(await getPool('other'), 'Synced') === 'True AllSynced' && cond(await getPool('app'), 'Synced') === 'True AllSynced' ? true : undefined));
    // A second operator waits for the Lease while the first leads; the first one's graceful shutdown
    // releases the Lease, so the second takes over at once rather than after the lease duration.
    const second = await startOperator(t, kubeconfig, ns);
    await until('the second operator to wait for leadership', () => (second.logs.some((l) => l.includes('waiting for leadership')) ? true : undefined));
    assert.equal(await second.metric('veloflux_operator_leader'), 0);
    const stopAt = performance.now();
    assert.equal(await operator.stop(), 0, 'graceful shutdown exits 0');
    // Read once no operator writes (the second is still acquiring), so a real health flap on this busy
    // machine cannot change the status between the two reads.
    const before = await getPool();
    const otherBefore = await getPool('other');
    operator = second;
    await until('the second operator to lead', async () => ((await operator.metric('veloflux_operator_leader')) === 1 ? true : undefined));
    t.diagnostic(`leadership handed over in ${(performance.now() - stopAt).toFixed(0)} ms`);
    // Wait until the new operator has looked at every pod (a pod reconcile reads its config) and the pools.
    await until('the new operator to check all 3 pods', async () => ((await operator.metric('veloflux_operator_config_pushes_total', 'result="unchanged"')) >= 3 ? true : undefined));
    await until('the new operator to reconcile pools', async () => ((await operator.metric('veloflux_operator_reconcile_total', 'kind="pool",result="success"')) >= 2 ? true : undefined));
    assert.equal(await operator.metric('veloflux_operator_config_pushes_total', 'result="pushed"'), 0, 'no push after a restart');
    const after = await getPool();
    assert.equal(after.status?.failoverCount, before.status?.failoverCount);
    assert.equal(after.status?.lastFailoverTime, before.status?.lastFailoverTime);
    assert.deepEqual(after.status, before.status);
    assert.deepEqual((await getPool('other')).status, otherBefore.status);
  });

  await t.test('operator failover: a warm standby takes over after the leader is killed', async () => {
    const standby = await startOperator(t, kubeconfig, ns);
    // The standby lists and watches at once: its caches are warm before it leads.
    await until('the standby to sync its caches while waiting for the Lease', () => (standby.logs.some((l) => l.includes('caches synced')) && standby.logs.some((l) => l.includes('waiting for leadership')) ? true : undefined));
    assert.equal(await standby.metric('veloflux_operator_leader'), 0);
    assert.deepEqual(cachedSecretsIn(standby, ns), ['labelled', 'veloflux-admin-token'], 'the standby caches the labelled Secrets too');
    await until('the standby\'s veloflux_operator_cached_secrets = the labelled Secrets in the cluster', async () => ((await standby.metric('veloflux_operator_cached_secrets')) === (await labelledSecrets()) ? true : undefined));
    assert.equal((await fetch(`${standby.metricsUrl}/readyz`)).status, 200, 'a standby with synced caches is ready');
    assert.equal(await standby.metric('veloflux_operator_reconcile_total', 'kind="pool",result="success"'), 0, 'a standby reconciles nothing');
    const killedAt = performance.now();
    operator.child.kill('SIGKILL'); // no release: the standby must wait out the Lease (4 s in these tests)
    await until('the standby to reconcile after taking over', async () => ((await standby.metric('veloflux_operator_reconcile_total', 'kind="pool",result="success"')) > 0 ? true : undefined), 30_000);
    const ms = performance.now() - killedAt;
    process.stderr.write(`[e2e] leader SIGKILL -> first reconcile by the warm standby: ${ms.toFixed(0)} ms (lease duration 4 s)\n`);
    t.diagnostic(`leader SIGKILL -> first reconcile by the warm standby: ${ms.toFixed(0)} ms`);
    operator = standby;
    await until('the new leader to report every pool Synced', async () => (cond(await getPool(), 'Synced') === 'True AllSynced' ? true : undefined));
  });

  await t.test('a restarted proxy gets its config back; a pod that appears gets its config', async () => {
    const p1 = proxies[1] as ProxyProc;
    await p1.stop();
    await p1.restart(); // the bootstrap config again
    await until('the restarted proxy to serve app again', async () => ((await through(p1, 'app.example.com').catch(() => undefined))?.body === 'primary' ? true : undefined));
    // While it was down, the operator retried with a growing backoff rather than giving up or spinning.
    const retries = operator.logs.filter((l) => l.includes('requeued with backoff') && l.includes('proxy-1')).map((l) => (JSON.parse(l) as { retryInMs: number }).retryInMs);
    assert.ok(retries.length === 0 || retries.every((d, i) => i === 0 || d > (retries[i - 1] as number)), `backoff grows: ${retries.join(', ')}`);

    const p3 = await startProxy('127.0.0.24', dataPort, adminPort, backup.address);
    proxies.push(p3);
    await createProxyPod(ns, 'proxy-3', '127.0.0.24', adminPort);
    await until('the new pod to serve app', async () => ((await through(p3, 'app.example.com').catch(() => undefined))?.body === 'primary' ? true : undefined));
    await until('status 4/4', async () => ((await getPool()).status?.syncedProxies === '4/4' ? true : undefined));
    await setPodReady(ns, 'proxy-3', '127.0.0.24', false);
    await until('status 3/3 once the pod is not ready', async () => ((await getPool()).status?.syncedProxies === '3/3' ? true : undefined));
    // A pod whose admin token Secret does not exist: the operator cannot push, and says so in the status.
    await kube.create(`/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1', kind: 'Pod',
      metadata: { name: 'proxy-notoken', labels: { app: 'proxy' }, annotations: { 'veloflux.io/admin-token-secret': 'nope' } },
      spec: { containers: [{ name: 'proxy', image: 'veloflux/proxy:test' }] },
    });
    await setPodReady(ns, 'proxy-notoken', '127.0.0.25', true);
    const failing = await until('Synced TokenSecretMissing naming the Secret', async () => { const p = await getPool(); return cond(p, 'Synced') === 'False TokenSecretMissing' ? p : undefined; });
    assert.equal(cond(failing, 'Degraded'), 'True TokenSecretMissing');
    assert.match(failing.status?.conditions?.find((c) => c.type === 'Synced')?.message ?? '', /3\/4 proxies run the current config; proxy-notoken: admin token Secret "nope"/);
    await setPodReady(ns, 'proxy-notoken', '127.0.0.25', false);
    await until('Synced again without that pod', async () => (cond(await getPool(), 'Synced') === 'True AllSynced' ? true : undefined));
  });

  await t.test('warm-up: a bootstrap proxy is not ready, gets its config while not Ready, then serves with no 404', async () => {
    const ip = '127.0.0.26';
    const p5 = await startProxy(ip, dataPort, adminPort, backup.address, { bootstrap: true });
    proxies.push(p5);
    const readyz = async (): Promise<number> => (await fetch(`${p5.adminUrl}/readyz`, { signal: AbortSignal.timeout(5_000) })).status;
    assert.equal(await readyz(), 503, 'a bootstrap config is not ready');
    // The pod has an IP but is not Ready (its readiness probe is /readyz): the operator pushes anyway.
    await kube.create(`/api/v1/namespaces/${ns}/pods`, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'proxy-warm', labels: { app: 'proxy' } },
      spec: { containers: [{ name: 'proxy', image: 'veloflux/proxy:test', ports: [{ name: 'admin', containerPort: adminPort }] }] },
    });
    await setPodReady(ns, 'proxy-warm', ip, false);
    await until('the not-Ready bootstrap proxy to report ready after the push', async () => ((await readyz()) === 200 ? true : undefined), 20_000, 20);
    // From the moment it reports ready, a routed host never answers 404.
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) statuses.push((await through(p5, 'app.example.com')).status);
    assert.ok(!statuses.includes(404), `no 404 after ready: ${statuses.join(',')}`);
    assert.ok(statuses.every((s) => s === 200), statuses.join(','));
    // Not counted while not Ready; counted once the kubelet would mark it Ready.
    assert.equal((await getPool()).status?.proxies?.selected, 3);
    await setPodReady(ns, 'proxy-warm', ip, true);
    await until('status 4/4 with the warm pod Ready', async () => ((await getPool()).status?.syncedProxies === '4/4' ? true : undefined));
    await setPodReady(ns, 'proxy-warm', ip, false);
    await until('status 3/3 again', async () => ((await getPool()).status?.syncedProxies === '3/3' ? true : undefined));
  });

  await t.test('deleting a FailoverPool removes it from the proxies', async () => {
    await kube.request('DELETE', fpPath(ns, 'app'));
    await until('app gone from every proxy', async () => {
      const views = await Promise.all(proxies.slice(0, 3).map((p) => adminGet<ProxyConfigView>(p, '/api/v1/config')));
      return views.every((v) => v.config.pools.map((x) => x.name).join() === 'other') ? true : undefined;
    });
    const res = await through(proxies[0] as ProxyProc, 'app.example.com');
    assert.equal(res.status, 404);
    // The last pool goes too: the proxies are left with an empty config, not the last one.
    await kube.request('DELETE', fpPath(ns, 'other'));
    await until('no pool left on any proxy', async () => {
      const views = await Promise.all(proxies.slice(0, 3).map((p) => adminGet<ProxyConfigView>(p, '/api/v1/config')));
      return views.every((v) => v.config.pools.length === 0) ? true : undefined;
    });
  });

  assert.equal(await operator.stop(), 0);
  assert.ok(!operator.logs.some((l) => l.includes(TOKEN)), 'the admin token never appears in the operator log');
});

function promtool(text: string): Promise<{ code: number; text: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, text: `${stdout}${stderr}` });
    });
    child.stdin?.end(text);
  });
}
