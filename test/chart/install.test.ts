// The chart against a real kube-apiserver (the run's shared control plane; no kubelet, so Deployments get no
// pods: the checks are that every object is accepted and exists). In order, because the monitoring CRDs, once
// installed, stay for the rest of the run:
//   1. install (server-side dry run first), no ServiceMonitor while its CRD is missing; add the Prometheus Operator
//      CRDs, upgrade: ServiceMonitor and PrometheusRule appear, the admin token stays; RBAC as the apiserver
//      decides it; uninstall leaves nothing but the CRDs.
//      The operator process, run with the Deployment's arguments under the chart's ServiceAccount, leads and syncs.
//   2. every option on: each rendered object through a server-side apply dry run with strict field validation.
//   3. the examples (FailoverPool, sidecar) the same way, against the CRD that ships.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { clusterFromEnv, installCrds, serviceAccountToken, waitFor, withNamespace, writeKubeconfig } from '../cluster/testenv.ts';
import { CHART, MONITORING_API, ROOT, find, helm, one, parseObjects, readRepoFile, template } from './helm.ts';
import type { KubeObject } from './helm.ts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { TestBackend } from '../../proxy/test/helpers/backend.ts';
import { createProxyPod, freePort, startProxy, through, until } from '../operator/env.ts';
import { CLUSTER_KINDS, NAMESPACED_KINDS, allowed, api, dryRunApply, exists, listNames, readSecretToken, servedGroups } from './kube.ts';

const kubeconfig = (): string => writeKubeconfig(clusterFromEnv().adminToken, 'helm');

async function assertAccepted(objects: KubeObject[]): Promise<void> {
  const refused: string[] = [];
  for (const o of objects) {
    const r = await dryRunApply(o);
    if (r.status !== 200 && r.status !== 201) refused.push(`${o.kind}/${o.metadata.name}: ${r.status} ${r.body.slice(0, 400)}`);
  }
  assert.deepEqual(refused, [], 'objects the apiserver refused');
}

