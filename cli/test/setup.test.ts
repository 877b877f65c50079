// veloflux setup: the interactive flow through its real prompts (the prompt library's harness) for both targets,
// editing an existing file, where secrets end up, and the flag checks.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadConfigText } from '@veloflux/config/load';
import { parseBackup } from '../src/answers.ts';
import type { Kube } from '../src/kube.ts';
import { runSetup } from '../src/run.ts';
import { validateKube } from '../src/kube-validate.ts';
import { driveSetup } from './helpers/setup.ts';
import type { Step } from './helpers/setup.ts';

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
/** A resolved channel without the keys setup does not write (defaults the loader fills in, e.g. `timeout`). */
const written = (c: unknown): unknown => { const { timeout: _t, ...rest } = plain(c) as Record<string, unknown>; return rest; };
const tmp = (): string => mkdtempSync(join(tmpdir(), 'veloflux-setup-'));
const PASSWORD = 'pw-Typed-At-Prompt-7731';
const HOOK = 'https://hooks.slack.com/services/T000/B000/typed-secret-4410';

function common(extra: { pool: string; email: boolean; webhook: boolean }): Step[] {
  return [
    { match: /Pool name/, answer: extra.pool, bad: { text: 'bad name!', error: /letters, digits/ } },
    { match: /Host/, answer: 'shop.example.com' },
    { match: /Path prefix/, answer: '/api' },
    { match: /Primary backend/, answer: 'primary-1:80, primary-2:80', bad: { text: 'nope', error: /host:port/ } },
    { match: /Backup backend/, answer: 'backup:80, dr-site:80@2' },
    { match: /Regions/, answer: 'backup:80=us-west' },
    { match: /Health check path/, answer: '/healthz' },
    { match: /Health check interval/, answer: '3s' },
    { match: /Health check timeout/, answer: '1s', bad: { text: '4s', error: /less than the interval \(3s\)/ } },
    { match: /Expected HTTP status/, answer: '204' },
    { match: /failures that mark/, answer: '3' },
    { match: /successes that mark/ },
    { match: /Failover strategy[\s\S]*immediate +all traffic moves[\s\S]*graceful +traffic moves step by step[\s\S]*delayed +nothing moves/, answer: 'graceful' },
    { match: /Step percent/, answer: '20', bad: { text: '0', error: /from 1 to 100/ } },
    { match: /Step interval/, answer: '10s' },
    { match: /Recovery interval/, answer: '30s' },
    { match: /Log level/, answer: 'info' },
    { match: /Send email notifications\?/, answer: extra.email },
    ...(extra.email ? [
      { match: /SMTP server/, answer: 'smtp.example.com' },
      { match: /SMTP port/, answer: '2525' },
      { match: /SMTP user/, answer: 'alerts@example.com' },
      { match: /SMTP password/, answer: PASSWORD },
      { match: /Recipients/, answer: 'ops@example.com, oncall@example.com' },
    ] : []),
    { match: /Send webhook notifications/, answer: extra.webhook },
    // A Slack URL: Enter takes the format it implies.
    ...(extra.webhook ? [{ match: /Webhook URL/, answer: HOOK }, { match: /Webhook format/ }] : []),
  ];
}

test('interactive, config target: the written config.yaml validates, matches the answers, and is 0600', async () => {
  const dir = tmp();
  const file = join(dir, 'config.yaml');
  const r = await driveSetup([], [
    { match: /What do you want to write/, answer: 'config' },
    { match: /Output file/, answer: file },
    ...common({ pool: 'shop', email: true, webhook: true }),
    { match: /Write .*config\.yaml\?/ },
    { match: /Apply it now/, answer: false },
  ]);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.left, 0);
  const text = readFileSync(file, 'utf8');
  const loaded = loadConfigText(text);
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.issues));
  const pool = loaded.config.pools[0];
  assert.equal(pool?.name, 'shop');
  assert.deepEqual(pool?.backends.map((b) => [b.address, b.level, b.region ?? null]), [['primary-1:80', 0, null], ['primary-2:80', 0, null], ['backup:80', 1, 'us-west'], ['dr-site:80', 2, null]]);
  assert.deepEqual(pool?.backends[0]?.healthCheck, { type: 'http', path: '/healthz', service: '', intervalMs: 3000, timeoutMs: 1000, expectedStatus: 204, unhealthyThreshold: 3, healthyThreshold: 2 });
  assert.equal(pool?.policy.strategy, 'graceful');
  assert.equal(pool?.policy.recoveryIntervalMs, 30_000);
  assert.deepEqual([pool?.policy.stepPercent, pool?.policy.stepIntervalMs], [20, 10_000]);
  assert.deepEqual(loaded.config.routes, [{ host: 'shop.example.com', pathPrefix: '/api', pool: 'shop' }]);
  assert.deepEqual(loaded.config.notification.channels.map(written), [
    { type: 'log', level: 'info' },
    { type: 'email', smtp_server: 'smtp.example.com', smtp_port: 2525, smtp_user: 'alerts@example.com', smtp_password: PASSWORD, recipients: ['ops@example.com', 'oncall@example.com'] },
    { type: 'webhook', url: HOOK, format: 'slack' },
  ]);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.match(text, /# level 2: second backup/);
  // The secrets were typed but never shown: masked at the prompt, masked in the preview.
  for (const s of [PASSWORD, HOOK]) {
    assert.ok(!r.screens.includes(s), `${s} echoed at a prompt`);
    assert.ok(!r.out.includes(s), `${s} shown in the preview`);
  }
  assert.match(r.screens, /SMTP password \*{5,}/);
  assert.match(r.out, /next: veloflux-proxy --config /);
});

