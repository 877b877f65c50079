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
import { ADMIN_USER, ensureBinaries } from '../cluster/controlplane.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(root, 'cli/bin/veloflux.js');
const CRD = readFileSync(join(root, 'crds/failoverpool.yaml'), 'utf8');
// kubectl is built with the control plane (test/cluster/build.sh), so the test does not depend on the machine's.
const BIN_DIR = ensureBinaries();
const PATH = `${BIN_DIR}:${process.env.PATH ?? ''}`;

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
  const r = spawnSync(join(BIN_DIR, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], { input, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('setup --target kubernetes --apply: kubectl apply creates the Secrets and the FailoverPool; secrets only in Secrets', async (t) => {
  const ns = await withNamespace(t, 'setup');
  await installCrds(CRD);
  const kubeconfig = writeKubeconfig(clusterFromEnv().adminToken, ADMIN_USER);
  const dir = mkdtempSync(join(tmpdir(), 'veloflux-setup-'));
  const password = 'smtp-pass-kube-6d1';
  const hook = 'https://hooks.example.com/T9/kube-secret-path';
  const r = await run(['--yes', '--apply', '--target', 'kubernetes', '--namespace', ns, '--pool', 'shop', '--host', 'shop.example.com',
    '--primary', 'primary:80', '--backup', 'backup:80@2', '--strategy', 'graceful',
    '--email-server', 'smtp.example.com', '--email-user', 'u', '--email-to', 'ops@example.com', '--webhook-url', hook, '--webhook-format', 'slack'],
  { KUBECONFIG: kubeconfig, PATH, VELOFLUX_SMTP_PASSWORD: password }, dir);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /failoverpool\.veloflux\.io\/shop (created|configured)/);
  assert.ok(!r.out.includes(password) && !r.out.includes(hook), 'no secret on the terminal');
  const fpText = kubectl(kubeconfig, ['-n', ns, 'get', 'failoverpool', 'shop', '-o', 'json']).out;
  assert.ok(!fpText.includes(password) && !fpText.includes(hook), 'no secret in the FailoverPool');
  const fp = JSON.parse(fpText) as { spec: { strategy: string; routes: unknown; backends: { address: string; failoverLevel: number }[]; notifications: { channels: { type: string }[] } } };
  assert.deepEqual(fp.spec.backends.map((b) => [b.address, b.failoverLevel]), [['primary:80', 0], ['backup:80', 2]]);
  assert.deepEqual(fp.spec.routes, [{ hosts: ['shop.example.com'], pathPrefix: '/' }]);
  assert.equal(fp.spec.strategy, 'graceful');
  assert.deepEqual(fp.spec.notifications.channels.map((c) => c.type), ['log', 'email', 'webhook']);
  const secrets = JSON.parse(kubectl(kubeconfig, ['-n', ns, 'get', 'secret', 'shop-smtp', 'shop-webhook', '-o', 'json']).out) as { items: { metadata: { name: string }; data: Record<string, string> }[] };
  const decoded = secrets.items.map((x) => [x.metadata.name, Object.fromEntries(Object.entries(x.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]))]);
  assert.deepEqual(decoded, [['shop-smtp', { password, username: 'u' }], ['shop-webhook', { url: hook }]]);
});

// setup's validator (the CRD's schema and CEL rules, then the operator's render and the proxy's loader) and the
// apiserver give the same answer, for a valid pool and for one the CEL rules refuse.
test('the shipped CRD: the apiserver and setup\'s validator agree on valid and invalid FailoverPools', async (t) => {
  const ns = await withNamespace(t, 'setupmail');
  await installCrds(CRD);
  const kubeconfig = writeKubeconfig(clusterFromEnv().adminToken, ADMIN_USER);
  const { validateKubeWith, crdSchema } = await import('@veloflux/cli/kube-validate');
  const { parse } = await import('yaml');
  const manifest = (name: string, channel: string): string => `apiVersion: veloflux.io/v1alpha1
kind: FailoverPool
metadata: { name: ${name}, namespace: ${ns} }
spec:
  proxySelector: { matchLabels: { app: proxy } }
  routes: [{ pathPrefix: / }]
  backends: [{ address: "a:80" }]
  notifications:
    channels:
      - ${channel}
`;
  const cases: [string, string, boolean][] = [
    ['mail', '{ type: email, smtpServer: smtp.example.com, recipients: [admin@example.com] }', true],
    ['bad', '{ type: email, level: info, smtpServer: smtp.example.com, recipients: [admin@example.com] }', false],
  ];
  for (const [name, channel, valid] of cases) {
    const text = manifest(name, channel);
    const applied = kubectl(kubeconfig, ['apply', '-f', '-'], text);
    const problems = validateKubeWith(crdSchema(CRD), { pool: parse(text), secrets: [] });
    t.diagnostic(`${name}: apiserver exit ${applied.status}: ${applied.out.trim()}; setup validator: ${problems.join('; ') || 'valid'}`);
    assert.equal(applied.status === 0, valid, applied.out);
    assert.equal(problems.length === 0, valid, problems.join('; '));
  }
});