test('helm install, upgrade when the Prometheus Operator CRDs appear, uninstall leaves only the CRDs', async (t) => {
  assert.ok(!(await servedGroups()).includes('monitoring.coreos.com'), 'this test must run before anything installs the monitoring.coreos.com CRDs');
  const ns = await withNamespace(t, 'chart');
  const shop = await withNamespace(t, 'shop');
  const release = `vf-${randomBytes(3).toString('hex')}`;
  const fullname = `${release}-veloflux`;
  const kc = kubeconfig();
  const args = [CHART, '--namespace', ns, '--set', `sidecar.namespaces[0]=${shop}`];

  // Server-side dry run: helm renders with lookup and has the apiserver check every object; nothing is stored.
  await helm(['install', release, ...args, '--dry-run=server'], kc);
  assert.deepEqual(await listNames('Deployment', `app.kubernetes.io/instance=${release}`, ns), [], 'a dry run creates nothing');

  await helm(['install', release, ...args], kc);
  // If an assertion below fails, the release goes anyway: its labelled admin-token Secrets would otherwise stay (no
  // controller-manager empties a deleted namespace) and count in the operators of later test files.
  let uninstalled = false;
  t.after(() => (uninstalled ? undefined : helm(['uninstall', release, '--namespace', ns], kc).catch(() => undefined)));
  const installed = parseObjects(await helm(['get', 'manifest', release, '--namespace', ns], kc));
  assert.equal(find(installed, 'ServiceMonitor').length + find(installed, 'PrometheusRule').length, 0, 'no monitoring objects without their CRDs');
  for (const o of installed) assert.ok(await exists({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? ns } }), `${o.kind}/${o.metadata.name} exists`);
  assert.equal((await api('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/failoverpools.veloflux.io')).status, 200, 'helm installed the CRD from crds/');
  const token = await readSecretToken(ns, `${fullname}-admin-token`);
  assert.equal(token.length, 48);
  assert.equal(await readSecretToken(shop, `${fullname}-admin-token`), token, 'the sidecar namespace has the same token');

  // The operator's service account may do what the operator needs, and no more (RBAC in the apiserver decides).
  const sa = `${fullname}-operator`;
  for (const [verb, group, resource, sub] of [['watch', 'veloflux.io', 'failoverpools', ''], ['patch', 'veloflux.io', 'failoverpools', 'status'],
    ['list', '', 'pods', ''], ['watch', '', 'secrets', ''], ['list', 'discovery.k8s.io', 'endpointslices', ''], ['create', '', 'events', ''],
    ['update', 'coordination.k8s.io', 'leases', '']] as const) {
    assert.ok(await allowed(ns, sa, verb, group, resource, sub), `operator may ${verb} ${resource}${sub ? `/${sub}` : ''}`);
  }
  for (const [verb, group, resource] of [['update', 'veloflux.io', 'failoverpools'], ['delete', '', 'pods'], ['create', '', 'secrets'], ['update', 'apps', 'deployments'], ['delete', 'coordination.k8s.io', 'leases']] as const) {
    assert.ok(!(await allowed(ns, sa, verb, group, resource)), `operator may not ${verb} ${resource}`);
  }
  // Its Lease permissions hold in the release namespace only (a Role, not the ClusterRole).
  assert.ok(!(await allowed(ns, sa, 'update', 'coordination.k8s.io', 'leases', '', shop)), 'operator may not update leases in another namespace');

  // The operator as the chart runs it: its arguments from the Deployment, the chart's ServiceAccount (so the
  // chart's RBAC), no pods. It must win the Lease in the release namespace and sync every informer.
  await runOperatorAsDeployed(t, ns, sa, one(installed, 'Deployment', `${fullname}-operator`));

  // The Prometheus Operator arrives: helm reads discovery again on upgrade and renders the monitoring objects.
  await installCrds(readRepoFile('test/chart/fixtures/monitoring-crds.yaml'));
  await helm(['upgrade', release, ...args], kc);
  const upgraded = parseObjects(await helm(['get', 'manifest', release, '--namespace', ns], kc));
  for (const kind of ['ServiceMonitor', 'PrometheusRule']) {
    assert.deepEqual(await listNames(kind, `app.kubernetes.io/instance=${release}`, ns), [fullname], `${kind} after the upgrade`);
  }
  assert.equal(await readSecretToken(ns, `${fullname}-admin-token`), token, 'the upgrade kept the admin token');
  assert.equal(await readSecretToken(shop, `${fullname}-admin-token`), token);

  await helm(['uninstall', release, '--namespace', ns], kc);
  uninstalled = true;
  const left: string[] = [];
  for (const o of upgraded) {
    if (await exists({ ...o, metadata: { ...o.metadata, namespace: o.metadata.namespace ?? ns } })) left.push(`${o.kind}/${o.metadata.name}`);
  }
  const selector = `app.kubernetes.io/instance=${release}`;
  for (const kind of NAMESPACED_KINDS) for (const n of [ns, shop]) for (const name of await listNames(kind, selector, n)) left.push(`${kind} ${n}/${name}`);
  for (const kind of CLUSTER_KINDS) for (const name of await listNames(kind, selector)) left.push(`${kind} ${name}`);
  for (const name of await listNames('Secret', `owner=helm,name=${release}`, ns)) left.push(`helm release record ${name}`);
  assert.deepEqual(left, [], 'objects left after helm uninstall');
  assert.equal((await api('GET', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/failoverpools.veloflux.io')).status, 200, 'the CRD stays');
});

test('namespaced mode: helm install renders Roles only (no ClusterRole), the operator drives a proxy there under that RBAC', { timeout: 180_000 }, async (t) => {
  const ns = await withNamespace(t, 'nsmode');
  const shop = await withNamespace(t, 'shop');
  const other = await withNamespace(t, 'other');
  const release = `vf-${randomBytes(3).toString('hex')}`;
  const fullname = `${release}-veloflux`;
  const kc = kubeconfig();
  await helm(['install', release, CHART, '--namespace', ns, '--set', `operator.watchNamespaces[0]=${shop}`, '--set', `sidecar.namespaces[0]=${shop}`], kc);
  t.after(() => helm(['uninstall', release, '--namespace', ns], kc).catch(() => undefined));
  const installed = parseObjects(await helm(['get', 'manifest', release, '--namespace', ns], kc));

  // The RBAC as the apiserver stores it: no cluster-scoped role or binding of this release, and none binds the SA.
  const sa = `${fullname}-operator`;
  const selector = `app.kubernetes.io/instance=${release}`;
  assert.deepEqual(await listNames('ClusterRole', selector), [], 'no ClusterRole in namespaced mode');
  assert.deepEqual(await listNames('ClusterRoleBinding', selector), [], 'no ClusterRoleBinding in namespaced mode');
  const bindings = JSON.parse((await api('GET', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings')).body) as { items: { metadata: { name: string }; subjects?: { kind: string; name: string; namespace?: string }[] }[] };
  assert.deepEqual(bindings.items.filter((b) => b.subjects?.some((s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === ns)).map((b) => b.metadata.name), [], 'no ClusterRoleBinding names the operator');
  assert.deepEqual(await listNames('Role', selector, shop), [`${fullname}-operator`]);
  assert.deepEqual(await listNames('RoleBinding', selector, shop), [`${fullname}-operator`]);
  const role = JSON.parse((await api('GET', `/apis/rbac.authorization.k8s.io/v1/namespaces/${shop}/roles/${fullname}-operator`)).body) as { rules: { resources: string[] }[] };
  assert.ok(role.rules.some((r) => r.resources.includes('secrets')) && role.rules.some((r) => r.resources.includes('pods')), 'the Role in the watched namespace grants pods and secrets');
  for (const [verb, group, resource, sub] of [['watch', 'veloflux.io', 'failoverpools', ''], ['patch', 'veloflux.io', 'failoverpools', 'status'],
    ['list', '', 'pods', ''], ['watch', '', 'secrets', ''], ['list', 'discovery.k8s.io', 'endpointslices', ''], ['create', '', 'events', '']] as const) {
    assert.ok(await allowed(ns, sa, verb, group, resource, sub, shop), `operator may ${verb} ${resource}${sub ? `/${sub}` : ''} in the watched namespace`);
    assert.ok(!(await allowed(ns, sa, verb, group, resource, sub, other)), `operator may not ${verb} ${resource}${sub ? `/${sub}` : ''} in an unwatched namespace`);
    assert.ok(!(await allowed(ns, sa, verb, group, resource, sub, '')), `operator may not ${verb} ${resource}${sub ? `/${sub}` : ''} cluster-wide`);
  }
  assert.ok(await allowed(ns, sa, 'update', 'coordination.k8s.io', 'leases'), 'the Lease stays in the release namespace');

  // A proxy "pod" in the watched namespace (a real proxy on loopback, the chart's token), a FailoverPool there.
  const token = await readSecretToken(shop, `${fullname}-admin-token`);
  const tokenFile = join(mkdtempSync(join(tmpdir(), 'vf-nsmode-')), 'token');
  writeFileSync(tokenFile, token);
  const backend = await TestBackend.start('shop-backend');
  t.after(() => backend.kill());
  const [dataPort, adminPort] = [await freePort(), await freePort()];
  const proxy = await startProxy('127.0.0.61', dataPort, adminPort, backend.address, { tokenFile });
  t.after(() => proxy.stop());
  await createProxyPod(shop, 'gateway-0', '127.0.0.61', adminPort, { 'veloflux.io/proxy': 'true' });
  await api('POST', `/apis/veloflux.io/v1alpha1/namespaces/${shop}/failoverpools`, {
    apiVersion: 'veloflux.io/v1alpha1', kind: 'FailoverPool', metadata: { name: 'shop' },
    spec: { proxySelector: { matchLabels: { 'veloflux.io/proxy': 'true' } }, routes: [{ hosts: ['shop.example.com'] }], backends: [{ address: backend.address }] },
  }).then((r) => assert.equal(r.status, 201, r.body));

  await runOperatorAsDeployed(t, ns, sa, one(installed, 'Deployment', `${fullname}-operator`), async () => {
    await until('the proxy in the watched namespace to serve shop.example.com', async () => {
      const r = await through(proxy, 'shop.example.com').catch(() => undefined);
      return r?.status === 200 && r.body === 'shop-backend' ? true : undefined;
    }, 30_000, 100);
  });
});

test('every option on: the apiserver accepts each rendered object (server-side dry run, strict fields)', async (t) => {
  const ns = await withNamespace(t, 'allon');
  const shop = await withNamespace(t, 'shop');
  await installCrds(readRepoFile('test/chart/fixtures/monitoring-crds.yaml'));
  const objects = await template(['-f', join(ROOT, 'test/chart/fixtures/all-on.yaml'), '--set', `sidecar.namespaces[0]=${shop}`, '--include-crds', ...MONITORING_API], 'edge', ns);
  assert.ok(find(objects, 'ServiceMonitor').length === 1 && find(objects, 'CustomResourceDefinition').length >= 1);
  await assertAccepted(objects.map((o) => (o.kind === 'CustomResourceDefinition' || o.metadata.namespace ? o : { ...o, metadata: { ...o.metadata, namespace: ns } })));
});

test('the examples (gateway FailoverPool, sidecar) are accepted by the apiserver with the CRD that ships', async (t) => {
  const ns = await withNamespace(t, 'examples');
  await installCrds(readRepoFile('crds/failoverpool.yaml'));
  const objects = ['examples/kubernetes/failoverpool.yaml', 'examples/kubernetes/sidecar.yaml']
    .flatMap((f) => parseObjects(readRepoFile(f)))
    .map((o) => ({ ...o, metadata: { ...o.metadata, namespace: ns } }));
  assert.deepEqual(objects.map((o) => o.kind), ['FailoverPool', 'Deployment', 'Service', 'FailoverPool', 'NetworkPolicy']);
  await assertAccepted(objects);
});

/**
 * An operator log line that reports a refusal by RBAC: "forbidden" or a 403 in what it says. The numbers every
 * line carries (time, pid) are left out, so a timestamp such as 1796290484032 is not read as a 403.
 */
function isRbacRefusal(line: string): boolean {
  let text = line;
  try {
    const { time: _time, pid: _pid, ...rest } = JSON.parse(line) as Record<string, unknown>;
    text = JSON.stringify(rest);
  } catch { /* not JSON (a stack trace, a node warning): read it whole */ }
  return /forbidden|\b403\b/i.test(text);
}

/**
 * Starts operator/src/main.ts with the arguments of the chart's Deployment (the metrics listener moved to a free
 * loopback port) and a token of the chart's ServiceAccount; waits until it leads (the Lease names it) and its
 * informers have synced, which needs every list/watch the ClusterRole grants; then stops it with SIGTERM.
 */
async function runOperatorAsDeployed(t: { after: (fn: () => unknown) => void }, ns: string, sa: string, deployment: KubeObject, whileLeading?: () => Promise<void>): Promise<void> {
  const container = (deployment as unknown as { spec: { template: { spec: { containers: { args: string[] }[] } } } }).spec.template.spec.containers[0];
  const args = (container?.args ?? []).map((a) => (a.startsWith('--metrics-address=') ? '--metrics-address=127.0.0.1:0' : a));
  const leaseName = args.find((a) => a.startsWith('--lease-name='))?.slice('--lease-name='.length) ?? '';
  assert.ok(args.includes(`--namespace=${ns}`) && leaseName !== '', args.join(' '));
  const kc = writeKubeconfig(await serviceAccountToken(ns, sa), sa);
  const child = spawn(process.execPath, [join(ROOT, 'operator/src/main.ts'), '--kubeconfig', kc, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  child.stdout.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
  child.stderr.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
  const exited = once(child, 'exit');
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  try {
    await waitFor('the operator (chart arguments and RBAC) to lead and sync its caches', async () => {
      if (child.exitCode !== null) throw new Error(`operator exited ${child.exitCode}`);
      return logs.some((l) => l.includes('leading: starting workers')) ? true : undefined;
    }, 30_000);
    const lease = JSON.parse((await api('GET', `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${leaseName}`)).body) as { spec?: { holderIdentity?: string } };
    assert.ok(lease.spec?.holderIdentity, `Lease ${ns}/${leaseName} has a holder`);
    await whileLeading?.();
    assert.ok(!logs.some(isRbacRefusal), `no RBAC refusal in the operator log:\n${logs.join('\n')}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}\noperator log:\n${logs.slice(-30).join('\n')}`);
  }
  child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0, `operator exit after SIGTERM:\n${logs.slice(-10).join('\n')}`);
}
