// The shipped CRD on the real apiserver: it installs, defaults apply, and the CEL rules refuse invalid
// FailoverPools with their own messages.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { Kube } from '@veloflux/operator/kube';
import { adminKubeConfig, clusterFromEnv, installCrds, withNamespace, writeKubeconfig } from '../cluster/testenv.ts';

const CRD = readFileSync(new URL('../../crds/failoverpool.yaml', import.meta.url), 'utf8');
const G = { group: 'veloflux.io', version: 'v1alpha1', plural: 'failoverpools' };

function pool(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'veloflux.io/v1alpha1',
    kind: 'FailoverPool',
    metadata: { name },
    spec: {
      proxySelector: { matchLabels: { app: 'proxy' } },
      routes: [{ hosts: ['app.example.com'] }],
      backends: [{ address: '127.0.0.1:9' }, { address: '127.0.0.1:10', failoverLevel: 1 }],
      ...spec,
    },
  };
}

async function refusal(objects: CustomObjectsApi, namespace: string, body: Record<string, unknown>): Promise<string> {
  try {
    await objects.createNamespacedCustomObject({ ...G, namespace, body });
  } catch (err) {
    const e = err as { code?: number; body?: string };
    assert.equal(e.code, 422, `expected 422, got ${e.code}: ${e.body}`);
    return String(e.body);
  }
  assert.fail(`the apiserver accepted ${JSON.stringify(body)}`);
}

test('the FailoverPool CRD installs, defaults and refuses invalid pools with the CEL message', async (t) => {
  const namespace = await withNamespace(t);
  await installCrds(CRD);
  const objects = adminKubeConfig().makeApiClient(CustomObjectsApi);

  const created = (await objects.createNamespacedCustomObject({ ...G, namespace, body: pool('ok', {}) })) as { spec: Record<string, unknown> };
  assert.equal(created.spec.strategy, 'immediate');
  assert.equal(created.spec.protocol, 'http1');
  assert.equal(created.spec.recoveryInterval, undefined, 'durations are not defaulted in the CRD: the proxy applies its own default');
  assert.deepEqual((created.spec.routes as unknown[])[0], { hosts: ['app.example.com'], pathPrefix: '/' });
  assert.equal((created.spec.backends as { failoverLevel: number; weight: number }[])[0]?.failoverLevel, 0);
  assert.deepEqual(created.spec.consensus, { mode: 'shared' }, 'SPEC 9: one decision across the replicas by default');
  const withTls = (await objects.createNamespacedCustomObject({ ...G, namespace, body: pool('tls', { protocol: 'h2', tls: { caFile: '/etc/veloflux/upstream-ca/ca.crt', serverName: 'grpc.internal' } }) })) as { spec: Record<string, unknown> };
  assert.deepEqual(withTls.spec.tls, { caFile: '/etc/veloflux/upstream-ca/ca.crt', serverName: 'grpc.internal', insecureSkipVerify: false }, 'SPEC 8 pools[].tls, camelCase');

  // kubectl get fp: the printer columns.
  const table = await new Kube(adminKubeConfig()).request<{ columnDefinitions: { name: string }[] }>('GET', `/apis/veloflux.io/v1alpha1/namespaces/${namespace}/failoverpools`, undefined, undefined, 'application/json;as=Table;v=v1;g=meta.k8s.io');
  assert.deepEqual(table.columnDefinitions.map((c) => c.name), ['Name', 'Strategy', 'Active Level', 'Failover', 'Synced', 'Agree', 'Ready', 'Reason', 'Age']);

  const cases: [string, Record<string, unknown>, string][] = [
    ['no level 0', { backends: [{ address: 'a:80', failoverLevel: 1 }] }, 'at least one backend must be at failoverLevel 0'],
    ['address and service', { backends: [{ address: 'a:80', service: { name: 's', port: 80 } }] }, 'a backend has exactly one of address and service'],
    ['neither', { backends: [{ weight: 1 }] }, 'a backend has exactly one of address and service'],
    ['timeout >= interval', { backends: [{ address: 'a:80', healthCheck: { interval: '1s', timeout: '1s' } }] }, 'healthCheck.timeout must be less than its interval'],
    ['timeout >= checkInterval', { checkInterval: '500ms', backends: [{ address: 'a:80', healthCheck: { timeout: '2s' } }] }, 'healthCheck.timeout must be less than its interval'],
    ['stepPercent', { stepPercent: 0 }, 'stepPercent must be from 1 to 100'],
    ['path on a grpc check', { protocol: 'h2c', backends: [{ address: 'a:80', healthCheck: { type: 'grpc', path: '/x' } }] }, 'healthCheck.path and healthCheck.expectedStatus are only for type http'],
    ['service on an http check', { backends: [{ address: 'a:80', healthCheck: { service: 'x' } }] }, 'healthCheck.service is only for type grpc'],
    ['grpc check over http1', { backends: [{ address: 'a:80', healthCheck: { type: 'grpc' } }] }, 'a grpc health check needs HTTP/2 to the backends'],
    ['unknown protocol', { protocol: 'h3' }, 'spec.protocol'],
    ['caFile with insecureSkipVerify', { protocol: 'h2', tls: { caFile: '/etc/veloflux/upstream-ca/ca.crt', insecureSkipVerify: true } }, 'tls.caFile is not used with tls.insecureSkipVerify: true'],
    ['tls serverName not a host', { tls: { serverName: 'a b' } }, 'spec.tls.serverName'],
    ['bad duration', { recoveryInterval: '10' }, 'spec.recoveryInterval'],
    ['override without reason', { override: { mode: 'active' } }, 'override.reason is required when mode is active or inactive'],
    ['inline webhook url', { notifications: { channels: [{ type: 'webhook', url: 'https://x' }] } }, 'url is not allowed inline'],
    ['consensus mode', { consensus: { mode: 'majority' } }, 'spec.consensus.mode'],
    ['consensus quorum 0', { consensus: { quorum: 0 } }, 'spec.consensus.quorum'],
  ];
  for (const [what, spec, message] of cases) {
    const body = await refusal(objects, namespace, pool(`bad-${cases.findIndex((c) => c[0] === what)}`, spec));
    assert.ok(body.includes(message), `${what}: expected "${message}" in ${body}`);
  }
});

