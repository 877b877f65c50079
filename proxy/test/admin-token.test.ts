// admin.token_file is followed while the proxy runs: a directory laid out exactly like a mounted Kubernetes Secret
// (kubelet's AtomicWriter: `token -> ..data/token`, `..data -> ..<timestamp>`), rotated the way kubelet rotates it,
// against a real proxy over HTTP.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { loadConfigText } from '@veloflux/config/load';
import { createLogger } from '@veloflux/service/log';
import { SERVICE } from '../src/runtime/log.ts';
import { TokenSource } from '../src/runtime/token.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

/** A Secret volume: one timestamped directory per version, `..data` pointing at the current one. */
class SecretVolume {
  readonly dir: string;
  #n = 0;
  constructor(dir: string) { this.dir = dir; }

  static async create(data: Record<string, string>): Promise<SecretVolume> {
    const v = new SecretVolume(await mkdtemp(join(tmpdir(), 'veloflux-secret-')));
    const first = await v.#writeVersion(data);
    await symlink(first, join(v.dir, '..data'));
    for (const key of Object.keys(data)) await symlink(join('..data', key), join(v.dir, key));
    return v;
  }

  get file(): string { return join(this.dir, 'token'); }

  async #writeVersion(data: Record<string, string>): Promise<string> {
    const name = `..2026_12_01_21_50_${String(this.#n++).padStart(2, '0')}.000000001`;
    await mkdir(join(this.dir, name));
    for (const [k, v] of Object.entries(data)) await writeFile(join(this.dir, name, k), v);
    return name;
  }

  /** kubelet's rotation: new version dir, `..data_tmp` symlink renamed over `..data`, old version deleted. The
   *  user-visible `token` symlink is left as it is, even when the new version has no `token` key (a dangling link,
   *  which is what a Secret edited to drop the key looks like until kubelet cleans the link up). */
  async rotate(data: Record<string, string>): Promise<void> {
    const old = await readlink(join(this.dir, '..data'));
    const next = await this.#writeVersion(data);
    await symlink(next, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    await rm(join(this.dir, old), { recursive: true });
  }
}

const CONFIG = 'pools: []\n';

async function status(p: TestProxy, token: string | null): Promise<[number, string | undefined]> {
  const res = await request(`${p.adminUrl}/api/v1/failover/status`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return [res.statusCode, res.statusCode === 200 ? undefined : (JSON.parse(text) as { error: { code: string } }).error.code];
}

/** Polls until `token` gets `want` (the watch normally answers within ~50 ms; the bound is generous for a busy machine). */
async function until(p: TestProxy, token: string | null, want: [number, string | undefined], what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: [number, string | undefined] = [0, undefined];
  while (Date.now() < deadline) {
    last = await status(p, token);
    if (last[0] === want[0] && last[1] === want[1]) return;
    await sleep(25);
  }
  assert.fail(`${what}: still ${JSON.stringify(last)} after ${timeoutMs}ms, want ${JSON.stringify(want)}`);
}

test('a rotated Secret (..data symlink swap, old version deleted) reaches the running proxy; the old token stops working', async (t) => {
  const vol = await SecretVolume.create({ token: 'token-one-8d1f' });
  const p = await startTestProxy(CONFIG, {}, { tokenFile: vol.file });
  t.after(async () => { await p.stop(); await rm(vol.dir, { recursive: true, force: true }); });

  assert.deepEqual(await status(p, 'token-one-8d1f'), [200, undefined]);
  await vol.rotate({ token: 'token-two-5c2a\n' });
  await until(p, 'token-two-5c2a', [200, undefined], 'new token after rotation');
  assert.deepEqual(await status(p, 'token-one-8d1f'), [401, 'VF_ERR_UNAUTHORIZED'], 'the old token is refused');

  // A second rotation works too: the watch is on the directory, which outlives every version directory.
  await vol.rotate({ token: 'token-three-e90b' });
  await until(p, 'token-three-e90b', [200, undefined], 'third token');
  assert.deepEqual(await status(p, 'token-two-5c2a'), [401, 'VF_ERR_UNAUTHORIZED']);
  assert.ok(p.logs.some((l) => l.includes('"admin token reloaded from admin.token_file"')), 'the reload is logged');
  for (const tok of ['token-one-8d1f', 'token-two-5c2a', 'token-three-e90b']) assert.ok(!p.logs.some((l) => l.includes(tok)), 'no token in any log line');
});

test('a rotation that leaves the token missing or empty refuses every protected call (fail closed) until a token is back', async (t) => {
  const vol = await SecretVolume.create({ token: 'token-before-11aa' });
  const p = await startTestProxy(CONFIG, {}, { tokenFile: vol.file });
  t.after(async () => { await p.stop(); await rm(vol.dir, { recursive: true, force: true }); });
  assert.deepEqual(await status(p, 'token-before-11aa'), [200, undefined]);

  // The Secret loses its `token` key: `token` is now a dangling symlink.
  await vol.rotate({ other: 'x' });
  await until(p, 'token-before-11aa', [401, 'VF_ERR_ADMIN_TOKEN_UNSET'], 'missing token');
  assert.deepEqual(await status(p, null), [401, 'VF_ERR_ADMIN_TOKEN_UNSET']);
  assert.deepEqual(await status(p, ''), [401, 'VF_ERR_ADMIN_TOKEN_UNSET']);
  const missing = p.logs.find((l) => l.includes('admin token file is missing or empty'));
  assert.ok(missing, 'the missing token is logged');
  assert.match(missing, /"reason":"ENOENT"/);
  assert.equal(JSON.parse(missing).file, vol.file);

  await vol.rotate({ token: 'token-back-22bb' });
  await until(p, 'token-back-22bb', [200, undefined], 'token back');

  // Empty (only whitespace) is no token either.
  await vol.rotate({ token: ' \n' });
  await until(p, 'token-back-22bb', [401, 'VF_ERR_ADMIN_TOKEN_UNSET'], 'empty token');
  assert.ok(p.logs.some((l) => l.includes('"reason":"empty"')));
  for (const tok of ['token-before-11aa', 'token-back-22bb']) assert.ok(!p.logs.some((l) => l.includes(tok)), 'no token in any log line');
});

test('a plain token file rewritten in place is re-read too', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'veloflux-token-'));
  const file = join(dir, 'token');
  await writeFile(file, 'plain-one-3f3f\n');
  const p = await startTestProxy(CONFIG, {}, { tokenFile: file });
  t.after(async () => { await p.stop(); await rm(dir, { recursive: true, force: true }); });
  assert.deepEqual(await status(p, 'plain-one-3f3f'), [200, undefined]);
  await writeFile(file, 'plain-two-4e4e\n');
  await until(p, 'plain-two-4e4e', [200, undefined], 'rewritten file');
  assert.deepEqual(await status(p, 'plain-one-3f3f'), [401, 'VF_ERR_UNAUTHORIZED']);
});

