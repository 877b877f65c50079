// The admin API's answers as a terminal and a script read them: JSON ends with a newline, `?pretty` indents it, a
// wrong method on an existing path is 405 with `Allow` (behind the gate: without the token it is the same 401 as
// any unknown path), and GET /api/v1/config?format=yaml is the config.yaml the proxy takes back (get, edit, put).
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { request } from 'undici';
import { parse } from 'yaml';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

const TOKEN = 'format-test-token-8c2e';
const SECRETS = ['smtp-pw-format-31', 'hooks-path-format-77', 'hmac-format-55'];
const CONFIG = `pools:
  - name: app
    backends: [{ address: "127.0.0.1:9", health_check: { interval: "1h", timeout: "100ms" } }]
routes: [{ pool: app }]
failover:
  recovery_interval: "7s"
  notification:
    channels:
      - { type: log, level: warning }
      - { type: email, smtp_server: "127.0.0.1", smtp_port: 9, smtp_user: "u@example.com", smtp_password: "${SECRETS[0]}", recipients: ["ops@example.com"] }
      - { type: webhook, url: "http://127.0.0.1:9/${SECRETS[1]}", format: slack, secret: "${SECRETS[2]}" }
`;

async function start(t: { after: (fn: () => Promise<void>) => void }, withToken = true): Promise<TestProxy> {
  const dir = await mkdtemp(join(tmpdir(), 'veloflux-format-'));
  await writeFile(join(dir, 'token'), TOKEN);
  const p = await startTestProxy(CONFIG, {}, withToken ? { tokenFile: join(dir, 'token') } : {});
  t.after(() => p.stop());
  return p;
}