test('an inline secret is refused by the apiserver whatever the client validates (kubectl apply --validate=false)', async (t) => {
  const namespace = await withNamespace(t);
  await installCrds(CRD);
  const kubeconfig = writeKubeconfig(clusterFromEnv().adminToken, 'kubectl');
  const password = 'hunter2-inline-password';
  const cases: [string, Record<string, unknown>, string][] = [
    ['smtpPassword', { type: 'email', smtpServer: 'smtp.example.com:587', recipients: ['ops@example.com'], smtpPassword: password }, 'credentialsSecretRef'],
    ['url', { type: 'webhook', urlSecretRef: { name: 'hook' }, url: `https://hooks.example.com/${password}` }, 'urlSecretRef'],
    ['secret', { type: 'webhook', urlSecretRef: { name: 'hook' }, secret: password }, 'hmacSecretRef'],
  ];
  for (const [field, channel, ref] of cases) {
    const name = `inline-${field.toLowerCase()}`;
    const manifest = JSON.stringify(pool(name, { notifications: { channels: [channel] } }));
    const r = await kubectl(['--kubeconfig', kubeconfig, '-n', namespace, 'apply', '--validate=false', '-f', '-'], manifest);
    assert.notEqual(r.code, 0, `${field}: kubectl apply --validate=false must fail; got ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`${field} is not allowed inline .*reference it with ${ref}`), r.stderr);
    assert.ok(!r.stderr.includes(password), 'the refusal does not echo the secret');
    const get = await kubectl(['--kubeconfig', kubeconfig, '-n', namespace, 'get', 'fp', name], '');
    assert.notEqual(get.code, 0, `${field}: nothing was stored`);
    assert.match(get.stderr, /NotFound|not found/);
  }
});

function kubectl(args: string[], stdin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile('kubectl', args, { timeout: 30_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: tmpdir() } }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') { reject(err); return; }
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
    child.stdin?.end(stdin);
  });
}
