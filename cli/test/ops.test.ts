// The `veloflux` CLI against a real proxy process and real backends: every subcommand, table and json/yaml output,
// the exit codes scripts read (0 ok, 1 refused, 2 usage, 3 unreachable, 4 no or wrong token), and the token never
// printed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { startBackends } from '../../proxy/test/helpers/backend.ts';
import type { TestBackend } from '../../proxy/test/helpers/backend.ts';
import { startProxyProcess } from '../../proxy/test/helpers/process.ts';
import type { ProxyProcess } from '../../proxy/test/helpers/process.ts';

const BIN = fileURLToPath(new URL('../bin/veloflux.js', import.meta.url));
const TOKEN = 'cli-ops-token-3f9a1c';

interface Result { code: number | null; out: string; err: string }
const all: Result[] = [];

/** Runs `veloflux ARGS` to its end (no terminal), with the token in the env unless `env` says otherwise. */
function veloflux(args: readonly string[], env: Record<string, string | undefined> = { VELOFLUX_ADMIN_TOKEN: TOKEN }, stdin?: string): Promise<Result> {
  const base = { ...process.env };
  delete base.VELOFLUX_ADMIN_TOKEN;
  delete base.VELOFLUX_ADMIN_URL;
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...base, ...env }, stdio: ['pipe', 'pipe', 'pipe'], timeout: 60_000 });
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  child.stdin.end(stdin ?? '');
  return new Promise((resolve) => child.on('close', (code) => { const r = { code, out, err }; all.push(r); resolve(r); }));
}

