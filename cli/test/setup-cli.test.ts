// veloflux setup as a real process: non-interactive (no TTY), applying to a real proxy's admin API, and the
// interactive flow on a real pseudo-terminal (util-linux `script` allocates it).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { loadConfigText } from '@veloflux/config/load';
import { headLines, startTestProxy } from '../../proxy/test/helpers/proxy.ts';

const BIN = fileURLToPath(new URL('../bin/veloflux.js', import.meta.url));
const tmp = (): string => mkdtempSync(join(tmpdir(), 'veloflux-setup-cli-'));

function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('no TTY: every answer from flags; the file validates; the password file keeps the secret off the command line', async () => {
  const dir = tmp();
  const out = join(dir, 'config.yaml');
  const pwFile = join(dir, 'smtp-password');
  writeFileSync(pwFile, 'from-a-file-9921\n', { mode: 0o600 });
  const r = await run(['setup', '--output', out, '--pool', 'app', '--host', 'app.example.com', '--primary', 'primary:80', '--backup', 'backup:80', '--backup', 'dr:80@2',
    '--health-interval', '10s', '--strategy', 'delayed', '--email-server', 'smtp.example.com', '--email-user', 'bot', '--email-password-file', pwFile, '--email-to', 'ops@example.com']);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(!r.stdout.includes('from-a-file-9921'));
  assert.match(r.stdout, /valid: the proxy's schema accepts it \(1 pool, 3 backends, 1 route/);
  assert.match(r.stdout, new RegExp(`wrote ${out}`));
  const loaded = loadConfigText(readFileSync(out, 'utf8'));
  assert.ok(loaded.ok);
  assert.deepEqual(loaded.config.pools[0]?.backends.map((b) => [b.address, b.level, b.healthCheck.intervalMs]), [['primary:80', 0, 10_000], ['backup:80', 1, 10_000], ['dr:80', 2, 10_000]]);
  assert.equal(loaded.config.pools[0]?.policy.strategy, 'delayed');
  assert.equal(loaded.config.notification.channels.find((c) => c.type === 'email')?.smtp_password, 'from-a-file-9921');
  assert.equal(statSync(out).mode & 0o777, 0o600);
  // And the proxy's own CLI accepts the file.
  const check = spawnSync(process.execPath, [fileURLToPath(new URL('../../proxy/bin/veloflux-proxy.js', import.meta.url)), '--config', out, '--check'], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stderr);

  const missing = await run(['setup', '--output', join(dir, 'other.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^veloflux setup: missing: --pool, --primary \(no terminal to ask/);
  const bad = await run(['setup', '--pool', 'a', '--primary', 'a:80', '--log-level', 'loud']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--log-level: must be one of "trace", "debug", "info", "warning", "warn", "error", got "loud"/);
  const help = await run(['setup', '--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--primary', '--backup', '--email-password-file', '--admin-token', '--yes', '--target']) assert.ok(help.stdout.includes(flag), flag);
});

test('--apply: the edited config is PUT to a running proxy (admin token) and served', async (t) => {
  const dir = tmp();
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'setup-test-token\n');
  const base = 'pools:\n  - name: app\n    backends: [{ address: "127.0.0.1:1" }]\nroutes:\n  - pool: app\n';
  const proxy = await startTestProxy(base, {}, { tokenFile });
  t.after(() => proxy.stop());
  // The running proxy's own file (setup keeps listen, admin and token_file, which only a restart can change).
  const out = join(dir, 'config.yaml');
  writeFileSync(out, `${headLines(tokenFile)}${base}`);
  const r = await run(['setup', '--yes', '--output', out, '--pool', 'app', '--primary', '127.0.0.1:1', '--backup', '127.0.0.1:2', '--strategy', 'graceful', '--apply', '--admin-url', proxy.adminUrl],
    { VELOFLUX_ADMIN_TOKEN: 'setup-test-token' });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /editing existing/);
  assert.match(r.stdout, new RegExp(`applied to ${proxy.adminUrl}: version [0-9a-f]{16}`));
  const res = await request(`${proxy.adminUrl}/api/v1/config`, { headers: { authorization: 'Bearer setup-test-token' } });
  const body = await res.body.json() as { config: { pools: { name: string; backends: { address: string; level: number }[]; policy: { strategy: string } }[] } };
  assert.deepEqual(body.config.pools[0]?.backends.map((b) => [b.address, b.level]), [['127.0.0.1:1', 0], ['127.0.0.1:2', 1]]);
  assert.equal(body.config.pools[0]?.policy.strategy, 'graceful');

  const refused = await run(['setup', '--yes', '--output', out, '--pool', 'app', '--primary', '127.0.0.1:1', '--apply', '--admin-url', proxy.adminUrl], { VELOFLUX_ADMIN_TOKEN: 'wrong' });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /the proxy refused it: 401 VF_ERR_UNAUTHORIZED/);
});

test('--apply to a proxy on other ports than the defaults: setup keeps its restart-only fields (no 409) and the file says so', async (t) => {
  const dir = tmp();
  const proxy = await startTestProxy('pools: []\n', {}, {});
  t.after(() => proxy.stop());
  const out = join(dir, 'config.yaml');
  // A new file: setup writes the defaults (:8080, 127.0.0.1:9000); the proxy runs on 127.0.0.1:0 for both.
  const r = await run(['setup', '--yes', '--output', out, '--pool', 'app', '--primary', '127.0.0.1:1', '--apply', '--admin-url', proxy.adminUrl], { VELOFLUX_ADMIN_TOKEN: 'unused' });
  // No token configured on this proxy: refused, and the message says why (nothing applied).
  assert.equal(r.code, 1);
  assert.match(r.stderr, /the proxy refused it: 401 VF_ERR_ADMIN_TOKEN_UNSET/);
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'ports-token\n');
  const p2 = await startTestProxy('pools: []\n', {}, { tokenFile });
  t.after(() => p2.stop());
  const ok = await run(['setup', '--yes', '--output', out, '--pool', 'app', '--primary', '127.0.0.1:1', '--apply', '--admin-url', p2.adminUrl], { VELOFLUX_ADMIN_TOKEN: 'ports-token' });
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /kept the running proxy's listen, admin\.listen, admin\.token_file \(a restart would be needed to change them\); rewrote /);
  assert.match(ok.stdout, new RegExp(`applied to ${p2.adminUrl}: version [0-9a-f]{16}`));
  const loaded = loadConfigText(readFileSync(out, 'utf8'));
  assert.ok(loaded.ok);
  assert.deepEqual([loaded.config.listen, loaded.config.admin.listen, loaded.config.admin.tokenFile], [{ host: '127.0.0.1', port: 0 }, { host: '127.0.0.1', port: 0 }, tokenFile]);
  assert.equal(loaded.version, p2.proxy.controller.version, 'the file is what the proxy runs');
});

