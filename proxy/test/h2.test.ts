// HTTP/2 on the cleartext listener (SPEC 8), with real clients: curl (--http2-prior-knowledge, --http2), node's
// http2 client, raw frames for the abuse cases. HTTP/1.1 and WebSocket on the same port keep working.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as h2connect, constants as h2c } from 'node:http2';
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { TestBackend, startBackends } from './helpers/backend.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

const run = promisify(execFile);

function poolYaml(backends: { b: TestBackend | string; level?: number }[], extra = ''): string {
  const lines = backends.map(({ b, level }) =>
    `      - address: "${typeof b === 'string' ? b : b.address}"\n        failover_level: ${level ?? 0}\n        health_check: { interval: "30s", timeout: "1s" }\n`).join('');
  return `pools:\n  - name: app\n    backends:\n${lines}routes:\n  - pool: app\n${extra}`;
}

interface Observed { passive: string[]; done: number[] }

async function setup(t: { after: (fn: () => Promise<void> | void) => void }, yaml: string, backends: TestBackend[]): Promise<TestProxy & Observed> {
  const passive: string[] = [];
  const done: number[] = [];
  const p = await startTestProxy(yaml, { hooks: { passive: (target, error) => passive.push(`${target.backend.id} ${error}`), done: (_pool, _t, status) => done.push(status) } });
  t.after(async () => {
    await p.stop();
    await Promise.all(backends.map((b) => b.kill()));
  });
  await p.waitReady();
  return Object.assign(p, { passive, done });
}

function session(p: TestProxy, t: { after: (fn: () => void) => void }): ClientHttp2Session {
  const s = h2connect(p.url);
  s.on('error', () => {});
  t.after(() => s.destroy());
  return s;
}

interface H2Answer { headers: IncomingHttpHeaders; body: string; trailers: IncomingHttpHeaders | undefined; endedWithHeaders: boolean }

function h2get(s: ClientHttp2Session, headers: Record<string, string>, body?: string): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const req = s.request(headers, { endStream: body === undefined });
    let resHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    let endedWithHeaders = false;
    const chunks: Buffer[] = [];
    req.on('response', (h, flags) => { resHeaders = h; endedWithHeaders = (flags & h2c.NGHTTP2_FLAG_END_STREAM) !== 0; });
    req.on('trailers', (h) => { trailers = h; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers: resHeaders, body: Buffer.concat(chunks).toString(), trailers, endedWithHeaders }));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
  });
}

async function curl(...args: string[]): Promise<string> {
  return (await run('curl', ['-sS', '--max-time', '10', ...args])).stdout;
}

test('curl --http2-prior-knowledge and --http2 (served as HTTP/1.1), plain HTTP/1.1: all on one port', async (t) => {
  const [b] = await startBackends('primary') as [TestBackend];
  const p = await setup(t, poolYaml([{ b }]), [b]);
  assert.equal(await curl('--http2-prior-knowledge', '-w', ' %{http_version}', `${p.url}/a?x=1`), 'primary 2');
  // Upgrade: h2c is ignored: the answer is HTTP/1.1 and the backend gets no upgrade offer.
  assert.equal(await curl('--http2', '-w', ' %{http_version}', `${p.url}/b`), 'primary 1.1');
  assert.equal(await curl('--http1.1', '-w', ' %{http_version}', `${p.url}/c`), 'primary 1.1');
  const [h2seen, upgradeSeen] = [b.seen[0], b.seen[1]];
  assert.equal(h2seen?.url, '/a?x=1');
  assert.equal(h2seen?.headers.host, `127.0.0.1:${p.proxy.data.port}`, ':authority becomes Host');
  assert.equal(h2seen?.headers['x-forwarded-proto'], 'http');
  assert.ok(Object.keys(h2seen?.headers ?? {}).every((k) => !k.startsWith(':')), 'no pseudo-header reaches the backend');
  assert.equal(upgradeSeen?.headers.upgrade, undefined);
  assert.equal(upgradeSeen?.headers['http2-settings'], undefined);
});

