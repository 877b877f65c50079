// Admin authorization is default-deny and decided on what the router matched: every route the admin app registers
// (enumerated from the app, so a route added later is in the table), spelled every way a client can spell it, sent as
// raw request bytes over a real socket (HTTP clients normalise paths), to a proxy with a token and one without.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createAdmin } from '../src/admin/server.ts';
import type { RouteKind } from '../src/admin/server.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

const TOKEN = 'auth-table-token-5e1b';
const CONFIG = `pools:
  - name: app
    backends: [{ address: "127.0.0.1:9", health_check: { interval: "1h", timeout: "100ms" } }]
`;

interface Route { readonly method: string; readonly url: string; readonly public: boolean; readonly kind?: RouteKind }

/**
 * Every route of the admin app, read from the app itself (fastify's onRoute hook), HEAD included, and the 405
 * answers for the methods a path does not take (behind the gate like any non-public route: e.g. DELETE /healthz).
 */
function adminRoutes(): Route[] {
  const routes: Route[] = [];
  const app = createAdmin(
    { controller: () => { throw new Error('unused'); }, token: () => undefined, applyConfig: async () => ({ ok: true, version: '', changed: false }), configView: () => ({}), configYaml: () => '', metrics: async () => ({ contentType: '', body: '' }), drill: async () => ({}) },
    { onRoute: (m, url, kind) => routes.push({ method: m, url, public: false, kind }) },
  );
  void app.close();
  return routes.map((r) => ({ ...r, public: r.kind === 'endpoint' && PUBLIC.has(r.url) }));
}
/** What SPEC 3 makes public; the test fails if the app makes anything else public. */
const PUBLIC = new Set(['/healthz', '/readyz', '/metrics', '/openapi.json']);

/** Spellings of `path` that a client may send: some route to it, some do not; none may get past the gate. */
function spellings(path: string): string[] {
  const segs = path.split('/').slice(1);
  const first = segs[0] as string;
  const last = segs[segs.length - 1] as string;
  const rest = (from: number): string => segs.slice(from).join('/');
  const enc = (c: string): string => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  const out = [
    path,
    `/${enc(first[0] as string)}${first.slice(1)}/${rest(1)}`, // %61pi
    `/${enc(first[0] as string).toUpperCase()}${first.slice(1)}/${rest(1)}`,
    `${path.slice(0, path.length - last.length)}${last.slice(0, -1)}${enc(last.slice(-1))}`, // last char encoded
    `/${segs.map((s) => s.split('').map(enc).join('')).join('/')}`, // everything encoded
    `/${first}%2F${rest(1)}`, `/${first}%2f${rest(1)}`, `/${segs.join('%2F')}`,
    `%2F${segs.join('/')}`,
    `/%25${enc(first[0] as string).slice(1)}${first.slice(1)}/${rest(1)}`, // double encoding: %2561pi
    `/./${segs.join('/')}`, `/${first}/./${rest(1)}`, `/${segs.join('/./')}`, `${path}/.`,
    `//${segs.join('/')}`, `/${first}//${rest(1)}`, `/${segs.join('//')}`, `${path}//`,
    `/x/../${segs.join('/')}`, `/${first}/x/../${rest(1)}`, `/${first}/%2e%2e/${segs.join('/')}`, `${path}/..`, `/../${segs.join('/')}`,
    path.toUpperCase(), `/${first.toUpperCase()}/${rest(1)}`, `${path.slice(0, -1)}${path.slice(-1).toUpperCase()}`,
    `${path}/`, `${path}?pool=nope&x=/`, `${path}#frag`,
    `${path};x=1`, `/${first};x=1/${rest(1)}`, `${path};`, `${path}%3Bx`,
    `${path}%00`, `${path}%20`, `${path}.`, `${path}\\`, `/${first}\\${rest(1)}`,
    `http://127.0.0.1${path}`, `http://127.0.0.1:1/${segs.join('//')}`,
  ];
  return [...new Set(out)];
}

/** What the admin API answers to a request it refuses before any route is matched. */
const PRE_ROUTING = new Set(['the URL path does not decode (a malformed percent-encoding)', 'malformed HTTP request', 'the request cannot be routed']);

interface Raw { status: number; code: string | undefined; message: string | undefined; contentType: string }