const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

test('a real pseudo-terminal: prompts, a masked secret, the file written', { skip: !hasScript && 'util-linux script not installed' }, async (t) => {
  const dir = tmp();
  const out = join(dir, 'config.yaml');
  const secret = 'https://hooks.slack.com/services/PTY/typed-8812';
  const cmd = `${process.execPath} ${BIN} setup`;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { cwd: dir, env: { ...process.env, TERM: 'xterm-256color', COLUMNS: '200', LINES: '50' }, stdio: ['pipe', 'pipe', 'pipe'] });
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let screen = '';
  let seen = 0;
  child.stdout.on('data', (c: Buffer) => { screen += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const plain = (): string => screen.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
  async function expect(re: RegExp): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const text = plain().slice(seen);
      const m = re.exec(text);
      if (m) { seen += m.index + m[0].length; return; }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} on the terminal; got:\n${plain().slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const send = (keys: string): void => { child.stdin.write(keys); };
  const steps: [RegExp, string][] = [
    [/What do you want to write\?/, '\r'], [/Output file/, '\r'], [/Pool name/, 'shop\r'], [/Host/, 'shop.example.com\r'], [/Path prefix/, '\r'],
    [/Primary backend/, 'primary:80\r'], [/Backup backend/, 'backup:80\r'], [/Regions/, '\r'],
    [/Health check path/, '\r'], [/Health check interval/, '\r'], [/Health check timeout/, '\r'], [/Expected HTTP status/, '\r'],
    [/failures that mark/, '\r'], [/successes that mark/, '\r'], [/Failover strategy/, '\x1b[B\r'], [/Step percent/, '\r'], [/Step interval/, '\r'], [/Recovery interval/, '\r'], [/Log level/, '\r'],
    [/Send email notifications\?/, 'n\r'], [/Send webhook notifications/, 'y\r'], [/Webhook URL/, `${secret}\r`], [/Webhook format/, '\r'],
    [/Write config\.yaml\?/, '\r'], [/Apply it now/, '\r'],
  ];
  for (const [prompt, keys] of steps) {
    await expect(prompt);
    send(keys);
  }
  assert.equal(await exited, 0, plain().slice(-2000));
  assert.ok(!screen.includes(secret), 'the webhook URL was echoed on the terminal');
  assert.match(plain(), /wrote config\.yaml/);
  const loaded = loadConfigText(readFileSync(out, 'utf8'));
  assert.ok(loaded.ok);
  assert.equal(loaded.config.pools[0]?.name, 'shop');
  assert.equal(loaded.config.pools[0]?.policy.strategy, 'graceful');
  const hook = loaded.config.notification.channels.find((c) => c.type === 'webhook');
  assert.equal(hook?.type === 'webhook' && hook.url, secret);
  assert.equal(hook?.type === 'webhook' && hook.format, 'slack', 'a Slack URL defaults to the slack format');
});