test('node http2 client: concurrent streams on one session, bodies with and without content-length, cookies joined', async (t) => {
  const [b] = await startBackends('primary') as [TestBackend];
  b.handler = (req, res, body) => { res.setHeader('set-cookie', ['a=1', 'b=2']); res.end(`${req.method} ${req.url} ${body} ${req.headers.cookie ?? ''}`); return true; };
  const p = await setup(t, poolYaml([{ b }]), [b]);
  const s = session(p, t);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => h2get(s, { ':path': `/n/${i}` })));
  answers.forEach((a, i) => { assert.equal(a.headers[':status'], 200); assert.equal(a.body, `GET /n/${i}  `); });
  assert.deepEqual(answers[0]?.headers['set-cookie'], ['a=1', 'b=2']);
  const withLength = await h2get(s, { ':method': 'POST', ':path': '/post', 'content-length': '5' }, 'hello');
  assert.equal(withLength.body, 'POST /post hello ');
  const streamed = await h2get(s, { ':method': 'POST', ':path': '/post' }, 'streamed body');
  assert.equal(streamed.body, 'POST /post streamed body ');
  const cookies = await h2get(s, { ':path': '/c', cookie: 'x=1' });
  assert.equal(cookies.body, 'GET /c  x=1');
  // RFC 9113 8.2.3: split cookie fields are one Cookie line for an HTTP/1.1 backend.
  const req = s.request([':path', '/c2', 'cookie', 'x=1', 'cookie', 'y=2'] as unknown as Record<string, string>);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  await once(req, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'GET /c2  x=1; y=2');
});

test('response trailers are carried to HTTP/2 and HTTP/1.1 clients', async (t) => {
  const [b] = await startBackends('primary') as [TestBackend];
  b.handler = (_req, res) => { res.setHeader('trailer', 'grpc-status'); res.write('part'); res.addTrailers({ 'grpc-status': '0', 'x-checksum': 'abc' }); res.end(); return true; };
  const p = await setup(t, poolYaml([{ b }]), [b]);
  const a = await h2get(session(p, t), { ':path': '/t' });
  assert.equal(a.body, 'part');
  assert.equal(a.trailers?.['grpc-status'], '0');
  assert.equal(a.trailers?.['x-checksum'], 'abc');
  const req = httpRequest(`${p.url}/t`);
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  res.resume();
  await once(res, 'end');
  assert.equal(res.trailers['x-checksum'], 'abc');
});