/** One raw HTTP/1.1 request on its own connection: the request line goes out byte for byte. */
function raw(port: number, method: string, target: string, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`${method} ${target}: no answer in 10s; got ${JSON.stringify(data.slice(0, 200))}`)); }, 10_000);
    const finish = (): void => {
      clearTimeout(timer);
      s.destroy();
      const [head = '', body = ''] = data.split('\r\n\r\n');
      const status = Number(head.split(' ')[1]);
      const contentType = /\r\ncontent-type: *([^\r]*)/i.exec(head)?.[1] ?? '';
      let error: { code?: string; message?: string } | undefined;
      if (contentType.startsWith('application/json')) {
        try { error = (JSON.parse(body.slice(body.indexOf('{'))) as { error?: { code?: string; message?: string } }).error; } catch { error = undefined; }
      }
      resolve({ status, code: error?.code, message: error?.message, contentType });
    };
    s.on('data', (c: Buffer) => {
      data += c.toString('latin1');
      // An event stream never ends: its head is enough.
      if (/\r\ncontent-type: text\/event-stream/i.test(data) && data.includes('\r\n\r\n')) finish();
    });
    s.on('end', finish);
    s.on('error', (err) => { clearTimeout(timer); reject(err); });
    const h = Object.entries({ host: '127.0.0.1', connection: 'close', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    s.write(`${method} ${target} HTTP/1.1\r\n${h}\r\n`);
  });
}

async function withToken(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'veloflux-auth-'));
  await writeFile(join(dir, 'token'), TOKEN);
  return join(dir, 'token');
}

test('the routes the admin app registers: exactly the SPEC 3 set is public', () => {
  const routes = adminRoutes();
  assert.ok(routes.length >= 10, 'routes were enumerated');
  assert.ok(routes.some((r) => r.kind === 'method-not-allowed' && r.method === 'DELETE' && r.url === '/healthz'), 'the 405 answers are in the table');
  assert.deepEqual([...new Set(routes.filter((r) => r.public).map((r) => r.url))].sort(), [...PUBLIC].sort());
});

test('every route, every spelling, raw bytes: no token configured, no token, wrong token -> 401 unless the router matched a public route', async (t) => {
  const p = await startTestProxy(CONFIG, {}, { tokenFile: await withToken() });
  const open = await startTestProxy(CONFIG);
  t.after(async () => { await p.stop(); await open.stop(); });
  const port = (x: TestProxy): number => x.proxy.admin.port;
  const versions = [p.proxy.controller.version, open.proxy.controller.version];
  let checked = 0;
  for (const r of adminRoutes()) {
    // What the canonical path answers with the token: the reference for "the router matched this route".
    for (const target of spellings(r.url)) {
      // POSTs name a pool that does not exist, so even a request that got through would change nothing.
      const path = r.method !== 'POST' || target.includes('?') || target.includes('#') ? target : `${target}?pool=nope`;
      const authed = await raw(port(p), r.method, path, { authorization: `Bearer ${TOKEN}` });
      // A HEAD answer has no body to carry a code: there, 404 is "not matched".
      const head = r.method === 'HEAD';
      const routedTo = (head ? authed.status === 404 : authed.code === 'VF_ERR_NOT_FOUND') ? undefined : r;
      const cases: [TestProxy, Record<string, string>, string][] = [
        [open, {}, 'VF_ERR_ADMIN_TOKEN_UNSET'],
        [open, { authorization: `Bearer ${TOKEN}` }, 'VF_ERR_ADMIN_TOKEN_UNSET'],
        [p, {}, 'VF_ERR_UNAUTHORIZED'],
        [p, { authorization: 'Bearer wrong' }, 'VF_ERR_UNAUTHORIZED'],
        [p, { authorization: `bearer ${TOKEN}x` }, 'VF_ERR_UNAUTHORIZED'],
      ];
      for (const [proxy, headers, refusal] of cases) {
        const got = await raw(port(proxy), r.method, path, headers);
        const what = `${r.method} ${path} (${proxy === open ? 'no token configured' : 'token configured'}, ${headers.authorization ?? 'no authorization'}) -> ${got.status} ${got.code}; with the token: ${authed.status} ${authed.code}`;
        if (routedTo?.public) {
          assert.notEqual(got.status, 401, `${what}: a public route needs no token`);
          assert.equal(got.status, authed.status, what);
        } else if (got.status === 400 && (head || PRE_ROUTING.has(got.message ?? ''))) {
          // A request target that is not a path, or does not decode, is refused before any route is matched: the
          // same answer with or without a token, in the documented error shape, and it reveals no route.
          assert.deepEqual([got.status, got.code, got.message], [authed.status, authed.code, authed.message], what);
          if (!head) assert.ok(got.code === 'VF_ERR_BAD_PARAMETER' || got.code === 'VF_ERR_BAD_REQUEST', what);
        } else {
          assert.deepEqual([got.status, got.code], [401, head ? undefined : refusal], what);
        }
        checked++;
      }
    }
  }
  assert.ok(checked > 500, `${checked} requests checked`);
  // Nothing got through: no pool was moved, no config replaced.
  for (const [i, x] of [p, open].entries()) {
    assert.equal(x.proxy.controller.version, versions[i]);
    assert.equal(x.proxy.controller.status()[0]?.mode, 'auto');
    assert.ok(!x.events.some((e) => e.type === 'mode_changed' || e.type === 'config_applied'));
  }
  assert.ok(!p.logs.some((l) => l.includes(TOKEN)));
});

