// The admin API over HTTP against a real proxy and real backends: every endpoint, with and without the token.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { request } from 'undici';
import { TestBackend, startBackends } from './helpers/backend.ts';
import { runLoad } from './helpers/load.ts';
import { headLines, startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

const TOKEN = 'test-token-4f1c9a';
// Notifications go to loopback ports where nothing listens (refused): the drill reports each channel's failure.
const SECRETS = ['smtp-pass-93kd', 'T000/secret-path-77'];

async function tokenFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'veloflux-admin-'));
  const file = join(dir, 'token');
  await writeFile(file, `${TOKEN}\n`);
  return file;
}

/** The seed's pool name, so the seed's own curl commands apply as written. */
function yaml(primary: TestBackend, backup: TestBackend, extra = ''): string {
  return `pools:
  - name: app-principal-pool
    algorithm: failover
    backends:
      - address: "${primary.address}"
        weight: 100
        health_check: { path: "/health", interval: "200ms", timeout: "100ms", expected_status: 200, unhealthy_threshold: 2 }
      - address: "${backup.address}"
        failover: true
        health_check: { path: "/health", interval: "200ms", timeout: "100ms" }
routes:
  - host: "sua-aplicacao.com"
    path_prefix: "/"
    load_balancing: { method: failover }
    pool: app-principal-pool
failover:
  enabled: true
  strategy: immediate
  recovery_interval: "500ms"
  notification:
    enabled: true
    channels:
      - { type: log, level: warning }
      - { type: email, smtp_server: "127.0.0.1", smtp_port: 9, timeout: "500ms", smtp_user: "u@example.com", smtp_password: "${SECRETS[0]}", recipients: ["ops@example.com"] }
      - { type: webhook, url: "http://127.0.0.1:9/${SECRETS[1]}", format: slack, timeout: "500ms" }
${extra}`;
}

interface Call { status: number; json: any; headers: Record<string, string | string[] | undefined>; text: string }

async function call(p: TestProxy, method: string, path: string, opts: { token?: string | null; body?: string; type?: string } = {}): Promise<Call> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await request(`${p.adminUrl}${path}`, {
    method: method as 'GET',
    headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(opts.body !== undefined ? { 'content-type': opts.type ?? 'application/yaml' } : {}) },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.body.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.statusCode, json, headers: res.headers, text };
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, extra = ''): Promise<{ p: TestProxy; primary: TestBackend; backup: TestBackend; file: string }> {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const file = await tokenFile();
  const p = await startTestProxy(yaml(primary, backup, extra), {}, { tokenFile: file });
  t.after(async () => { await p.stop(); await primary.kill(); await backup.kill(); });
  await p.waitReady();
  return { p, primary, backup, file };
}

async function served(p: TestProxy): Promise<string> {
  const res = await request(`${p.url}/`, { headers: { host: 'sua-aplicacao.com' } });
  return res.body.text();
}

test('auth: /api/v1 needs the bearer token; health, readiness, metrics and the OpenAPI document do not', async (t) => {
  const { p } = await setup(t);
  for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json']) assert.equal((await call(p, 'GET', path, { token: null })).status, 200, path);
  const none = await call(p, 'GET', '/api/v1/failover/status', { token: null });
  assert.equal(none.status, 401);
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  assert.deepEqual(none.json, { error: { code: 'VF_ERR_UNAUTHORIZED', message: 'missing or invalid bearer token (Authorization: Bearer <token>)' } });
  const wrong = await call(p, 'POST', '/api/v1/failover/activate?pool=app-principal-pool', { token: 'nope' });
  assert.equal(wrong.status, 401);
  // Every /api/v1 endpoint, without a token and with a wrong one.
  const endpoints: [string, string][] = [['POST', '/api/v1/failover/activate?pool=app-principal-pool'], ['POST', '/api/v1/failover/deactivate?pool=app-principal-pool'], ['GET', '/api/v1/failover/status'], ['POST', '/api/v1/failover/test?pool=app-principal-pool'], ['GET', '/api/v1/config'], ['PUT', '/api/v1/config'], ['GET', '/api/v1/events']];
  for (const [method, path] of endpoints) {
    for (const token of [null, 'wrong-token']) {
      const r = await call(p, method, path, { token, ...(method === 'PUT' ? { body: 'pools: []' } : {}) });
      assert.deepEqual([r.status, r.json?.error?.code], [401, 'VF_ERR_UNAUTHORIZED'], `${method} ${path} with ${token ?? 'no token'}`);
    }
  }
  assert.equal(p.proxy.controller.status('app-principal-pool')[0]?.mode, 'auto', 'a refused call changes nothing');
  assert.equal((await call(p, 'GET', '/api/v1/failover/status')).status, 200);
  assert.ok(!p.logs.some((l) => l.includes(TOKEN)), 'the token never reaches a log line');
});

