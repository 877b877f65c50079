// Hostile clients and misbehaving backends against the data plane, over real sockets with raw bytes (SPEC 2: only
// a backend's own faults count). Every client-side attack must leave the backend up, the pool on level 0, and the
// proxy serving; every backend fault must be named as what it is.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createTcpServer, connect } from 'node:net';
import type { AddressInfo, Server as TcpServer, Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { ClientGone, faultOf } from '../src/dataplane/fault.ts';
import { TestBackend } from './helpers/backend.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

function pool(primary: string, backup: string, extra = ''): string {
  const hc = 'health_check: { interval: "200ms", timeout: "150ms", unhealthy_threshold: 2 }';
  return `pools:
  - name: app
    backends:
      - { address: "${primary}", ${hc} }
      - { address: "${backup}", failover_level: 1, ${hc} }
routes:
  - pool: app
failover: { recovery_interval: "1s" }
${extra}`;
}

async function setup(t: { after: (fn: () => Promise<void> | void) => void }, extra = ''): Promise<{ p: TestProxy; primary: TestBackend; backup: TestBackend; port: number }> {
  const primary = await TestBackend.start('primary');
  const backup = await TestBackend.start('backup');
  const p = await startTestProxy(pool(primary.address, backup.address, extra));
  t.after(async () => { await p.stop(); await primary.kill(); await backup.kill(); });
  await p.waitReady();
  return { p, primary, backup, port: p.proxy.data.port };
}

/** A raw connection: write `bytes`, collect what comes back until the proxy closes or `ms` pass. */
async function raw(port: number, bytes: string | Buffer, opts: { ms?: number; destroyAfterMs?: number; reset?: boolean } = {}): Promise<string> {
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  s.write(bytes);
  let got = '';
  s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  const closed = once(s, 'close');
  if (opts.destroyAfterMs !== undefined) {
    await sleep(opts.destroyAfterMs);
    if (opts.reset) s.resetAndDestroy(); else s.destroy();
    await closed;
    return got;
  }
  await Promise.race([closed, sleep(opts.ms ?? 3000)]);
  s.destroy();
  return got;
}

/** Nothing a client did moved the pool or touched a backend's health. */
function assertUntouched(p: TestProxy, what: string): void {
  const bad = p.events.filter((e) => e.type === 'backend_down' || e.type === 'failover_activated' || e.type === 'level_changed');
  assert.deepEqual(bad.map((e) => e.type), [], `${what}: ${JSON.stringify(bad)}`);
}

async function status(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const res = await request(url, { headers });
  return { status: res.statusCode, body: await res.body.text() };
}

test('fault table: whose fault each failure is, and what it is answered and counted as', () => {
  const e = (code: string, message = 'x'): Error & { code: string } => Object.assign(new Error(message), { code });
  const rows: [string, Error & { code?: string }, boolean, string, number][] = [
    // name, error, client gone, side, status counted
    ['client closed (our abort)', new ClientGone(), false, 'client', 499],
    ['socket error after the client left', e('UND_ERR_SOCKET'), true, 'client', 499],
    ['reset after the client left', e('ECONNRESET'), true, 'client', 499],
    ['request body aborted', e('UND_ERR_ABORTED'), false, 'client', 499],
    ['header timeout after the client left', e('UND_ERR_HEADERS_TIMEOUT'), true, 'client', 499],
    ['invalid request header', e('UND_ERR_INVALID_ARG'), false, 'request', 400],
    ['request content-length mismatch', e('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH'), false, 'request', 400],
    ['connect refused', e('ECONNREFUSED'), false, 'backend', 502],
    ['connect timeout', e('UND_ERR_CONNECT_TIMEOUT'), false, 'backend', 504],
    ['header timeout', e('UND_ERR_HEADERS_TIMEOUT'), false, 'backend', 504],
    ['body timeout', e('UND_ERR_BODY_TIMEOUT'), false, 'backend', 504],
    ['reset', e('ECONNRESET'), false, 'backend', 502],
    ['other side closed', e('UND_ERR_SOCKET', 'other side closed'), false, 'backend', 502],
    ['invalid status line', e('HPE_INVALID_CONSTANT'), false, 'backend', 502],
    ['double content-length', e('HPE_UNEXPECTED_CONTENT_LENGTH'), false, 'backend', 502],
    ['bad response', e('UND_ERR_SOCKET', 'bad response'), false, 'backend', 502],
    ['undici parser error (no code)', Object.assign(new Error('Response does not match the HTTP/1.1 protocol'), { name: 'HTTPParserError' }), false, 'backend', 502],
    ['response length mismatch', e('UND_ERR_RES_CONTENT_LENGTH_MISMATCH'), false, 'backend', 502],
  ];
  for (const [name, err, gone, side, st] of rows) {
    const f = faultOf(err, gone);
    assert.equal(f.side, side, `${name}: side`);
    assert.equal(f.status, st, `${name}: status`);
  }
  assert.equal(faultOf(Object.assign(new Error('x'), { code: 'HPE_INVALID_CONSTANT' }), false).error.code, 'VF_ERR_UPSTREAM_PROTOCOL');
});

test('clients that hang up before a slow answer, abandon uploads or send malformed chunks never fail a backend over', async (t) => {
  const { p, primary, port } = await setup(t);
  primary.handler = (req, res) => {
    if (req.url === '/slow') { setTimeout(() => { if (!res.destroyed) res.end('late'); }, 800); return true; }
    return false;
  };
  // Two clients that hang up before a slow answer (one closes, one resets).
  await raw(port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\n', { destroyAfterMs: 150 });
  await raw(port, 'GET /slow HTTP/1.1\r\nHost: a\r\n\r\n', { destroyAfterMs: 150, reset: true });
  // Three abandoned uploads: a streamed POST, a replayable PUT, a chunked POST; each stops half way and leaves.
  await raw(port, 'POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nhalf', { destroyAfterMs: 150 });
  await raw(port, 'PUT /up HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nhalf', { destroyAfterMs: 150, reset: true });
  await raw(port, 'POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n', { destroyAfterMs: 150 });
  // Two requests with malformed chunk sizes.
  const bad1 = await raw(port, 'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n', { ms: 1500 });
  const bad2 = await raw(port, 'POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n-1\r\n\r\n', { ms: 1500 });
  assert.ok(!bad1.startsWith('HTTP/1.1 2') && !bad2.startsWith('HTTP/1.1 2'), `malformed chunks are not served as fine: ${bad1.slice(0, 40)} / ${bad2.slice(0, 40)}`);
  // Give the passive signals (if any) and a probe round time to land.
  await sleep(1000);
  assertUntouched(p, 'after client hang-ups, abandoned uploads and malformed chunks');
  assert.equal((await status(`${p.url}/`)).body, 'primary');
});

test('Upgrade: h2c is served as plain HTTP/1.1 (curl --http2 against a cleartext port)', async (t) => {
  const { p, primary, port } = await setup(t);
  for (let i = 0; i < 3; i++) {
    const got = await raw(port, 'GET /h2c HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', { ms: 1500 });
    assert.match(got, /^HTTP\/1\.1 200 /, `h2c request ${i} served: ${got.slice(0, 80)}`);
    assert.match(got, /primary$/);
  }
  const seen = primary.seen.filter((s) => s.url === '/h2c');
  assert.equal(seen.length, 3);
  for (const s of seen) assert.equal(s.headers.upgrade, undefined, 'the backend gets no upgrade offer');
  await sleep(500);
  assertUntouched(p, 'after three h2c offers');
});

test('upgrades: a client that resets before the 101 crashes nothing; a non-101 answer is relayed; a 101 tunnels', async (t) => {
  const { p, primary, port } = await setup(t);
  // A backend that upgrades after a while, refuses some upgrades with 426, and echoes on the tunnel.
  const upstream: TcpServer = createTcpServer((s: Socket) => {
    s.on('error', () => {});
    let head = '';
    s.on('data', (d: Buffer) => {
      if (head.includes('\r\n\r\n')) { s.write(d); return; } // tunnel: echo
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      if (head.startsWith('GET /health')) { s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'); return; }
      if (head.startsWith('GET /refuse')) { s.end('HTTP/1.1 426 Upgrade Required\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope'); return; }
      const delay = head.startsWith('GET /late') ? 1000 : 0;
      setTimeout(() => { if (!s.destroyed) s.write('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n'); }, delay);
    });
  });
  upstream.listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  t.after(() => { upstream.close(); });
  const up = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const ws = await startTestProxy(pool(up, primary.address));
  t.after(() => ws.stop());
  await ws.waitReady();
  const wsPort = ws.proxy.data.port;
  const upgrade = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

  for (let i = 0; i < 3; i++) await raw(wsPort, upgrade('/late'), { destroyAfterMs: 200, reset: true });
  const refused = await raw(wsPort, upgrade('/refuse'), { ms: 2000 });
  assert.match(refused, /^HTTP\/1\.1 426 /, 'the backend\'s own answer is relayed');
  assert.match(refused, /nope$/);

  const s = connect(wsPort, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  s.write(upgrade('/ok'));
  let got = '';
  s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
  for (let i = 0; i < 50 && !got.includes('\r\n\r\n'); i++) await sleep(50);
  assert.match(got, /^HTTP\/1\.1 101 /);
  s.write('ping');
  for (let i = 0; i < 50 && !got.endsWith('ping'); i++) await sleep(50);
  assert.ok(got.endsWith('ping'), 'the tunnel carries data both ways');
  s.destroy();

  await sleep(500);
  assertUntouched(ws, 'after upgrade resets and a refused upgrade');
  assert.equal((await status(`${ws.url}/`)).status, 200, 'the proxy still serves');
  assertUntouched(p, 'the other proxy');
});

test('client_header_timeout closes silent and slow-header connections; keepalive and upload idle stay configurable', async (t) => {
  const { p, port } = await setup(t, 'dataplane: { client_header_timeout: "400ms" }\n');
  const t0 = Date.now();
  const silent = raw(port, '', { ms: 5000 });
  // One header byte every 100 ms: never finishes within 400 ms.
  const s = connect(port, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  const head = 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n';
  let slowGot = '';
  s.on('data', (d: Buffer) => { slowGot += d.toString(); });
  const slowClosed = once(s, 'close');
  for (let i = 0; i < head.length && !s.destroyed; i++) { s.write(head[i] as string); await sleep(100); }
  await slowClosed;
  await silent;
  assert.ok(Date.now() - t0 < 4500, 'both connections were closed by the proxy, not by the test');
  assert.match(slowGot, /^HTTP\/1\.1 408 /, 'the slow sender is told why');
  assertUntouched(p, 'after slow clients');
});

test('RFC 9112: absolute-form is routed by its authority; two Host headers are a 400; an unknown method a 501', async (t) => {
  const primary = await TestBackend.start('primary');
  const other = await TestBackend.start('other');
  const hc = 'health_check: { interval: "200ms", timeout: "150ms" }';
  const p = await startTestProxy(`pools:
  - name: app
    backends: [{ address: "${primary.address}", ${hc} }]
  - name: other
    backends: [{ address: "${other.address}", ${hc} }]
routes:
  - { host: "app.test", pool: app }
  - { pool: other }
`);
  t.after(async () => { await p.stop(); await primary.kill(); await other.kill(); });
  await p.waitReady();
  const port = p.proxy.data.port;
  const abs = await raw(port, 'GET http://app.test/x?y=1 HTTP/1.1\r\nHost: elsewhere\r\nConnection: close\r\n\r\n');
  assert.match(abs, /^HTTP\/1\.1 200 /);
  assert.match(abs, /primary$/);
  const seen = primary.seen.at(-1);
  assert.equal(seen?.url, '/x?y=1', 'the backend gets origin-form');
  assert.equal(seen?.headers.host, 'app.test', 'and the authority as Host');
  const two = await raw(port, 'GET / HTTP/1.1\r\nHost: app.test\r\nHost: evil.test\r\nConnection: close\r\n\r\n');
  assert.match(two, /^HTTP\/1\.1 400 /);
  assert.match(two, /more than one Host/);
  const foo = await raw(port, 'FOO / HTTP/1.1\r\nHost: app.test\r\n\r\n');
  assert.match(foo, /^HTTP\/1\.1 (501|400) /, `unknown method: ${foo.slice(0, 40)}`);
  assertUntouched(p, 'after protocol oddities');
});

test('invalid HTTP from a backend is VF_ERR_UPSTREAM_PROTOCOL, and counts against that backend', async (t) => {
  const answers = new Map<string, string>([
    ['/status', 'HTTP/1.1 2x0 Nope\r\n\r\n'],
    ['/header', 'HTTP/1.1 200 OK\r\nBad Header\r\ncontent-length: 2\r\n\r\nok'],
    ['/cl', 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 5\r\n\r\nok'],
  ]);
  const bad: TcpServer = createTcpServer((s: Socket) => {
    s.on('error', () => {});
    let head = '';
    s.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = head.split(' ')[1] ?? '';
      if (path === '/health') { s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok'); return; }
      s.end(answers.get(path) ?? 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n');
    });
  });
  bad.listen(0, '127.0.0.1');
  await once(bad, 'listening');
  t.after(() => { bad.close(); });
  const p = await startTestProxy(`pools:
  - name: app
    backends: [{ address: "127.0.0.1:${(bad.address() as AddressInfo).port}", health_check: { interval: "10s", timeout: "1s", unhealthy_threshold: 3 } }]
routes: [{ pool: app }]
dataplane: { max_attempts: 1 }
`);
  t.after(() => p.stop());
  await p.waitReady();
  for (const path of answers.keys()) {
    const res = await request(`${p.url}${path}`, { method: 'POST', body: 'x' });
    const body = await res.body.text();
    assert.equal(res.statusCode, 502, `${path}: ${body}`);
    assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'VF_ERR_UPSTREAM_PROTOCOL', path);
  }
  await p.waitFor((e) => e.type === 'backend_down' && e.by === 'passive', 5000, 'the backend marked down by what it sent');
});