test('the issue\'s walk-arounds: %61pi and v%31 do not reach a protected route without the token', async (t) => {
  const p = await startTestProxy(CONFIG, {}, { tokenFile: await withToken() });
  const open = await startTestProxy(CONFIG);
  t.after(async () => { await p.stop(); await open.stop(); });
  for (const [x, code] of [[p, 'VF_ERR_UNAUTHORIZED'], [open, 'VF_ERR_ADMIN_TOKEN_UNSET']] as const) {
    for (const [m, target] of [['POST', '/%61pi/v1/failover/activate?pool=app'], ['PUT', '/%61pi/v1/config'], ['GET', '/api/v%31/config'], ['GET', '/api/v%31/failover/status'], ['GET', '/nothing/here']]) {
      assert.deepEqual(await raw(x.proxy.admin.port, m as string, target as string).then((r) => [r.status, r.code]), [401, code], `${m} ${target}`);
    }
    assert.equal(x.proxy.controller.status()[0]?.mode, 'auto');
  }
  // With the token, the decoded spelling is the same route (the router decodes %61), and unmatched paths are 404.
  const ok = await raw(p.proxy.admin.port, 'GET', '/api/v%31/failover/status', { authorization: `Bearer ${TOKEN}` });
  assert.equal(ok.status, 200);
  const nf = await raw(p.proxy.admin.port, 'GET', '/nothing/here', { authorization: `Bearer ${TOKEN}` });
  assert.deepEqual([nf.status, nf.code], [404, 'VF_ERR_NOT_FOUND']);
});

test('what fastify and node answer themselves is in the documented {error:{code,message}} shape', async (t) => {
  const p = await startTestProxy(CONFIG, {}, { tokenFile: await withToken() });
  t.after(() => p.stop());
  const port = p.proxy.admin.port;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const big = await raw(port, 'GET', '/healthz', { 'x-big': 'a'.repeat(20_000) });
  assert.deepEqual([big.status, big.code, big.contentType], [431, 'VF_ERR_HEADERS_TOO_LARGE', 'application/json']);
  const bad = await new Promise<Raw>((resolve, reject) => {
    // Not HTTP at all: a header line without a colon.
    const s = connect(port, '127.0.0.1');
    let d = '';
    s.on('data', (c: Buffer) => { d += c.toString(); });
    s.on('end', () => { const body = d.split('\r\n\r\n')[1] ?? ''; const e = (JSON.parse(body) as { error: { code: string; message: string } }).error; resolve({ status: Number(d.split(' ')[1]), code: e.code, message: e.message, contentType: '' }); });
    s.on('error', reject);
    s.write('GET /healthz HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n');
  });
  assert.deepEqual([bad.status, bad.code, bad.message], [400, 'VF_ERR_BAD_REQUEST', 'malformed HTTP request']);
  const url = await raw(port, 'GET', '/api/v1/%zz', auth);
  assert.deepEqual([url.status, url.code, url.message], [400, 'VF_ERR_BAD_PARAMETER', 'the URL path does not decode (a malformed percent-encoding)']);
  const nf = await raw(port, 'GET', '/api/v1/nope', auth);
  assert.deepEqual([nf.status, nf.code], [404, 'VF_ERR_NOT_FOUND']);
  // 413: a body over the limit, announced by its length; refused before it is read.
  const tooBig = await raw(port, 'PUT', '/api/v1/config', { ...auth, 'content-type': 'application/yaml', 'content-length': String(5 * 1024 * 1024) });
  assert.deepEqual([tooBig.status, tooBig.code, tooBig.message], [413, 'VF_ERR_BODY_TOO_LARGE', 'the request body is larger than 4 MiB']);
  const type = await raw(port, 'PUT', '/api/v1/config', { ...auth, 'content-type': 'image/png', 'content-length': '0' });
  assert.deepEqual([type.status, type.code], [400, 'VF_ERR_BAD_PARAMETER']);
  // Without the token, the same oversized PUT is refused by the gate first.
  const anon = await raw(port, 'PUT', '/api/v1/config', { 'content-type': 'application/yaml', 'content-length': String(5 * 1024 * 1024) });
  assert.deepEqual([anon.status, anon.code], [401, 'VF_ERR_UNAUTHORIZED']);
});