const GRPC = { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' };

test('gRPC requests get gRPC errors from the proxy: UNIMPLEMENTED, UNAVAILABLE, DEADLINE_EXCEEDED, trailers-only', async (t) => {
  const [b, other] = await startBackends('primary', 'other') as [TestBackend, TestBackend];
  const dead = '127.0.0.1:1';
  const p = await setup(t, `pools:\n  - name: app\n    backends:\n      - address: "${b.address}"\n        health_check: { interval: "30s", timeout: "1s" }\n  - name: gone\n    backends:\n      - address: "${dead}"\n        health_check: { interval: "30s", timeout: "1s" }\n  - name: other\n    backends:\n      - address: "${other.address}"\n        health_check: { interval: "30s", timeout: "1s" }\nroutes:\n  - pool: app\n    host: "app"\n  - pool: gone\n    host: "gone"\n  - pool: other\n    host: "other"\n`, [b, other]);
  const s = session(p, t);
  const noRoute = await h2get(s, { ...GRPC, ':path': '/pkg.Svc/Call', ':authority': 'nowhere' }, '');
  assert.equal(noRoute.headers[':status'], 200);
  assert.equal(noRoute.headers['content-type'], 'application/grpc');
  assert.equal(noRoute.headers['grpc-status'], '12');
  assert.match(decodeURIComponent(String(noRoute.headers['grpc-message'])), /VF_ERR_NO_ROUTE: no route for host "nowhere"/);
  assert.equal(noRoute.endedWithHeaders, true, 'trailers-only: one HEADERS frame that ends the stream');
  assert.equal(noRoute.body, '');

  // Nothing healthy (its probe was refused): UNAVAILABLE.
  const refused = await h2get(s, { ...GRPC, ':path': '/pkg.Svc/Call', ':authority': 'gone' }, '');
  assert.equal(refused.headers['grpc-status'], '14');
  assert.match(decodeURIComponent(String(refused.headers['grpc-message'])), /VF_ERR_NO_HEALTHY_BACKEND/);

  // Every candidate failed (the backend is killed after its probe said up): UNAVAILABLE.
  await other.kill();
  const failed = await h2get(s, { ...GRPC, ':path': '/pkg.Svc/Call', ':authority': 'other' }, '');
  assert.equal(failed.headers['grpc-status'], '14');
  assert.match(decodeURIComponent(String(failed.headers['grpc-message'])), /VF_ERR_UPSTREAM_CONNECT/);

  // A non-gRPC request keeps the JSON error.
  const json = await h2get(s, { ':path': '/x', ':authority': 'nowhere' });
  assert.equal(json.headers[':status'], 404);
  assert.match(json.body, /VF_ERR_NO_ROUTE/);

  // grpc-timeout: the backend hangs; the client's deadline answers DEADLINE_EXCEEDED and counts against nobody.
  b.mode = 'hang';
  const passiveBefore = p.passive.length;
  const late = await h2get(s, { ...GRPC, ':path': '/pkg.Svc/Slow', ':authority': 'app', 'grpc-timeout': '300m' }, '');
  assert.equal(late.headers['grpc-status'], '4');
  assert.match(decodeURIComponent(String(late.headers['grpc-message'])), /grpc-timeout expired after 300ms/);
  assert.equal(p.passive.length, passiveBefore, 'an expired client deadline is no backend fault');
  assert.ok(p.done.includes(499), 'counted as a client that stopped waiting (499), not as a backend 5xx');
  assert.ok(!p.done.includes(504));
  assert.ok(p.proxy.controller.status().every((pool) => pool.activeLevel === 0));
});

test('grpc-timeout is parsed strictly: hostile values are refused before anything reaches a backend', async (t) => {
  const [b] = await startBackends('primary') as [TestBackend];
  const p = await setup(t, poolYaml([{ b }]), [b]);
  const s = session(p, t);
  for (const bad of ['', '1', 'S', '-1S', '1.5S', '123456789S', '1s', '1 S', '1SS', '0x10S', '1e3m', '١S']) {
    const a = await h2get(s, { ...GRPC, ':path': '/pkg.Svc/Call', 'grpc-timeout': bad }, '');
    assert.equal(a.headers['grpc-status'], '13', `grpc-timeout ${JSON.stringify(bad)}`);
    assert.match(decodeURIComponent(String(a.headers['grpc-message'])), /grpc-timeout must be 1 to 8 digits and a unit/);
  }
  assert.equal(b.seen.length, 0);
  const zero = await h2get(s, { ...GRPC, ':path': '/pkg.Svc/Call', 'grpc-timeout': '0S' }, '');
  assert.equal(zero.headers['grpc-status'], '4');
  const ok = await h2get(s, { ...GRPC, ':path': '/pkg.Svc/Call', 'grpc-timeout': '99999999H' }, '');
  assert.equal(ok.headers[':status'], 200);
  assert.equal(ok.body, 'primary', 'a huge deadline is capped, not refused');
});

test('a WebSocket (HTTP/1.1 upgrade) and HTTP/2 streams share the listener', async (t) => {
  const echo = createServer((_req, res) => res.end('ok'));
  echo.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\n\r\n`);
    socket.pipe(socket);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const port = (echo.address() as { port: number }).port;
  const p = await startTestProxy(`pools:\n  - name: ws\n    backends:\n      - address: "127.0.0.1:${port}"\n        health_check: { path: "/", interval: "30s" }\nroutes:\n  - pool: ws\n`);
  t.after(async () => { await p.stop(); echo.closeAllConnections(); echo.close(); });
  const req = httpRequest({ host: '127.0.0.1', port: p.proxy.data.port, path: '/chat', headers: { connection: 'Upgrade', upgrade: 'websocket' } });
  req.end();
  const [res, socket] = (await once(req, 'upgrade')) as [IncomingMessage, Socket];
  assert.equal(res.statusCode, 101);
  const s = session(p, t);
  for (let i = 0; i < 5; i++) {
    socket.write(`ping${i}`);
    const [data] = (await once(socket, 'data')) as [Buffer];
    assert.equal(data.toString(), `ping${i}`);
    assert.equal((await h2get(s, { ':path': `/h2/${i}` })).body, 'ok');
  }
  socket.destroy();
});

// --- abuse -------------------------------------------------------------------------------------------------

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}
const SETTINGS = (): Buffer => frame(4, 0, 0);
const PING = (i: number): Buffer => { const b = Buffer.alloc(8); b.writeUInt32BE(i, 4); return frame(6, 0, 0, b); };

/** Connects raw, writes `bytes`, and resolves when the proxy closes the connection (or after `waitMs`: 'open'). */
async function raw(port: number, bytes: Buffer[], waitMs: number): Promise<'closed' | 'open'> {
  const sock = netConnect(port, '127.0.0.1');
  sock.on('error', () => {});
  sock.resume();
  await once(sock, 'connect');
  for (const b of bytes) if (!sock.destroyed) sock.write(b);
  const closed = once(sock, 'close').then(() => 'closed' as const);
  const verdict = await Promise.race([closed, sleep(waitMs).then(() => 'open' as const)]);
  sock.destroy();
  return verdict;
}

async function stillServing(p: TestProxy & Observed, t: { after: (fn: () => void) => void }): Promise<void> {
  assert.equal(await curl('--http2-prior-knowledge', `${p.url}/`), 'primary');
  assert.equal((await h2get(session(p, t), { ':path': '/' })).body, 'primary');
  assert.deepEqual(p.passive, [], 'nothing counted against the backend');
  assert.ok(p.proxy.controller.status().every((pool) => pool.activeLevel === 0), 'no pool moved');
}

test('abuse: garbage after the preface, preface then silence, silence, a partial preface', async (t) => {
  const [b, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b }, { b: backup, level: 1 }], 'dataplane: { keepalive_timeout: "300ms", client_header_timeout: "400ms" }\n'), [b, backup]);
  const port = p.proxy.data.port;
  assert.equal(await raw(port, [PREFACE, Buffer.from('this is not a frame at all, not even close..')], 3000), 'closed', 'garbage after the preface');
  assert.equal(await raw(port, [PREFACE, SETTINGS()], 3000), 'closed', 'preface and SETTINGS, then nothing: closed after keepalive_timeout');
  assert.equal(await raw(port, [PREFACE], 3000), 'closed', 'preface, then nothing');
  assert.equal(await raw(port, [PREFACE.subarray(0, 10)], 3000), 'closed', 'a partial preface, then nothing: closed after client_header_timeout');
  assert.equal(await raw(port, [], 3000), 'closed', 'no byte at all');
  await stillServing(p, t);
});

test('abuse: PING and SETTINGS floods, rapid reset (CVE-2023-44487), oversized header lists are bounded', async (t) => {
  const [b, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b }, { b: backup, level: 1 }]), [b, backup]);
  const port = p.proxy.data.port;
  // Floods: the client never reads the ACKs; the proxy must close the session, not queue forever.
  const pings = Array.from({ length: 20_000 }, (_, i) => PING(i));
  assert.equal(await raw(port, [PREFACE, SETTINGS(), Buffer.concat(pings)], 5000), 'closed', 'PING flood');
  const settings = Array.from({ length: 20_000 }, () => SETTINGS());
  assert.equal(await raw(port, [PREFACE, SETTINGS(), Buffer.concat(settings)], 5000), 'closed', 'SETTINGS flood');

  // Rapid reset: streams opened and cancelled at once, in bulk. The session is closed or the streams are
  // refused; either way no upstream failure is counted and the proxy keeps serving.
  const s = h2connect(p.url);
  s.on('error', () => {});
  await once(s, 'connect');
  let opened = 0;
  for (let i = 0; i < 5000 && !s.destroyed && !s.closed; i++) {
    const r = s.request({ ':path': `/reset/${i}` });
    r.on('error', () => {});
    r.close(h2c.NGHTTP2_CANCEL);
    opened++;
  }
  // (events.once would reject on the session's 'error': the proxy may end it with GOAWAY, which is the point.)
  await Promise.race([new Promise((resolve) => s.once('close', resolve)), sleep(2000)]);
  s.destroy();
  assert.ok(opened > 0);

  // Oversized header list: refused (431 or a reset stream), the session survives or closes, nothing crashes.
  const big = session(p, t);
  const huge = await new Promise<string>((resolve) => {
    const r = big.request({ ':path': '/big', 'x-big': 'a'.repeat(20_000) });
    r.on('response', (h) => resolve(String(h[':status'])));
    r.on('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
    r.on('close', () => resolve(`closed ${r.rstCode}`));
    r.resume();
  });
  assert.ok(/^(431|closed \d+|ERR_HTTP2_STREAM_ERROR|ERR_HTTP2_SESSION_ERROR)$/.test(huge), huge);
  const many: Record<string, string> = { ':path': '/many' };
  for (let i = 0; i < 200; i++) many[`x-h${i}`] = 'v';
  const manyAnswer = await new Promise<string>((resolve) => {
    const r = session(p, t).request(many);
    r.on('response', (h) => resolve(String(h[':status'])));
    r.on('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
    r.on('close', () => resolve(`closed ${r.rstCode}`));
    r.resume();
  });
  assert.ok(/^(431|closed \d+|ERR_HTTP2_STREAM_ERROR|ERR_HTTP2_SESSION_ERROR)$/.test(manyAnswer), manyAnswer);
  await stillServing(p, t);
});

test('abuse: an HTTP/2 client that hangs up mid-stream is a 499 and never counts against the backend', async (t) => {
  const [b, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  // The backend streams slowly; the client resets its stream, then drops its connection, mid-response.
  b.handler = (req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/slow')) return false;
    res.write('first');
    const timer = setInterval(() => res.write('more'), 20);
    res.on('close', () => clearInterval(timer));
    return true;
  };
  const p = await setup(t, poolYaml([{ b }, { b: backup, level: 1 }]), [b, backup]);
  for (const how of ['rst', 'destroy'] as const) {
    const s = h2connect(p.url);
    s.on('error', () => {});
    const r = s.request({ ':path': '/slow' });
    r.on('error', () => {});
    await once(r, 'data');
    if (how === 'rst') r.close(h2c.NGHTTP2_CANCEL);
    else s.destroy();
    const deadline = Date.now() + 5000;
    while (!p.done.includes(499) && Date.now() < deadline) await sleep(20);
    assert.ok(p.done.includes(499), `${how}: logged as 499: ${JSON.stringify(p.done)}`);
    p.done.length = 0;
    s.destroy();
  }
  // An upload abandoned mid-body, too.
  const s = h2connect(p.url);
  s.on('error', () => {});
  const up = s.request({ ':method': 'POST', ':path': '/upload' }, { endStream: false });
  up.on('error', () => {});
  up.write('partial');
  await sleep(100);
  up.close(h2c.NGHTTP2_CANCEL);
  await sleep(200);
  s.destroy();
  await stillServing(p, t);
});

test('stop(): open HTTP/2 sessions get GOAWAY, in-flight streams finish', async (t) => {
  const [b] = await startBackends('primary') as [TestBackend];
  b.handler = (req, res) => { if (req.url !== '/wait') return false; setTimeout(() => res.end('finished'), 300); return true; };
  const p = await startTestProxy(poolYaml([{ b }]));
  t.after(() => b.kill());
  await p.waitReady();
  const s = h2connect(p.url);
  s.on('error', () => {});
  const inflight = h2get(s, { ':path': '/wait' });
  await sleep(100);
  const stopped = p.proxy.stop(5000);
  const goaway = once(s, 'goaway');
  assert.equal((await inflight).body, 'finished');
  await goaway;
  await stopped;
  s.destroy();
});

test('a response cut by the proxy is never ended as if whole: backend dead mid-body (RST_STREAM INTERNAL_ERROR), idle client and stalled upload (RST_STREAM CANCEL)', async (t) => {
  const [b] = await startBackends('primary') as [TestBackend];
  b.handler = (req: IncomingMessage, res: ServerResponse, body: string) => {
    if (req.url === '/dies') { res.writeHead(200, { 'content-length': '100' }); res.write('part of it'); setTimeout(() => res.socket?.destroy(), 50); return true; }
    if (req.url === '/big') { res.end(Buffer.alloc(4 * 1024 * 1024, 120)); return true; }
    if (req.url === '/upload') { res.end(`got ${body.length} bytes`); return true; } // (called once the body is in)
    return false;
  };
  const p = await setup(t, poolYaml([{ b }], 'dataplane: { idle_timeout: "300ms" }\n'), [b]);
  const s = session(p, t);
  const outcome = (r: ReturnType<ClientHttp2Session['request']>, read: boolean): Promise<{ ended: boolean; rst: number; bytes: number }> => new Promise((resolve) => {
    let ended = false;
    let bytes = 0;
    r.on('error', () => {});
    r.on('end', () => { ended = true; });
    if (read) r.on('data', (c: Buffer) => { bytes += c.length; });
    r.on('close', () => resolve({ ended, rst: r.rstCode ?? -1, bytes }));
  });
  const dies = await outcome(s.request({ ':path': '/dies' }), true);
  assert.deepEqual([dies.ended, dies.rst, dies.bytes], [false, h2c.NGHTTP2_INTERNAL_ERROR, 10], 'a backend that dies mid-body: the client sees a reset, not END_STREAM');
  // A client that stops reading a 4 MiB answer: its stream window fills, the proxy waits idle_timeout, then cancels.
  const idle = await outcome(s.request({ ':path': '/big' }), false);
  // (A stream that got END_STREAM first would close with rstCode 0 whatever came after.)
  assert.equal(idle.rst, h2c.NGHTTP2_CANCEL, 'a client that stops reading');
  // An upload that stalls mid-body: cancelled after idle_timeout, as a client that left (499), not the backend's fault.
  const up = s.request({ ':method': 'POST', ':path': '/upload' }, { endStream: false });
  up.write('the first part');
  const stalled = await outcome(up, true);
  assert.equal(stalled.rst, h2c.NGHTTP2_CANCEL, 'an upload that stalls');
  assert.deepEqual(p.passive.filter((x) => !x.includes('ECONNRESET') && !x.includes('UND_ERR_SOCKET')), [], 'only the dead backend counts against it');
  assert.ok(p.done.includes(499), JSON.stringify(p.done));
  // The session still serves.
  const ok = await h2get(s, { ':method': 'POST', ':path': '/upload' }, 'whole');
  assert.equal(ok.body, 'got 5 bytes');
});
