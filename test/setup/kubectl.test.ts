// veloflux setup --target kubernetes --apply against the real apiserver of the test control plane: the CRD as
// shipped, `kubectl apply -f -` run by setup itself, then the objects read back.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { clusterFromEnv, installCrds, withNamespace, writeKubeconfig } from '../cluster/testenv.ts';
import { ADMIN_USER } from '../cluster/controlplane.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'proxy/bin/veloflux.js');
const CRD = readFileSync(join(root, 'crds/failoverpool.yaml'), 'utf8');
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;

function run(args: string[], env: Record<string, string>, cwd: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'setup', ...args], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    child.on('close', (code) => resolve({ code, out }));
  });
}

function kubectl(kubeconfig: string, args: string[], input?: string): { status: number | null; out: string } {
  const r = spawnSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

// Log channel only: with the shipped CRD the apiserver refuses every email and webhook channel (next test).
test('setup --target kubernetes --apply: kubectl apply creates the FailoverPool', { skip: !hasKubectl && 'kubectl not on PATH' }, async (t) => {
  const ns = await withNamespace(t, 'setup');
  await installCrds(CRD);
  const kubeconfig = writeKubeconfig(clusterFromEnv().adminToken, ADMIN_USER);
  const dir = mkdtempSync(join(tmpdir(), 'veloflux-setup-'));
  const r = await run(['--yes', '--apply', '--target', 'kubernetes', '--namespace', ns, '--pool', 'shop', '--host', 'shop.example.com',
    '--primary', 'primary:80', '--backup', 'backup:80@2', '--strategy', 'graceful'],
  { KUBECONFIG: kubeconfig }, dir);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /failoverpool\.veloflux\.io\/shop (created|configured)/);
  const fp = JSON.parse(kubectl(kubeconfig, ['-n', ns, 'get', 'failoverpool', 'shop', '-o', 'json']).out) as { spec: { strategy: string; routes: unknown; backends: { address: string; failoverLevel: number }[] } };
  assert.deepEqual(fp.spec.backends.map((b) => [b.address, b.failoverLevel]), [['primary:80', 0], ['backup:80', 2]]);
  assert.deepEqual(fp.spec.routes, [{ hosts: ['shop.example.com'], pathPrefix: '/' }]);
  assert.equal(fp.spec.strategy, 'graceful');
});

// What the apiserver does with an email channel under the shipped CRD: `level` has a default on every channel
// item, and a CEL rule allows `level` only on log channels. setup's validator predicts the same answer.
test('the shipped CRD and an email channel: apiserver answer matches setup\'s validator', { skip: !hasKubectl && 'kubectl not on PATH' }, async (t) => {
  const ns = await withNamespace(t, 'setupmail');
  await installCrds(CRD);
  const kubeconfig = writeKubeconfig(clusterFromEnv().adminToken, ADMIN_USER);
  const manifest = `apiVersion: veloflux.io/v1alpha1
kind: FailoverPool
metadata: { name: mail, namespace: ${ns} }
spec:
  proxySelector: { matchLabels: { app: proxy } }
  routes: [{ pathPrefix: / }]
  backends: [{ address: "a:80" }]
  notifications:
    channels:
      - { type: email, smtpServer: smtp.example.com, recipients: [admin@example.com] }
`;
  const applied = kubectl(kubeconfig, ['apply', '-f', '-'], manifest);
  const { validateKubeWith, crdSchema } = await import('../../proxy/src/setup/kube-validate.ts');
  const { parse } = await import('yaml');
  const problems = validateKubeWith(crdSchema(CRD), { pool: parse(manifest), secrets: [] });
  t.diagnostic(`apiserver: exit ${applied.status}: ${applied.out.trim()}`);
  t.diagnostic(`setup validator: ${problems.join('; ') || 'valid'}`);
  assert.equal(applied.status === 0, problems.length === 0, `apiserver and validator disagree: ${applied.out} / ${problems.join('; ')}`);
});