test('interactive, kubernetes target: a secret typed at a prompt appears only in the Secret manifest', async () => {
  const dir = tmp();
  const file = join(dir, 'shop.yaml');
  const r = await driveSetup([], [
    { match: /What do you want to write/, answer: 'kubernetes' },
    { match: /Output file/, answer: file },
    { match: /Kubernetes namespace/, answer: 'shop-prod' },
    { match: /Labels of the proxy pods/, answer: 'app=edge-proxy' },
    ...common({ pool: 'shop', email: true, webhook: true }),
    { match: /Write .*shop\.yaml and .*shop\.secrets\.yaml\?/ },
    { match: /Apply it now with kubectl/, answer: false },
  ], { validateKube });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.left, 0);
  const poolText = readFileSync(file, 'utf8');
  const secretsFile = join(dir, 'shop.secrets.yaml');
  const secretsText = readFileSync(secretsFile, 'utf8');
  for (const s of [PASSWORD, HOOK]) {
    assert.ok(secretsText.includes(s), `${s} missing from the Secret manifest`);
    assert.ok(!poolText.includes(s), `${s} in the FailoverPool manifest`);
    assert.ok(!r.screens.includes(s) && !r.out.includes(s) && !r.err.includes(s), `${s} shown on the terminal`);
  }
  assert.equal(statSync(secretsFile).mode & 0o777, 0o600);
  const fp = parse(poolText) as Kube['pool'];
  assert.deepEqual(fp.metadata, { name: 'shop', namespace: 'shop-prod' });
  const spec = fp.spec as Record<string, unknown>;
  assert.deepEqual(spec['proxySelector'], { matchLabels: { app: 'edge-proxy' } });
  assert.deepEqual(spec['routes'], [{ hosts: ['shop.example.com'], pathPrefix: '/api' }]);
  assert.deepEqual((spec['backends'] as { address: string; failoverLevel: number; region?: string }[]).map((b) => [b.address, b.failoverLevel, b.region ?? null]),
    [['primary-1:80', 0, null], ['primary-2:80', 0, null], ['backup:80', 1, 'us-west'], ['dr-site:80', 2, null]]);
  assert.equal(spec['strategy'], 'graceful');
  assert.equal(spec['recoveryInterval'], '30s');
  assert.deepEqual([spec['stepPercent'], spec['stepInterval']], [20, '10s']);
  assert.deepEqual((spec['notifications'] as { channels: unknown[] }).channels, [
    { type: 'log', level: 'info' },
    { type: 'email', smtpServer: 'smtp.example.com', smtpPort: 2525, recipients: ['ops@example.com', 'oncall@example.com'], credentialsSecretRef: { name: 'shop-smtp' } },
    { type: 'webhook', format: 'slack', urlSecretRef: { name: 'shop-webhook' } },
  ]);
  // The written files validate again (CRD + the operator's render + the proxy's loader).
  const secrets = secretsText.split(/^---$/m).map((d) => parse(d) as Kube['secrets'][number]);
  assert.deepEqual(secrets.map((s) => [s.metadata.name, s.metadata.namespace, Object.keys(s.stringData)]), [['shop-smtp', 'shop-prod', ['username', 'password']], ['shop-webhook', 'shop-prod', ['url']]]);
  assert.deepEqual(validateKube({ pool: fp, secrets }), []);
  assert.match(r.out, /next: kubectl apply -f .*shop\.secrets\.yaml -f .*shop\.yaml/);
});