async function call(p: TestProxy, method: string, path: string, opts: { token?: string | null; body?: string; type?: string } = {}): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await request(`${p.adminUrl}${path}`, {
    method: method as 'GET',
    headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(opts.body !== undefined ? { 'content-type': opts.type ?? 'application/yaml' } : {}) },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

test('JSON answers end with a newline; ?pretty indents them (errors too); text answers are left alone', async (t) => {
  const p = await start(t);
  const plain = await call(p, 'GET', '/api/v1/failover/status');
  assert.equal(plain.status, 200);
  assert.ok(plain.text.endsWith('}\n'), JSON.stringify(plain.text.slice(-20)));
  assert.equal(plain.text.split('\n').length, 2, 'one line and the newline');
  const pretty = await call(p, 'GET', '/api/v1/failover/status?pretty');
  assert.equal(pretty.text, `${JSON.stringify(JSON.parse(plain.text), null, 2)}\n`);
  assert.ok(pretty.text.startsWith('{\n  "version": '));
  for (const [path, token] of [['/api/v1/failover/status?pretty=1', 'wrong'], ['/api/v1/nothing?pretty', TOKEN], ['/healthz?pretty=yes', null]] as const) {
    const r = await call(p, 'GET', path, { token });
    assert.match(r.text, /^\{\n {2}"/, `${path}: ${r.text}`);
    assert.ok(r.text.endsWith('}\n'));
  }
  assert.equal((await call(p, 'GET', '/healthz?pretty=false')).text, '{"status":"ok"}\n');
  const errored = await call(p, 'GET', '/api/v1/failover/status?pool=nope');
  assert.equal(errored.text, `${JSON.stringify({ error: { code: 'VF_ERR_UNKNOWN_POOL', message: 'unknown pool "nope" (pools: "app")' } })}\n`);
  const metrics = await call(p, 'GET', '/metrics?pretty');
  assert.match(String(metrics.headers['content-type']), /^text\/plain/);
  assert.doesNotMatch(metrics.text, /^\{/);
});

test('a wrong method on an existing path: 405 with Allow and the JSON error, only behind the token', async (t) => {
  const p = await start(t);
  const open = await start(t, false);
  const rows: [string, string, string][] = [
    ['DELETE', '/api/v1/config', 'GET, HEAD, PUT'],
    ['POST', '/api/v1/config', 'GET, HEAD, PUT'],
    ['GET', '/api/v1/failover/activate?pool=app', 'POST'],
    ['PUT', '/api/v1/failover/test?pool=app', 'POST'],
    ['PATCH', '/api/v1/failover/status', 'GET, HEAD'],
    ['POST', '/api/v1/events', 'GET'], // the event stream has no HEAD
    ['POST', '/healthz', 'GET, HEAD'],
    ['DELETE', '/metrics', 'GET, HEAD'],
    ['OPTIONS', '/api/v1/config', 'GET, HEAD, PUT'],
    ['GET', '/api/v1/failover/%61ctivate', 'POST'], // the router decodes: the same path
  ];
  for (const [method, path, allow] of rows) {
    const r = await call(p, method, path);
    const [base] = path.split('?');
    assert.equal(r.status, 405, `${method} ${path}: ${r.text}`);
    assert.equal(r.headers.allow, allow, `${method} ${path}`);
    assert.deepEqual(JSON.parse(r.text), { error: { code: 'VF_ERR_METHOD_NOT_ALLOWED', message: `${method} is not allowed on ${decodeURIComponent(base as string)}; allowed: ${allow}` } });
    // Without the token (or with none configured) a wrong method is the 401 an unknown path gets: the methods of a
    // path, and which paths exist, are not revealed.
    for (const [x, token, code] of [[p, null, 'VF_ERR_UNAUTHORIZED'], [p, 'wrong', 'VF_ERR_UNAUTHORIZED'], [open, TOKEN, 'VF_ERR_ADMIN_TOKEN_UNSET']] as const) {
      const refused = await call(x, method, path, { token });
      assert.equal(refused.status, 401, `${method} ${path} token ${token}`);
      assert.equal(refused.headers.allow, undefined);
      assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, code);
    }
    const unknown = await call(p, method, '/api/v1/no-such-path', { token: null });
    assert.equal(unknown.status, 401);
  }
  // A HEAD to a POST-only path: 405 and no body.
  const head = await call(p, 'HEAD', '/api/v1/failover/activate?pool=app');
  assert.deepEqual([head.status, head.headers.allow, head.text], [405, 'POST', '']);
  // Unknown paths stay 404 with the token; the trailing-slash spelling is another path.
  assert.equal((await call(p, 'DELETE', '/api/v1/config/')).status, 404);
  assert.equal(p.proxy.controller.status()[0]?.mode, 'auto', 'nothing moved');
});

test('GET /api/v1/config?format=yaml: the config.yaml the proxy accepts, secrets redacted; PUT it back unchanged, or edited', async (t) => {
  const p = await start(t);
  const got = await call(p, 'GET', '/api/v1/config?format=yaml');
  assert.equal(got.status, 200);
  assert.match(String(got.headers['content-type']), /^application\/yaml/);
  for (const s of SECRETS) assert.ok(!got.text.includes(s), `secret ${s} in the yaml`);
  const doc = parse(got.text) as { failover: { notification: { channels: Record<string, unknown>[] } }; pools: { failover: { recovery_interval: string } }[] };
  const channels = doc.failover.notification.channels;
  assert.deepEqual([channels[1]?.smtp_password, channels[2]?.url, channels[2]?.secret, channels[1]?.smtp_user], ['<redacted>', '<redacted>', '<redacted>', 'u@example.com']);
  assert.equal(doc.pools[0]?.failover.recovery_interval, '7s');
  const version = p.proxy.controller.version;
  assert.match(got.text, new RegExp(`^# veloflux-proxy config, version ${version}`));

  // As it is: the same config (the placeholders keep the running secrets), so nothing changes.
  const same = await call(p, 'PUT', '/api/v1/config', { body: got.text });
  assert.equal(same.status, 200, same.text);
  assert.deepEqual(JSON.parse(same.text), { version, changed: false });

  // Edited: the edit applies, the secrets are the running ones (not the placeholder).
  const edited = await call(p, 'PUT', '/api/v1/config', { body: got.text.replace('recovery_interval: 7s', 'recovery_interval: 9s') });
  assert.equal(edited.status, 200, edited.text);
  assert.equal((JSON.parse(edited.text) as { changed: boolean }).changed, true);
  const running = p.proxy.controller.config;
  assert.equal(running.pools[0]?.policy.recoveryIntervalMs, 9000);
  const [, email, hook] = running.notification.channels as unknown as Record<string, unknown>[];
  assert.deepEqual([email?.smtp_password, hook?.url, hook?.secret], [SECRETS[0], `http://127.0.0.1:9/${SECRETS[1]}`, SECRETS[2]]);

  // JSON of the same document is accepted too.
  const asJson = await call(p, 'PUT', '/api/v1/config', { body: JSON.stringify(parse(got.text)), type: 'application/json' });
  assert.equal(asJson.status, 200, asJson.text);
});

test('a "<redacted>" with nothing to keep is a problem naming the field, never applied as a secret', async (t) => {
  const p = await start(t);
  const got = (await call(p, 'GET', '/api/v1/config?format=yaml')).text;
  const doc = parse(got) as { failover: { notification: { channels: Record<string, unknown>[] } } };
  const [log, email, hook] = doc.failover.notification.channels as [Record<string, unknown>, Record<string, unknown>, Record<string, unknown>];
  const version = p.proxy.controller.version;
  const cases: [string, Record<string, unknown>[], string[]][] = [
    ['swapped channels', [log, hook, email], ['failover.notification.channels[1].url', 'failover.notification.channels[1].secret', 'failover.notification.channels[2].smtp_password']],
    ['a new channel', [log, email, hook, { type: 'webhook', url: '<redacted>', format: 'generic' }], ['failover.notification.channels[3].url']],
  ];
  for (const [what, channels, paths] of cases) {
    doc.failover.notification.channels = channels;
    const r = await call(p, 'PUT', '/api/v1/config', { body: JSON.stringify(doc), type: 'application/json' });
    assert.equal(r.status, 400, what);
    const e = (JSON.parse(r.text) as { error: { code: string; issues: { path: string; message: string }[] } }).error;
    assert.equal(e.code, 'VF_ERR_CONFIG_INVALID');
    assert.deepEqual(e.issues.map((i) => i.path), paths, what);
    assert.match(e.issues[0]?.message ?? '', /is "<redacted>", which keeps the running value, but the running config has no \w+ channel with a \w+ at position \d; write the value itself/);
    for (const s of SECRETS) assert.ok(!r.text.includes(s));
  }
  assert.equal(p.proxy.controller.version, version, 'nothing applied');
  for (const [q, msg] of [['format=xml', 'query parameter "format" must be "json" or "yaml", got "xml"'], ['format=yaml&format=json', 'query parameter "format" must be "json" or "yaml", got more than one value']]) {
    const r = await call(p, 'GET', `/api/v1/config?${q}`);
    assert.deepEqual([r.status, (JSON.parse(r.text) as { error: { message: string } }).error.message], [400, msg]);
  }
  const def = await call(p, 'GET', '/api/v1/config?format=json');
  assert.equal((JSON.parse(def.text) as { version: string }).version, version);
});