test('auth: with no token configured, /api/v1 refuses every call and says how to set one', async (t) => {
  const [a, b] = await startBackends('a', 'b') as [TestBackend, TestBackend];
  const p = await startTestProxy(yaml(a, b));
  t.after(async () => { await p.stop(); await a.kill(); await b.kill(); });
  const r = await call(p, 'GET', '/api/v1/failover/status');
  assert.equal(r.status, 401);
  assert.deepEqual(r.json.error, { code: 'VF_ERR_ADMIN_TOKEN_UNSET', message: 'no admin token is configured: set env VELOFLUX_ADMIN_TOKEN or admin.token_file' });
});

test('the seed\'s curl commands work as written (plus the token): activate, status, deactivate, test', async (t) => {
  const { p } = await setup(t);
  assert.equal(await served(p), 'primary');
  const on = await call(p, 'POST', '/api/v1/failover/activate?pool=app-principal-pool');
  assert.equal(on.status, 200);
  assert.deepEqual([on.json.name, on.json.mode, on.json.activeLevel, on.json.failoverActive], ['app-principal-pool', 'manual', 1, true]);
  assert.equal(await served(p), 'backup');
  const st = await call(p, 'GET', '/api/v1/failover/status?pool=app-principal-pool');
  assert.equal(st.status, 200);
  const pool = st.json.pools[0];
  assert.deepEqual([pool.activeLevel, pool.mode, pool.strategy, pool.failoverCount], [1, 'manual', 'immediate', 1]);
  assert.match(pool.activeSince, /^\d{4}-\d\d-\d\dT/);
  assert.deepEqual(pool.backends.map((b: { level: number; health: string }) => [b.level, b.health]), [[0, 'up'], [1, 'up']]);
  assert.ok(pool.backends[0].lastCheck);
  const off = await call(p, 'POST', '/api/v1/failover/deactivate?pool=app-principal-pool');
  assert.deepEqual([off.status, off.json.mode], [200, 'auto']);
  // Back to automatic: traffic returns once level 0 has been healthy for recovery_interval (500ms here).
  await p.waitFor((e) => e.type === 'failover_recovered', 3000, 'failback after deactivate');
  assert.equal(await served(p), 'primary');
  const drill = await call(p, 'POST', '/api/v1/failover/test?pool=app-principal-pool');
  assert.equal(drill.status, 200);
  assert.deepEqual([drill.json.test, drill.json.mode, drill.json.activeLevel, drill.json.nextLevel], [true, 'dry-run', 0, 1]);
  assert.equal(drill.json.nextLevelBackends[0].ok, true);
  assert.match(drill.json.wouldHappen, /^level 1 would take over: 1 of 1 backend answer/);
  assert.equal(p.proxy.controller.status('app-principal-pool')[0]?.activeLevel, 0, 'a dry run moves nothing');
  assert.deepEqual(drill.json.notifications.map((n: { channel: string; ok: boolean }) => [n.channel, n.ok]), [['log', true], ['email', false], ['webhook:slack', false]]);
  for (const s of SECRETS) assert.ok(!drill.text.includes(s), 'no secret in the drill report');
  const all = await call(p, 'GET', '/api/v1/failover/status');
  assert.deepEqual(all.json.pools.map((x: { name: string }) => x.name), ['app-principal-pool']);
});