async function setup(t: { after: (fn: () => Promise<void> | void) => void }): Promise<{ p: ProxyProcess; admin: string; primary: TestBackend; backup: TestBackend; dir: string }> {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const hc = '{ interval: "200ms", timeout: "100ms" }';
  const p = await startProxyProcess(`pools:
  - name: app
    backends:
      - { address: "${primary.address}", health_check: ${hc} }
      - { address: "${backup.address}", failover: true, health_check: ${hc} }
routes: [{ pool: app }]
failover:
  recovery_interval: "300ms"
  notification:
    channels: [{ type: log, level: warning }]
`, [], 15_000, { VELOFLUX_ADMIN_TOKEN: TOKEN });
  t.after(async () => {
    if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; }
    await primary.kill();
    await backup.kill();
  });
  const dir = await mkdtemp(join(tmpdir(), 'veloflux-ops-'));
  return { p, admin: `http://127.0.0.1:${p.admin}`, primary, backup, dir };
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('status: tables by default, -o json and -o yaml; --pool; no token, a wrong token, an unknown pool, an unreachable proxy', async (t) => {
  const { admin, primary, backup, dir } = await setup(t);
  const ready = await until('ready and both up', async () => {
    const r = await veloflux(['status', '--admin', admin, '-o', 'json']);
    const j = JSON.parse(r.out) as { ready: boolean; pools: { backends: { health: string }[] }[] };
    return j.ready && j.pools[0]?.backends.every((b) => b.health === 'up') ? j : undefined;
  });
  assert.equal(ready.pools.length, 1);

  const table = await veloflux(['status', '--admin', admin]);
  assert.equal(table.code, 0, table.err);
  const lines = table.out.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^proxy http:\/\/127\.0\.0\.1:\d+: config [0-9a-f]{16}, ready$/);
  assert.match(table.out, /^POOL {2}LEVEL {2}STATE {3}MODE {2}STRATEGY {3}FAILOVERS {2}ACTIVE SINCE$/m);
  assert.match(table.out, /^app {3}0 {6}normal {2}auto {2}immediate {2}0 {10}-$/m);
  assert.match(table.out, /^POOL {2}BACKEND +LEVEL {2}HEALTH {2}WEIGHT {2}REGION {2}LAST CHECK +LAST ERROR$/m);
  assert.match(table.out, new RegExp(`^app {3}${primary.address.replace(/\./g, '\\.')} +0 {6}up {6}100 {5}- {7}\\d{4}-`, 'm'));
  assert.match(table.out, new RegExp(`^app {3}${backup.address.replace(/\./g, '\\.')} +1 {6}up `, 'm'));

  const y = await veloflux(['status', '--admin', admin, '--pool', 'app', '-o', 'yaml']);
  assert.equal(y.code, 0);
  assert.equal((parse(y.out) as { pools: { name: string }[] }).pools[0]?.name, 'app');

  // Exit codes and their messages.
  const cases: [string, string[], Record<string, string | undefined>, number, RegExp][] = [
    ['no token', ['status', '--admin', admin], {}, 4, /^veloflux status: no admin token: set env VELOFLUX_ADMIN_TOKEN or pass --token-file FILE/],
    ['wrong token', ['status', '--admin', admin], { VELOFLUX_ADMIN_TOKEN: 'wrong' }, 4, /^veloflux status: the proxy refused the token \(VF_ERR_UNAUTHORIZED: /],
    ['unknown pool', ['status', '--admin', admin, '--pool', 'nope'], { VELOFLUX_ADMIN_TOKEN: TOKEN }, 1, /^veloflux status: VF_ERR_UNKNOWN_POOL: unknown pool "nope" \(pools: "app"\)$/],
    ['unreachable', ['status', '--admin', 'http://127.0.0.1:1'], { VELOFLUX_ADMIN_TOKEN: TOKEN }, 3, /^veloflux status: cannot reach the admin API at http:\/\/127\.0\.0\.1:1: connection refused/],
    ['not a URL', ['status', '--admin', 'nope'], { VELOFLUX_ADMIN_TOKEN: TOKEN }, 2, /--admin must be a URL like http:\/\/127\.0\.0\.1:9000, got "nope"/],
    ['credentials in the URL', ['status', '--admin', `http://x:${TOKEN}@127.0.0.1:1`], { VELOFLUX_ADMIN_TOKEN: TOKEN }, 2, /--admin must not carry credentials/],
    ['bad -o', ['status', '--admin', admin, '-o', 'xml'], { VELOFLUX_ADMIN_TOKEN: TOKEN }, 2, /^veloflux status: -o must be one of table, json, yaml, got "xml"/],
    ['unknown flag', ['status', '--frobnicate'], { VELOFLUX_ADMIN_TOKEN: TOKEN }, 2, /^veloflux status: unknown flag --frobnicate \(veloflux status --help\)$/],
    ['a flag of another command', ['status', '--live'], { VELOFLUX_ADMIN_TOKEN: TOKEN }, 2, /--live does not go with status/],
    ['missing token file', ['status', '--admin', admin, '--token-file', join(dir, 'none')], {}, 2, /cannot read --token-file .*: ENOENT/],
    ['unknown command', ['frobnicate'], {}, 2, /^veloflux: unknown command "frobnicate" \(veloflux --help lists them\)$/],
  ];
  for (const [what, args, env, code, message] of cases) {
    const r = await veloflux(args, env);
    assert.equal(r.code, code, `${what}: ${r.err}`);
    assert.match(r.err.trimEnd(), message, what);
    assert.equal(r.out, '', `${what}: nothing on stdout`);
    assert.equal(r.err.trimEnd().split('\n').length, 1, `${what}: one line`);
  }
  // The token from a file (the proxy's admin.token_file), with its trailing newline.
  await writeFile(join(dir, 'token'), `${TOKEN}\n`);
  const viaFile = await veloflux(['status', '--admin', admin, '--token-file', join(dir, 'token'), '-o', 'json'], {});
  assert.equal(viaFile.code, 0, viaFile.err);
  // VELOFLUX_ADMIN_URL is the default for --admin.
  assert.equal((await veloflux(['status', '-o', 'json'], { VELOFLUX_ADMIN_TOKEN: TOKEN, VELOFLUX_ADMIN_URL: admin })).code, 0);
  for (const r of all) assert.ok(!r.out.includes(TOKEN) && !r.err.includes(TOKEN), 'the token is never printed');
});