test('where directory events do not arrive, the poll still follows a rotation', async (t) => {
  const vol = await SecretVolume.create({ token: 'poll-one-7a7a' });
  t.after(() => rm(vol.dir, { recursive: true, force: true }));
  const lines: string[] = [];
  const log = createLogger(SERVICE, { level: 'debug', destination: new Writable({ write(c: Buffer, _e, cb) { lines.push(c.toString()); cb(); } }) });
  const loaded = loadConfigText(`admin: { listen: "127.0.0.1:0", token_file: "${vol.file}" }\n`);
  assert.ok(loaded.ok);
  const source = new TokenSource(loaded.config, { log, env: {}, watch: false, pollMs: 100 });
  t.after(() => source.close());
  assert.equal(source.current(), 'poll-one-7a7a');
  await vol.rotate({ token: 'poll-two-8b8b' });
  const deadline = Date.now() + 15_000;
  while (source.current() !== 'poll-two-8b8b' && Date.now() < deadline) await sleep(20);
  assert.equal(source.current(), 'poll-two-8b8b');
  assert.ok(!lines.join('').includes('poll-'), 'no token in the log');
});

test('env VELOFLUX_ADMIN_TOKEN wins over the file and is not replaced by a rotation', async (t) => {
  const vol = await SecretVolume.create({ token: 'file-token-9c9c' });
  t.after(() => rm(vol.dir, { recursive: true, force: true }));
  const log = createLogger(SERVICE, { level: 'silent' });
  const loaded = loadConfigText(`admin: { listen: "127.0.0.1:0", token_file: "${vol.file}" }\n`);
  assert.ok(loaded.ok);
  const source = new TokenSource(loaded.config, { log, env: { VELOFLUX_ADMIN_TOKEN: 'env-token-1d1d' }, pollMs: 50 });
  t.after(() => source.close());
  assert.equal(source.current(), 'env-token-1d1d');
  await vol.rotate({ token: 'file-token-2e2e' });
  await sleep(300);
  assert.equal(source.current(), 'env-token-1d1d');
});

test('directory events that re-read a watched file: its own name, the kubelet\'s .. entries, an unnamed event; not its neighbours', async () => {
  const { concerns, watchedNames } = await import('../src/dataplane/dir-watch.ts');
  const byDir = watchedNames(['/run/secrets/admin/token', '/etc/tls/tls.crt', '/etc/tls/tls.key']);
  assert.deepEqual([...byDir.keys()], ['/run/secrets/admin', '/etc/tls']);
  const tls = byDir.get('/etc/tls') as Set<string>;
  for (const name of ['tls.crt', 'tls.key', '..data', '..data_tmp', '..2026_12_02_19_00_00.123456789', null, Buffer.from('tls.crt')]) {
    assert.equal(concerns(tls, name), true, `${String(name)} re-reads`);
  }
  for (const name of ['app.log', 'tls.crt.swp', 'token', '.data', Buffer.from('other')]) {
    assert.equal(concerns(tls, name), false, `${String(name)} does not re-read`);
  }
});