test('bad parameters and unknown pools are clear JSON errors that change nothing', async (t) => {
  const { p } = await setup(t);
  const rows: [string, string, number, string, string][] = [
    ['POST', '/api/v1/failover/activate', 400, 'VF_ERR_BAD_PARAMETER', 'query parameter "pool" is required (pools: "app-principal-pool")'],
    ['POST', '/api/v1/failover/activate?pool=nope', 404, 'VF_ERR_UNKNOWN_POOL', 'unknown pool "nope" (pools: "app-principal-pool")'],
    ['GET', '/api/v1/failover/status?pool=nope', 404, 'VF_ERR_UNKNOWN_POOL', 'unknown pool "nope" (pools: "app-principal-pool")'],
    ['POST', '/api/v1/failover/test?pool=app-principal-pool&mode=chaos', 400, 'VF_ERR_BAD_PARAMETER', 'query parameter "mode" must be "dry-run" or "live", got "chaos"'],
    ['POST', '/api/v1/failover/test?pool=app-principal-pool&mode=live&duration=2', 400, 'VF_ERR_BAD_PARAMETER', 'query parameter "duration" must be a duration from 1s to 10m like "30s", got "2"'],
    ['POST', '/api/v1/failover/test?pool=app-principal-pool&mode=live&duration=1h', 400, 'VF_ERR_BAD_PARAMETER', 'query parameter "duration" must be a duration from 1s to 10m like "30s", got "1h"'],
    ['DELETE', '/api/v1/config', 405, 'VF_ERR_METHOD_NOT_ALLOWED', 'DELETE is not allowed on /api/v1/config; allowed: GET, HEAD, PUT'],
    ['DELETE', '/api/v1/nothing', 404, 'VF_ERR_NOT_FOUND', 'no admin endpoint DELETE /api/v1/nothing; GET /openapi.json lists them'],
  ];
  for (const [method, path, status, code, message] of rows) {
    const r = await call(p, method, path);
    assert.equal(r.status, status, path);
    assert.deepEqual(r.json, { error: { code, message } }, path);
  }
  assert.equal(p.proxy.controller.status()[0]?.mode, 'auto');
});