test('kubernetes target: a FailoverPool the CRD refuses is not written (the validator speaks for the apiserver)', async () => {
  const dir = tmp();
  const out = join(dir, 'p.yaml');
  let err = '';
  // A pool name the CRD's metadata rules refuse is caught before the answers reach the schema; here the level
  // of a backup is out of the CRD's bounds instead (failoverLevel max 1000).
  const code = await runSetup(['--yes', '--target', 'kubernetes', '--output', out, '--pool', 'p', '--primary', 'a:80', '--backup', 'b:80@1001', '--email-server', 'smtp.example.com', '--email-to', 'a@example.com'],
    { out: () => {}, err: (t) => { err += t; }, env: {}, ask: undefined, validateKube });
  assert.equal(code, 2, err);
  assert.match(err, /--backup/);
  assert.equal(existsSync(out), false, 'nothing written');
});

test('re-run on an existing config.yaml: its values are the defaults (Enter everywhere keeps it), untouched keys stay', async () => {
  const dir = tmp();
  const file = join(dir, 'config.yaml');
  const first = await runSetup(['--yes', '--output', file, '--pool', 'shop', '--primary', 'a:80', '--backup', 'b:80@3', '--strategy', 'delayed', '--delay', '45s', '--email-server', 'smtp.example.com', '--email-user', 'u', '--email-to', 'x@example.com'],
    { out: () => {}, err: (t) => assert.fail(t), env: { VELOFLUX_SMTP_PASSWORD: PASSWORD }, ask: undefined, validateKube });
  assert.equal(first, 0);
  // Something setup does not ask about, to see it survive the edit.
  const before = (await readFile(file, 'utf8')).replace('listen: :8080', 'listen: 127.0.0.1:8088\ndataplane:\n  max_attempts: 5');
  await import('node:fs/promises').then((fs) => fs.writeFile(file, before));
  const enter = (match: RegExp): Step => ({ match });
  const r = await driveSetup([], [
    enter(/What do you want to write/), { match: /Output file/, answer: file },
    enter(/Pool name/), enter(/Host/), enter(/Path prefix/), enter(/Primary/), enter(/Backup/), enter(/Regions/), enter(/Health check path/),
    enter(/interval/), enter(/timeout/), enter(/Expected/), enter(/failures/), enter(/successes/), enter(/strategy/), enter(/Delay/), { match: /Recovery interval/, answer: '1m' }, enter(/Log level/),
    enter(/email/), enter(/SMTP server/), enter(/SMTP port/), enter(/SMTP user/), { match: /SMTP password \(empty keeps the current one\)/ }, enter(/Recipients/),
    enter(/webhook/), enter(/Write/), { match: /Apply/, answer: false },
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`editing existing ${file.replace(/[.]/g, '\\.')}`));
  const loaded = loadConfigText(await readFile(file, 'utf8'));
  assert.ok(loaded.ok);
  assert.deepEqual(loaded.config.listen, { host: '127.0.0.1', port: 8088 });
  assert.equal(loaded.config.dataplane.maxAttempts, 5);
  const pool = loaded.config.pools[0];
  assert.deepEqual(pool?.backends.map((b) => [b.address, b.level]), [['a:80', 0], ['b:80', 3]]);
  assert.equal(pool?.policy.strategy, 'delayed');
  assert.equal(pool?.policy.recoveryIntervalMs, 60_000);
  assert.equal(pool?.policy.delayMs, 45_000, 'the delay asked for delayed, kept by Enter');
  assert.deepEqual(written(loaded.config.notification.channels[1]), { type: 'email', smtp_server: 'smtp.example.com', smtp_port: 587, smtp_user: 'u', smtp_password: PASSWORD, recipients: ['x@example.com'] });
});