test('activate, deactivate, failback, test (dry run and --live): one line or a table, -o json; exit codes', async (t) => {
  const { admin, p } = await setup(t);
  await until('ready', async () => (JSON.parse((await veloflux(['status', '--admin', admin, '-o', 'json'])).out) as { ready: boolean }).ready || undefined);

  const act = await veloflux(['activate', '--pool', 'app', '--admin', admin]);
  assert.deepEqual([act.code, act.out], [0, 'pool app: failover activated (level 1, mode manual, failover active)\n'], act.err);
  const st = JSON.parse((await veloflux(['status', '--admin', admin, '-o', 'json'])).out) as { pools: { activeLevel: number; mode: string }[] };
  assert.deepEqual([st.pools[0]?.activeLevel, st.pools[0]?.mode], [1, 'manual']);
  const deact = await veloflux(['deactivate', '--pool', 'app', '--admin', admin, '-o', 'json']);
  assert.equal(deact.code, 0);
  assert.equal((JSON.parse(deact.out) as { mode: string }).mode, 'auto');
  assert.ok(p.stdout.some((l) => l.includes('"msg":"failover mode manual"')), 'the proxy did it');

  // failback: SPEC 10's endpoint. A proxy that has it answers 409 when nothing awaits approval; one without it
  // (older than engine v2) answers 404: the CLI says which, with exit 1 either way.
  const fb = await veloflux(['failback', '--pool', 'app', '--admin', admin]);
  assert.equal(fb.code, 1, fb.err);
  const openapi = await (await fetch(`${admin}/openapi.json`)).json() as { paths: Record<string, unknown> };
  if ('/api/v1/failover/failback' in openapi.paths) assert.match(fb.err, /^veloflux failback: VF_ERR_NO_FAILBACK_AWAITING: /);
  else assert.match(fb.err.trimEnd(), /^veloflux failback: this proxy has no such endpoint \(VF_ERR_NOT_FOUND: no admin endpoint POST \/api\/v1\/failover\/failback; GET \/openapi\.json lists them\); it may be older than this CLI$/);

  for (const [cmd, args, code, message] of [
    ['activate', [], 2, /^veloflux activate: --pool is required/],
    ['activate', ['--pool', 'nope'], 1, /^veloflux activate: VF_ERR_UNKNOWN_POOL: unknown pool "nope"/],
    ['test', ['--pool', 'app', '--duration', '5s'], 2, /--duration goes with --live/],
    ['test', ['--pool', 'app', '--live', '--duration', '2'], 2, /--duration must be a duration from 1s to 10m like "30s", got "2"/],
    ['test', ['--pool', 'app', '--live', '--duration', '1h'], 2, /--duration must be a duration from 1s to 10m/],
  ] as const) {
    const r = await veloflux([cmd, ...args, '--admin', admin]);
    assert.equal(r.code, code, `${cmd} ${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
  }

  const dry = await veloflux(['test', '--pool', 'app', '--admin', admin]);
  assert.equal(dry.code, 0, dry.err);
  assert.match(dry.out, /^pool app: dry run \(nothing moved\), level 0 serving\nlevel 1 would take over: 1 of 1 backend answer \(slowest \d+ ms\)\nBACKEND +ANSWERS {2}LATENCY {2}ERROR\n127\.0\.0\.1:\d+ +yes +\d+ ms\nnotifications:\nCHANNEL {2}DELIVERED {2}ERROR\nlog {6}yes\n$/);
  const dryJson = JSON.parse((await veloflux(['test', '--pool', 'app', '--admin', admin, '-o', 'json'])).out) as { mode: string; test: boolean };
  assert.deepEqual([dryJson.mode, dryJson.test], ['dry-run', true]);

  const live = await veloflux(['test', '--pool', 'app', '--live', '--duration', '1s', '--admin', admin]);
  assert.equal(live.code, 0, live.err);
  assert.match(live.err, /^veloflux test: live drill on pool app: the pool moves to its backup level for 1s \.\.\.$/m);
  assert.match(live.out, /^pool app: live drill, 1s on level 1 \(from 0, now 0\)\nrequests 0, errors 0 \(0\.0%\), p50 -, p99 -\n/);

  // ctrl-C while a live drill runs: the CLI stops at once with 130 (the drill ends by itself on the proxy).
  const child = spawn(process.execPath, [BIN, 'test', '--pool', 'app', '--live', '--duration', '3s', '--admin', admin], { env: { ...process.env, VELOFLUX_ADMIN_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => { err += c.toString(); });
  const exit = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await until('the drill started', async () => (err.includes('live drill on pool app') ? true : undefined));
  child.kill('SIGINT');
  assert.equal(await exit, 130);
});

test('events: follows the stream (table and json lines), ctrl-C ends it cleanly; a stream the proxy closes is exit 3', async (t) => {
  const { admin, p } = await setup(t);
  const follow = (args: string[]): { child: ReturnType<typeof spawn>; out: () => string; err: () => string; exit: Promise<number | null> } => {
    const env = { ...process.env, VELOFLUX_ADMIN_TOKEN: TOKEN };
    const child = spawn(process.execPath, [BIN, 'events', '--admin', admin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr?.on('data', (c: Buffer) => { err += c.toString(); });
    return { child, out: () => out, err: () => err, exit: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
  };
  const tableFollower = follow([]);
  const jsonFollower = follow(['-o', 'json']);
  t.after(() => { tableFollower.child.kill('SIGKILL'); jsonFollower.child.kill('SIGKILL'); });
  await until('hello', async () => (tableFollower.out().includes('  hello  ') && jsonFollower.out().includes('"event":"hello"')) || undefined);
  assert.match(tableFollower.out(), /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}hello {2}config [0-9a-f]{16}, app on level 0\n$/);
  assert.equal((await veloflux(['activate', '--pool', 'app', '--admin', admin])).code, 0);
  await until('mode_changed in both', async () => (tableFollower.out().includes('mode_changed') && jsonFollower.out().includes('"event":"mode_changed"')) || undefined);
  assert.match(tableFollower.out(), /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}mode_changed {2}pool=app mode=manual reason=manual activation$/m);
  const jsonLines = jsonFollower.out().trimEnd().split('\n').map((l) => JSON.parse(l) as { event: string; data: Record<string, unknown> });
  assert.deepEqual(jsonLines.find((l) => l.event === 'mode_changed')?.data.mode, 'manual');

  tableFollower.child.kill('SIGINT');
  assert.equal(await tableFollower.exit, 0, 'ctrl-C: exit 0');
  assert.equal(tableFollower.err(), '', 'ctrl-C: nothing on stderr');

  // The proxy stops: the stream ends, and the CLI says so (exit 3).
  p.child.kill('SIGTERM');
  assert.equal(await jsonFollower.exit, 3);
  assert.match(jsonFollower.err(), /^veloflux events: (the proxy closed the event stream|the event stream from .* broke off)/);
});

test('config get | put | check: get-edit-put through the CLI; check is the proxy\'s own validation, offline', async (t) => {
  const { admin, dir, p } = await setup(t);
  const got = await veloflux(['config', 'get', '--admin', admin]);
  assert.equal(got.code, 0, got.err);
  assert.match(got.out, /^# veloflux-proxy config, version [0-9a-f]{16}/);
  const file = join(dir, 'running.yaml');
  await writeFile(file, got.out);

  const check = await veloflux(['config', 'check', file], {});
  assert.equal(check.code, 0, check.err);
  assert.match(check.out, new RegExp(`^${file.replace(/[.]/g, '\\.')}: valid \\(1 pool, 2 backends, 1 route; version [0-9a-f]{16}\\)\\n$`));

  const same = await veloflux(['config', 'put', file, '--admin', admin]);
  assert.deepEqual([same.code, same.out], [0, `unchanged: the proxy already runs version ${/version ([0-9a-f]{16})/.exec(got.out)?.[1]}\n`], same.err);

  await writeFile(file, got.out.replace('recovery_interval: 300ms', 'recovery_interval: 2s'));
  const put = await veloflux(['config', 'put', file, '--admin', admin]);
  assert.equal(put.code, 0, put.err);
  assert.match(put.out, /^applied: config version [0-9a-f]{16}\n$/);
  assert.ok(p.stdout.some((l) => l.includes('"msg":"config applied"')));
  const json = JSON.parse((await veloflux(['config', 'get', '-o', 'json', '--admin', admin])).out) as { config: { pools: { policy: { recoveryIntervalMs: number } }[] } };
  assert.equal(json.config.pools[0]?.policy.recoveryIntervalMs, 2000);

  // From stdin, and invalid: every problem with its path and line (check offline; put from the proxy), exit 1.
  const bad = 'pools:\n  - name: a\n    backends:\n      - address: "x:80"\n        health_check: { timeout: "2" }\nroutes: [{ pool: b }]\n';
  const badCheck = await veloflux(['config', 'check', '-'], {}, bad);
  assert.equal(badCheck.code, 1);
  assert.deepEqual(badCheck.err.trimEnd().split('\n'), [
    'veloflux config check: (stdin) is invalid (1 problem):',
    '(stdin):5: pools[0].backends[0].health_check.timeout: must be a duration like "2s" (units ms, s, m, h), got "2"',
  ]);
  const badPut = await veloflux(['config', 'put', '-', '--admin', admin], { VELOFLUX_ADMIN_TOKEN: TOKEN }, bad);
  assert.equal(badPut.code, 1);
  assert.match(badPut.err, /^veloflux config put: VF_ERR_CONFIG_INVALID: the config has 1 problem; the running config \(version [0-9a-f]{16}\) keeps serving:\n\(stdin\):5: pools\[0\]\.backends\[0\]\.health_check\.timeout: must be a duration/);

  for (const [args, message] of [
    [['config'], /a subcommand is required: get, put or check/],
    [['config', 'edit'], /unknown subcommand "edit": get, put or check/],
    [['config', 'put'], /config put needs a FILE/],
    [['config', 'get', 'x.yaml'], /config get takes no argument/],
    [['config', 'check', join(dir, 'none.yaml')], /cannot read .*none\.yaml: no such file/],
    [['config', 'get', '-o', 'table'], /-o must be one of yaml, json, got "table"/],
  ] as const) {
    const r = await veloflux([...args, '--admin', admin]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
  }
  for (const r of all) assert.ok(!r.out.includes(TOKEN) && !r.err.includes(TOKEN), 'the token is never printed');
});

test('failback --pool P approves a failback that waits (failover.failback: manual), and says what the pool does then', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const hc = '{ interval: "200ms", timeout: "100ms", unhealthy_threshold: 1, healthy_threshold: 1 }';
  const p = await startProxyProcess(`pools:
  - name: app
    backends:
      - { address: "${primary.address}", health_check: ${hc} }
      - { address: "${backup.address}", failover: true, health_check: ${hc} }
routes: [{ pool: app }]
failover:
  recovery_interval: "300ms"
  failback: manual
`, [], 15_000, { VELOFLUX_ADMIN_TOKEN: TOKEN });
  t.after(async () => {
    if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; }
    await primary.kill();
    await backup.kill();
  });
  const admin = `http://127.0.0.1:${p.admin}`;
  const status = async (): Promise<{ activeLevel: number; failback: { awaitingApproval: boolean } }> =>
    (JSON.parse((await veloflux(['status', '--admin', admin, '-o', 'json'])).out) as { pools: { activeLevel: number; failback: { awaitingApproval: boolean } }[] }).pools[0] as never;
  // A backup whose first probe answers before the primary's can take the pool at start (then, with failback
  // manual, it already awaits approval); otherwise fail the primary over and bring it back.
  const first = await until('first probe round', async () => { const st = await status(); return st.activeLevel === 0 || st.failback.awaitingApproval ? st : undefined; });
  if (!first.failback.awaitingApproval) {
    await primary.kill();
    await until('failed over', async () => ((await status()).activeLevel === 1 ? true : undefined));
    await primary.revive();
  }
  await until('awaiting approval', async () => ((await status()).failback.awaitingApproval ? true : undefined));
  const table = await veloflux(['status', '--admin', admin]);
  assert.match(table.out, /^app {3}1 {6}awaiting failback approval/m);
  const fb = await veloflux(['failback', '--pool', 'app', '--admin', admin]);
  assert.equal(fb.code, 0, fb.err);
  assert.match(fb.out, /^pool app: failback approved \(level \d, mode auto/);
  await until('back on level 0', async () => ((await status()).activeLevel === 0 ? true : undefined));
  const again = await veloflux(['failback', '--pool', 'app', '--admin', admin]);
  assert.equal(again.code, 1);
  assert.match(again.err, /^veloflux failback: VF_ERR_NO_FAILBACK_AWAITING: /);
});