test('GET /api/v1/config redacts secrets; PUT validates, applies atomically and keeps health state', async (t) => {
  const { p, primary, backup, file } = await setup(t);
  const got = await call(p, 'GET', '/api/v1/config');
  assert.equal(got.status, 200);
  for (const s of SECRETS) assert.ok(!got.text.includes(s), 'secret redacted');
  assert.match(got.text, /<redacted>/);
  const version = got.json.version as string;

  // Invalid: every problem with its path; nothing changes.
  const bad = await call(p, 'PUT', '/api/v1/config', { body: 'pools:\n  - name: x\n    backends: [{ address: "nohost" }]\nroutes: [{ pool: y }]\n' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.code, 'VF_ERR_CONFIG_INVALID');
  assert.deepEqual(bad.json.error.issues.map((i: { path: string }) => i.path), ['pools[0].backends[0].address']);
  assert.equal((await call(p, 'GET', '/api/v1/config')).json.version, version);
  assert.equal(await served(p), 'primary');

  // The primary goes down: failover. A new config that keeps both backends keeps that state (no flap back).
  await primary.kill();
  await p.waitFor((e) => e.type === 'failover_activated', 3000);
  const [third] = await startBackends('third') as [TestBackend];
  t.after(() => third.kill());
  const next = `${headLines(file)}${yaml(primary, backup)}`.replace('routes:', `  - name: extra\n    backends: [{ address: "${third.address}", health_check: { interval: "200ms", timeout: "100ms" } }]\nroutes:\n  - { host: "extra.test", pool: extra }`);
  const put = await call(p, 'PUT', '/api/v1/config', { body: next });
  assert.equal(put.status, 200, put.text);
  assert.deepEqual([put.json.changed, typeof put.json.version], [true, 'string']);
  assert.notEqual(put.json.version, version);
  const st = (await call(p, 'GET', '/api/v1/failover/status?pool=app-principal-pool')).json.pools[0];
  assert.deepEqual([st.activeLevel, st.backends[0].health, st.failoverCount], [1, 'down', 1], 'health and failover state kept');
  assert.equal(await served(p), 'backup');
  const extra = await request(`${p.url}/`, { headers: { host: 'extra.test' } });
  assert.equal(await extra.body.text(), 'third');
  const again = await call(p, 'PUT', '/api/v1/config', { body: next });
  assert.deepEqual([again.status, again.json.changed, again.json.version], [200, false, put.json.version]);

  // A change only a restart can make is refused whole.
  const moved = await call(p, 'PUT', '/api/v1/config', { body: next.replace('listen: "127.0.0.1:0"\n', 'listen: "127.0.0.1:1"\n') });
  assert.equal(moved.status, 409);
  assert.equal(moved.json.error.code, 'VF_ERR_CONFIG_RESTART_REQUIRED');
  assert.match(moved.json.error.message, /changes listen, which only a restart can change/);

  // JSON bodies too.
  const asJson = await call(p, 'PUT', '/api/v1/config', { body: JSON.stringify({ pools: [{ name: 'j', backends: [{ address: third.address }] }], routes: [{ pool: 'j' }], listen: '127.0.0.1:0', admin: { listen: '127.0.0.1:0', token_file: file } }), type: 'application/json' });
  assert.equal(asJson.status, 200, asJson.text);
  assert.equal(await (await request(`${p.url}/`)).body.text(), 'third');
  assert.ok(!p.logs.some((l) => SECRETS.some((s) => l.includes(s))), 'no secret in any log line');
});

test('config reload under steady load loses no request', async (t) => {
  const { p, primary, backup, file } = await setup(t);
  const head = headLines(file);
  let stop = false;
  const load = runLoad(p.url, { concurrency: 6, durationMs: 4000, maxRequests: 30_000, stop: () => stop, headers: { host: 'sua-aplicacao.com' } });
  let puts = 0;
  const deadline = Date.now() + 2500;
  while (Date.now() < deadline && puts < 200) {
    // Alternate the primary's weight and the recovery interval: a new version every time.
    const body = head + yaml(primary, backup).replace('weight: 100', `weight: ${puts % 2 === 0 ? 50 : 100}`).replace('"500ms"', `"${500 + puts}ms"`);
    const r = await call(p, 'PUT', '/api/v1/config', { body });
    assert.equal(r.status, 200, r.text);
    puts++;
  }
  stop = true;
  const result = await load;
  assert.ok(puts >= 10, `only ${puts} reloads`);
  assert.ok(result.sent > 100, `only ${result.sent} requests`);
  assert.deepEqual(result.failures, []);
  assert.equal(result.byBackend.get('primary'), result.sent, 'every request answered by the primary');
});

test('server-sent events: hello with the status, then every state change as it happens', async (t) => {
  const { p, primary } = await setup(t);
  const res = await request(`${p.adminUrl}/api/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream');
  const seen: { event: string; data: any }[] = [];
  const reader = (async () => {
    let buf = '';
    for await (const chunk of res.body) {
      buf += chunk.toString();
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) seen.push({ event, data: JSON.parse(data) });
        if (seen.some((e) => e.event === 'failover_activated')) return;
      }
    }
  })();
  await sleep(100);
  await primary.kill();
  await Promise.race([reader, sleep(5000).then(() => { throw new Error(`no failover event; got ${seen.map((e) => e.event)}`); })]);
  res.body.destroy();
  assert.equal(seen[0]?.event, 'hello');
  assert.equal(seen[0]?.data.pools[0].name, 'app-principal-pool');
  const types = seen.map((e) => e.event);
  assert.ok(types.indexOf('backend_down') > 0 && types.indexOf('backend_down') < types.indexOf('failover_activated'), types.join(','));
  const fo = seen.find((e) => e.event === 'failover_activated')?.data;
  assert.deepEqual([fo.pool, fo.from, fo.to, fo.reason], ['app-principal-pool', 0, 1, 'level 0 has no healthy backend']);
});

test('live drill: moves the pool for the duration under traffic, reports requests, errors and latency, hands it back', async (t) => {
  const { p } = await setup(t);
  let stop = false;
  const load = (async () => {
    let n = 0;
    while (!stop && n < 5000) { await served(p); n++; }
  })();
  const r = await call(p, 'POST', '/api/v1/failover/test?pool=app-principal-pool&mode=live&duration=1500ms');
  stop = true;
  await load;
  assert.equal(r.status, 200, r.text);
  assert.deepEqual([r.json.mode, r.json.from, r.json.to, r.json.after, r.json.errors], ['live', 0, 1, 0, 0]);
  assert.ok(r.json.requests > 10, `requests ${r.json.requests}`);
  assert.equal(typeof r.json.latencyMs.p50, 'number');
  assert.ok(r.json.durationMs >= 1500);
  const ev = p.events.map((e) => e.type);
  assert.deepEqual(ev.filter((x) => x.startsWith('failover')), ['failover_activated', 'failover_recovered']);
});

test('metrics: the four seed metrics per pool from the start, the rest of SPEC 4, and promtool accepts the output', async (t) => {
  const { p, primary } = await setup(t);
  await served(p);
  const scrape = async (): Promise<string> => (await call(p, 'GET', '/metrics', { token: null })).text;
  const first = await scrape();
  for (const line of [
    'veloflux_failover_active{pool="app-principal-pool"} 0',
    'veloflux_failover_events_total{pool="app-principal-pool"} 0',
    'veloflux_failover_last_activation{pool="app-principal-pool"} 0',
    'veloflux_failover_duration_seconds{pool="app-principal-pool"} 0',
    'veloflux_pool_active_level{pool="app-principal-pool"} 0',
    `veloflux_backend_healthy{pool="app-principal-pool",backend="${primary.address}"} 1`,
    `veloflux_backend_level{pool="app-principal-pool",backend="${primary.address}"} 0`,
    `veloflux_requests_total{pool="app-principal-pool",backend="${primary.address}",code="2xx"} 1`,
    `veloflux_requests_total{pool="app-principal-pool",backend="${primary.address}",code="5xx"} 0`,
    'veloflux_retries_total{pool="app-principal-pool"} 0',
    'veloflux_config_reloads_total{result="invalid"} 0',
    'veloflux_notification_deliveries_total{channel="email",result="failure"} 0',
  ]) assert.ok(first.includes(line), `missing: ${line}`);
  assert.match(first, /veloflux_health_checks_total\{pool="app-principal-pool",backend="[^"]+",result="success"\} [1-9]/);
  assert.match(first, /veloflux_request_duration_seconds_bucket\{pool="app-principal-pool",level="0",le="\+Inf"\} 1/);

  await primary.kill();
  await p.waitFor((e) => e.type === 'failover_activated', 3000);
  await served(p);
  const after = await scrape();
  assert.ok(after.includes('veloflux_failover_active{pool="app-principal-pool"} 1'));
  assert.ok(after.includes('veloflux_failover_events_total{pool="app-principal-pool"} 1'));
  assert.match(after, /veloflux_failover_last_activation\{pool="app-principal-pool"\} 1\d{9}/);
  assert.match(after, /veloflux_failover_duration_seconds\{pool="app-principal-pool"\} 0\.\d+/);
  assert.ok(after.includes('veloflux_pool_active_level{pool="app-principal-pool"} 1'));
  const out = await promtool(after);
  assert.equal(out.code, 0, out.text);
});

async function promtool(text: string): Promise<{ code: number; text: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, text: `${stdout}${stderr}` });
    });
    child.stdin?.end(text);
  });
}

test('the OpenAPI document lists exactly the routes the admin server has', async (t) => {
  const { p } = await setup(t);
  const doc = (await call(p, 'GET', '/openapi.json', { token: null })).json;
  const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
  const { createAdmin } = await import('../src/admin/server.ts');
  const routes: string[] = [];
  const app = createAdmin({ controller: () => p.proxy.controller, token: () => TOKEN, applyConfig: async () => ({ ok: true, version: '', changed: false }), configView: () => ({}), configYaml: () => '', metrics: async () => ({ contentType: '', body: '' }), drill: async () => ({}) }, { onRoute: (m, url, kind) => { if (m !== 'HEAD' && kind === 'endpoint') routes.push(`${m} ${url.replace(/:(\w+)/g, '{$1}')}`); } }); // fastify's :param is OpenAPI's {param}
  await app.ready();
  await app.close();
  assert.deepEqual(routes.sort(), documented);
});