test('non-interactive: missing answers are listed as flags; bad values name the flag and what is allowed', async () => {
  const run = async (argv: string[]): Promise<{ code: number; err: string }> => {
    let err = '';
    const code = await runSetup(argv, { out: () => {}, err: (t) => { err += t; }, env: {}, ask: undefined, validateKube });
    return { code, err };
  };
  const dir = tmp();
  const cases: [string[], number, RegExp][] = [
    [['--output', join(dir, 'a.yaml')], 2, /missing: --pool, --primary \(no terminal to ask: pass them as flags/],
    [['--output', join(dir, 'a.yaml'), '--pool', 'x', '--email-server', 'smtp.example.com'], 2, /missing: --primary, --email-to/],
    [['--output', join(dir, 'a.yaml'), '--webhook-format', 'slack', '--pool', 'x', '--primary', 'a:80'], 2, /missing: --webhook-url/],
    [['--pool', 'x', '--primary', 'a:80', '--health-timeout', '2'], 2, /--health-timeout: must be a duration like "2s" \(units ms, s, m, h\), got "2"/],
    [['--pool', 'x', '--primary', 'a:80', '--health-interval', '1s', '--health-timeout', '1s'], 2, /--health-timeout: must be less than the interval \(1s\)/],
    [['--pool', 'x', '--primary', 'nope'], 2, /--primary: must be "host:port" or "http:\/\/host:port"/],
    [['--pool', 'x', '--primary', 'a:80', '--backup', 'b:80@0'], 2, /--backup: must be "host:port" or "host:port@LEVEL" with a level from 1 to 1000/],
    [['--pool', 'x', '--primary', 'a:80', '--strategy', 'fast'], 2, /--strategy: must be one of "immediate", "graceful", "delayed", got "fast"/],
    [['--pool', 'x', '--primary', 'a:80', '--expected-status', '99'], 2, /--expected-status: must be a whole number from 100 to 599, got 99/],
    [['--pool', 'x', '--primary', 'a:80', '--webhook-url', 'ftp://x'], 2, /--webhook-url: must be an http:\/\/ or https:\/\/ URL/],
    [['--target', 'kubernetes', '--pool', 'Shop_1', '--primary', 'a:80'], 2, /--pool: must be a Kubernetes name/],
    [['--frobnicate'], 2, /^veloflux setup: unknown flag --frobnicate \(veloflux setup --help lists the flags\)\n?$/],
    [['--pool'], 2, /^veloflux setup: Option '--pool <value>' argument missing \(veloflux setup --help lists the flags\)\n?$/],
  ];
  for (const [argv, code, message] of cases) {
    const r = await run(argv);
    assert.equal(r.code, code, `${argv.join(' ')}: ${r.err}`);
    assert.match(r.err, message, argv.join(' '));
  }
});

test('backup flag: addr or addr@level', () => {
  assert.deepEqual(parseBackup('b:80'), { address: 'b:80', level: 1 });
  assert.deepEqual(parseBackup('http://b:80@4'), { address: 'http://b:80', level: 4 });
  assert.equal(typeof parseBackup('b:80@x'), 'string');
});

test('docs/setup.md names every flag of veloflux setup', async () => {
  const { QUESTIONS, ACTION_FLAGS } = await import('../src/questions.ts');
  const doc = readFileSync(new URL('../../docs/setup.md', import.meta.url), 'utf8');
  for (const flag of [...QUESTIONS.map((q) => q.flag), ...Object.keys(ACTION_FLAGS)]) assert.ok(doc.includes(`\`--${flag}`), `--${flag} is not in docs/setup.md`);
});

test('setup\'s validator knows the meaning of every CEL rule in the shipped CRD', async () => {
  const { CEL, CRD_FILE } = await import('../src/kube-validate.ts');
  const rules = [...readFileSync(CRD_FILE, 'utf8').matchAll(/^\s*- rule: (.*)$/gm)].map((m) => {
    const text = (m[1] as string).trim();
    return text.startsWith('"') || text.startsWith("'") ? (parse(text) as string) : text;
  });
  assert.ok(rules.length >= 5, `found ${rules.length} rules`);
  for (const rule of rules) assert.ok(rule in CEL, `CEL rule without a meaning in cli/src/kube-validate.ts: ${rule}`);
});

test('issue 17: the chart\'s selector by default, Service backends, the webhook format a URL implies, delay and steps by flag', async () => {
  const dir = tmp();
  const run = async (argv: string[]): Promise<{ code: number; out: string; err: string }> => {
    let out = '';
    let err = '';
    const code = await runSetup(['--yes', ...argv], { out: (t) => { out += `${t}\n`; }, err: (t) => { err += `${t}\n`; }, env: {}, ask: undefined, validateKube });
    return { code, out, err };
  };
  const fpFile = join(dir, 'shop.yaml');
  const k = await run(['--target', 'kubernetes', '--output', fpFile, '--pool', 'shop', '--primary', 'svc/shop-primary:80', '--backup', 'svc/shop-backup:http', '--backup', 'dr.example.com:443@2',
    '--strategy', 'delayed', '--delay', '1m', '--webhook-url', 'https://discord.com/api/webhooks/1/abc-secret']);
  assert.equal(k.code, 0, k.err + k.out);
  const fp = parse(readFileSync(fpFile, 'utf8')) as Kube['pool'];
  const spec = fp.spec as Record<string, unknown>;
  assert.deepEqual(spec['proxySelector'], { matchLabels: { 'veloflux.io/proxy': 'true' } }, 'the label the chart puts on its proxies');
  assert.deepEqual((spec['backends'] as Record<string, unknown>[]).map((b) => [b['service'] ?? b['address'], b['failoverLevel']]),
    [[{ name: 'shop-primary', port: 80 }, 0], [{ name: 'shop-backup', port: 'http' }, 1], ['dr.example.com:443', 2]]);
  assert.deepEqual([spec['strategy'], spec['delay']], ['delayed', '1m']);
  assert.equal((spec['notifications'] as { channels: { type: string; format?: string }[] }).channels.find((c) => c.type === 'webhook')?.format, 'discord');
  // Editing it again keeps the Service backends as they are asked ("svc/NAME:PORT").
  const again = await run(['--target', 'kubernetes', '--output', fpFile, '--pool', 'shop']);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual(((parse(readFileSync(fpFile, 'utf8')) as Kube['pool']).spec as { backends: unknown[] }).backends, spec['backends']);

  const cfgFile = join(dir, 'config.yaml');
  const c = await run(['--output', cfgFile, '--pool', 'app', '--primary', 'a:80', '--strategy', 'graceful', '--step-percent', '10', '--step-interval', '2s', '--webhook-url', 'https://hooks.slack.com/services/T/B/x-secret']);
  assert.equal(c.code, 0, c.err);
  const loaded = loadConfigText(readFileSync(cfgFile, 'utf8'));
  assert.ok(loaded.ok);
  assert.deepEqual([loaded.config.pools[0]?.policy.stepPercent, loaded.config.pools[0]?.policy.stepIntervalMs], [10, 2000]);
  const hook = loaded.config.notification.channels.find((x) => x.type === 'webhook');
  assert.equal(hook?.type === 'webhook' && hook.format, 'slack');
  assert.match(c.out, /note: .*config\.yaml holds notification credentials inline .* written 0600/);
  assert.equal(statSync(cfgFile).mode & 0o777, 0o600);
  // An explicit format wins over the URL's.
  const g = await run(['--output', join(dir, 'g.yaml'), '--pool', 'app', '--primary', 'a:80', '--webhook-url', 'https://hooks.slack.com/services/T/B/y', '--webhook-format', 'generic']);
  assert.equal(g.code, 0, g.err);
  assert.match(readFileSync(join(dir, 'g.yaml'), 'utf8'), /format: generic/);

  for (const [argv, message] of [
    [['--output', join(dir, 'x.yaml'), '--pool', 'x', '--primary', 'svc/shop:80'], /--primary: a Service backend \("svc\/NAME:PORT"\) is for the kubernetes target/],
    [['--target', 'kubernetes', '--output', join(dir, 'y.yaml'), '--pool', 'x', '--primary', 'svc/Bad_Name:80'], /--primary: must be "svc\/NAME:PORT"/],
    [['--output', join(dir, 'z.yaml'), '--pool', 'x', '--primary', 'a:80', '--strategy', 'graceful', '--step-percent', '0'], /--step-percent: must be a whole number from 1 to 100, got 0/],
    [['--output', join(dir, 'z.yaml'), '--pool', 'x', '--primary', 'a:80', '--strategy', 'delayed', '--delay', 'soon'], /--delay: must be a duration/],
  ] as const) {
    const r = await run([...argv]);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, message);
  }
});

test('the repository ignores the Secret manifests setup writes (*.secrets.yaml)', async () => {
  const { spawnSync } = await import('node:child_process');
  const root = new URL('../../', import.meta.url).pathname;
  for (const path of ['failoverpool.secrets.yaml', 'deploy/shop.secrets.yaml']) {
    const r = spawnSync('git', ['-C', root, 'check-ignore', '-q', '--no-index', path]);
    assert.equal(r.status, 0, `${path} is not ignored by .gitignore`);
  }
  assert.notEqual(spawnSync('git', ['-C', root, 'check-ignore', '-q', '--no-index', 'failoverpool.yaml']).status, 0, 'the FailoverPool itself is not ignored');
});
