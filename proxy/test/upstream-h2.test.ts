// SPEC 8 upstream side: pools speaking h2c, h2 (TLS + ALPN) and HTTP/1.1 over TLS to real backends, with a CA
// made in the test; connection reuse and multiplexing; backends that misbehave at the HTTP/2 and TLS layers.
// Clients here speak HTTP/1.1 to the proxy (the upstream protocol does not depend on the client's).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { get as httpGet } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { constants as h2, createSecureServer, createServer as createH2Server } from 'node:http2';
import type { Http2SecureServer, Http2Server, ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import { connect as tcpConnect, createServer as createTcpServer } from 'node:net';
import type { Server as TcpServer, Socket } from 'node:net';
import { test } from 'node:test';
import { request } from 'undici';
import type { Target } from '../src/dataplane/plan.ts';
import { makeCa } from './helpers/grpc.ts';
import type { TestCa } from './helpers/grpc.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

interface H2Backend {
  readonly server: Http2Server | Http2SecureServer;
  readonly port: number;
  readonly sessions: Set<ServerHttp2Session>;
  /** Connections that carried at least one request. */
  sessionCount: number;
  streams: number;
  maxConcurrent: number;
  close(): Promise<void>;
}

/** An HTTP/2 backend (h2c, or TLS with the given key/cert) answering after `delayMs`, counting sessions and streams. */
async function startH2(opts: { tls?: { key: string; cert: string }; delayMs?: number; onStream?: (s: ServerHttp2Stream, headers: Record<string, string | string[] | undefined>) => boolean } = {}): Promise<H2Backend> {
  // Large enough to send the oversized header blocks the abuse tests need (node refuses to send > 64 KiB by default).
  const limits = { maxSendHeaderBlockLength: 8 << 20 };
  const server = opts.tls ? createSecureServer({ key: opts.tls.key, cert: opts.tls.cert, ...limits }) : createH2Server(limits);
  const b: H2Backend = {
    server, port: 0, sessions: new Set(), sessionCount: 0, streams: 0, maxConcurrent: 0,
    close: async () => { for (const s of b.sessions) s.destroy(); await new Promise<void>((r) => server.close(() => r())); },
  };
  let open = 0;
  // Connections that carried a request (the tcp health checks connect too, and node makes each a session).
  const carried = new WeakSet<ServerHttp2Session>();
  server.on('session', (s: ServerHttp2Session) => { b.sessions.add(s); s.on('close', () => b.sessions.delete(s)); s.on('error', () => {}); });
  server.on('stream', (stream: ServerHttp2Stream, headers) => {
    stream.on('error', () => {});
    if (!carried.has(stream.session as ServerHttp2Session)) { carried.add(stream.session as ServerHttp2Session); b.sessionCount++; }
    b.streams++;
    if (opts.onStream?.(stream, headers as Record<string, string>)) return;
    open++;
    b.maxConcurrent = Math.max(b.maxConcurrent, open);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      setTimeout(() => {
        open--;
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-backend': 'h2' });
        stream.end(JSON.stringify({ path: headers[':path'], method: headers[':method'], authority: headers[':authority'], scheme: headers[':scheme'], body: Buffer.concat(chunks).toString(), te: headers.te ?? null }));
      }, opts.delayMs ?? 0);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return Object.assign(b, { port: (server.address() as { port: number }).port });
}

interface Passive { backend: string; error: string }

async function proxyFor(t: { after: (fn: () => Promise<void> | void) => void }, poolFields: string, backends: string[], cleanup: (() => Promise<void> | void)[] = [], check = '{ type: "tcp", interval: "200ms", timeout: "100ms" }', dataplane = '{ connect_timeout: "500ms", header_timeout: "1s" }'): Promise<{ p: TestProxy; passive: Passive[] }> {
  const passive: Passive[] = [];
  const lines = backends.map((a, i) => `      - address: "${a}"\n        failover_level: ${i}\n        health_check: ${check.replace('UNHEALTHY', '')}\n`).join('');
  const yaml = `pools:\n  - name: app\n${poolFields}    backends:\n${lines}routes:\n  - pool: app\ndataplane: ${dataplane}\n`;
  const p = await startTestProxy(yaml, { hooks: { passive: (target: Target, error: string) => passive.push({ backend: target.backend.address, error }) } });
  t.after(async () => { await p.stop(); for (const c of cleanup) await c(); });
  await p.waitReady();
  return { p, passive };
}

async function get(url: string, init: { method?: 'GET' | 'POST' | 'PUT'; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(url, { method: init.method ?? 'GET', ...(init.body !== undefined ? { body: init.body } : {}), ...(init.headers ? { headers: init.headers } : {}) });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

function json(body: string): Record<string, unknown> {
  return JSON.parse(body) as Record<string, unknown>;
}

let ca: TestCa;
test.before(() => { ca = makeCa(); });
test.after(() => ca.remove());

test('h2c upstream: 60 concurrent requests from HTTP/1.1 clients multiplexed over one backend connection, bodies intact', async (t) => {
  const b = await startH2({ delayMs: 50 });
  const { p } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${b.port}`], [() => b.close()]);
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) => get(`${p.url}/item/${i}?q=1`, { method: 'POST', body: `payload-${i}` })));
  for (const [i, r] of results.entries()) {
    assert.equal(r.status, 200);
    const j = json(r.body);
    assert.equal(j.path, `/item/${i}?q=1`);
    assert.equal(j.body, `payload-${i}`);
    assert.equal(j.scheme, 'http');
    assert.equal(j.te, null, 'an HTTP/1.1 client\'s TE is hop-by-hop');
  }
  // Requests that arrive while the first connection opens wait for it (up to its 100 streams): one connection.
  assert.equal(b.sessionCount, 1, `${b.sessionCount} HTTP/2 connections for 60 concurrent requests`);
  assert.ok(b.maxConcurrent >= 10, `streams in flight at once on the backend: ${b.maxConcurrent}`);
  // Reuse: a later request rides an existing connection.
  const before = b.sessionCount;
  assert.equal((await get(`${p.url}/again`)).status, 200);
  assert.equal(b.sessionCount, before);
});

test('h2 upstream over TLS (ALPN h2): CA from ca_file, server_name checked; multiplexed', async (t) => {
  const leaf = ca.issue(['grpc.internal']);
  const b = await startH2({ tls: leaf, delayMs: 30 });
  const { p } = await proxyFor(t, `    protocol: "h2"\n    tls: { ca_file: "${ca.caFile}", server_name: "grpc.internal" }\n`, [`127.0.0.1:${b.port}`], [() => b.close()]);
  const results = await Promise.all(Array.from({ length: 40 }, (_, i) => get(`${p.url}/s/${i}`)));
  for (const r of results) assert.equal(r.status, 200);
  assert.equal(json((results[0] as { body: string }).body).scheme, 'https');
  assert.ok(b.sessionCount <= 4, `${b.sessionCount} TLS connections for 40 concurrent requests`);
});

test('h2 upstream: a certificate from another CA is refused (502, a passive failure), and so is one for another name', async (t) => {
  const other = makeCa('Other CA');
  t.after(() => other.remove());
  const wrongCa = await startH2({ tls: other.issue(['grpc.internal']) });
  const wrongName = await startH2({ tls: ca.issue(['elsewhere.internal']) });
  const { p, passive } = await proxyFor(t, `    protocol: "h2"\n    tls: { ca_file: "${ca.caFile}", server_name: "grpc.internal" }\n`, [`127.0.0.1:${wrongCa.port}`, `127.0.0.1:${wrongName.port}`], [() => wrongCa.close(), () => wrongName.close()]);
  const r = await get(`${p.url}/x`);
  assert.equal(r.status, 502);
  assert.equal(json(r.body).error && (json(r.body).error as { code: string }).code, 'VF_ERR_UPSTREAM_CONNECT');
  assert.equal(wrongCa.streams + wrongName.streams, 0, 'no request reached an unverified backend');
  const errors = passive.map((x) => x.error);
  assert.ok(errors.includes('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), JSON.stringify(errors));
  assert.ok(errors.includes('ERR_TLS_CERT_ALTNAME_INVALID'), JSON.stringify(errors));
});

test('https:// HTTP/1.1 backend: server_name is what is verified; insecure_skip_verify accepts anything and is logged once per pool at load', async (t) => {
  const leaf = ca.issue(['backend.test']);
  const server = createHttpsServer({ key: leaf.key, cert: leaf.cert }, (req, res) => { res.end(`h1 ${req.httpVersion}`); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));

  const named = await proxyFor(t, `    tls: { ca_file: "${ca.caFile}", server_name: "backend.test" }\n`, [`https://127.0.0.1:${port}`]);
  const ok = await get(`${named.p.url}/`);
  assert.equal(ok.status, 200);
  assert.equal(ok.body, 'h1 1.1', 'protocol http1 stays on HTTP/1.1 over TLS');

  const unnamed = await proxyFor(t, `    tls: { ca_file: "${ca.caFile}" }\n`, [`https://127.0.0.1:${port}`]);
  assert.equal((await get(`${unnamed.p.url}/`)).status, 502, 'the certificate is for backend.test, not 127.0.0.1');
  assert.deepEqual(unnamed.passive.map((x) => x.error), ['ERR_TLS_CERT_ALTNAME_INVALID']);

  const skip = await proxyFor(t, '    tls: { insecure_skip_verify: true }\n', [`https://127.0.0.1:${port}`]);
  assert.equal((await get(`${skip.p.url}/`)).status, 200);
  assert.equal((await get(`${skip.p.url}/`)).status, 200);
  const warned = skip.p.logs.filter((l) => l.includes('tls.insecure_skip_verify'));
  assert.equal(warned.length, 1, warned.join('\n'));
  assert.match(warned[0] as string, /"pool":"app"/);
  assert.equal(named.p.logs.filter((l) => l.includes('insecure_skip_verify')).length, 0);
});

test('h2: a backend that picks http/1.1 by ALPN fails the connection (502 PROTOCOL, a passive failure); auto uses HTTP/1.1 there', async (t) => {
  const leaf = ca.issue(['127.0.0.1']);
  const server = createHttpsServer({ key: leaf.key, cert: leaf.cert }, (req, res) => { res.end(`h1 ${req.httpVersion}`); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const strict = await proxyFor(t, `    protocol: "h2"\n    tls: { ca_file: "${ca.caFile}" }\n`, [`127.0.0.1:${port}`]);
  const r = await get(`${strict.p.url}/`);
  assert.equal(r.status, 502);
  assert.equal((json(r.body).error as { code: string }).code, 'VF_ERR_UPSTREAM_PROTOCOL');
  assert.deepEqual(strict.passive.map((x) => x.error), ['VF_UPSTREAM_NO_H2']);
  const auto = await proxyFor(t, `    protocol: "auto"\n    tls: { ca_file: "${ca.caFile}" }\n`, [`https://127.0.0.1:${port}`]);
  assert.equal((await get(`${auto.p.url}/`)).body, 'h1 1.1');
  // auto against an h2 backend: HTTP/2.
  const b = await startH2({ tls: leaf });
  t.after(() => b.close());
  const auto2 = await proxyFor(t, `    protocol: "auto"\n    tls: { ca_file: "${ca.caFile}" }\n`, [`https://127.0.0.1:${b.port}`]);
  assert.equal((await get(`${auto2.p.url}/`)).status, 200);
  assert.equal(b.streams, 1);
});

/** A TCP server that accepts and then does whatever `onSocket` says (nothing: a silent peer). */
async function startRaw(onSocket: (s: Socket) => void = () => {}): Promise<{ server: TcpServer; port: number; sockets: Set<Socket>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((s) => { sockets.add(s); s.on('error', () => {}); s.on('close', () => sockets.delete(s)); onSocket(s); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, sockets, close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }) };
}

test('a backend that accepts TCP but never speaks TLS: 504 after connect_timeout, a passive failure; the next level answers a later request', async (t) => {
  const silent = await startRaw();
  const good = await startH2({ tls: ca.issue(['127.0.0.1']) });
  const { p, passive } = await proxyFor(t, `    protocol: "h2"\n    tls: { ca_file: "${ca.caFile}" }\n`, [`127.0.0.1:${silent.port}`, `127.0.0.1:${good.port}`], [() => silent.close(), () => good.close()]);
  // Rescued onto level 1 (nothing was sent to the silent one).
  const r = await get(`${p.url}/`);
  assert.equal(r.status, 200);
  assert.equal(passive[0]?.backend, `127.0.0.1:${silent.port}`);
  assert.equal(passive[0]?.error, 'UND_ERR_CONNECT_TIMEOUT');
});

// --- HTTP/2 backends that break the protocol ---------------------------------------------------------------

const MISBEHAVIOUR: [string, (s: ServerHttp2Stream) => void, number | 'cut'][] = [
  ['RST_STREAM before any header', (s) => s.close(h2.NGHTTP2_INTERNAL_ERROR), 502],
  // destroy() sends RST_STREAM INTERNAL_ERROR; close(code) would end the body cleanly first.
  ['RST_STREAM after the headers, mid-body', (s) => { s.respond({ ':status': 200 }); s.write('partial'); setTimeout(() => s.destroy(new Error('reset by the test')), 20); }, 'cut'],
  ['GOAWAY mid-stream, then the connection closes', (s) => { s.respond({ ':status': 200 }); s.write('partial'); setTimeout(() => { s.session?.goaway(h2.NGHTTP2_INTERNAL_ERROR); s.session?.destroy(); }, 20); }, 'cut'],
  ['endless headers (4000 of them)', (s) => { const h: Record<string, string> = { ':status': '200' }; for (let i = 0; i < 4000; i++) h[`x-h${i}`] = 'v'.repeat(20); s.respond(h); s.end('x'); }, 502],
  ['trailers with a 1 MB value', (s) => { s.respond({ ':status': 200 }, { waitForTrailers: true }); s.on('wantTrailers', () => s.sendTrailers({ 'x-big': 'v'.repeat(1 << 20) })); s.end('body'); }, 'cut'],
];

for (const [name, act, expect] of MISBEHAVIOUR) {
  test(`h2c backend misbehaves: ${name}: the client gets an error, the proxy lives on, it counts against the backend`, async (t) => {
    const b = await startH2({ onStream: (s) => { act(s); return true; } });
    const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${b.port}`], [() => b.close()]);
    const r = await (async () => {
      try {
        const res = await request(`${p.url}/`, { method: 'POST', body: 'x' });
        return { status: res.statusCode as number | 'cut', body: await res.body.text() };
      } catch (err) {
        return { status: 'cut' as const, body: (err as Error).message };
      }
    })();
    // 'cut': the head went out, so the client's response is cut (never a clean end of a partial body).
    if (expect === 'cut') assert.equal(r.status, 'cut', `got ${JSON.stringify(r)}`);
    else assert.equal(r.status, expect, r.body);
    assert.ok(passive.length >= 1, 'a backend fault is a passive failure');
    // The proxy lives on.
    assert.equal((await request(`${p.adminUrl}/healthz`)).statusCode, 200);
  });
}

test('h2c backend sends malformed frames after the preface: 502, a passive failure, no crash', async (t) => {
  const raw = await startRaw((s) => {
    s.once('data', () => {
      // A SETTINGS frame with a length that is not a multiple of 6, then garbage: FRAME_SIZE/PROTOCOL error.
      s.write(Buffer.from([0, 0, 5, 4, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]));
      s.write(Buffer.alloc(64, 0xff));
    });
  });
  const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${raw.port}`], [() => raw.close()]);
  const r = await get(`${p.url}/`);
  assert.equal(r.status, 502);
  assert.ok(passive.length >= 1);
  assert.equal((await request(`${p.adminUrl}/healthz`)).statusCode, 200);
});

test('a client that resets its request against an h2c backend never counts against the backend', async (t) => {
  const b = await startH2({ delayMs: 300 });
  const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${b.port}`], [() => b.close()]);
  for (let i = 0; i < 5; i++) {
    const ac = new AbortController();
    const pending = request(`${p.url}/slow`, { signal: ac.signal }).catch(() => undefined);
    setTimeout(() => ac.abort(), 50);
    await pending;
  }
  assert.equal((await get(`${p.url}/`)).status, 200);
  assert.deepEqual(passive, []);
});

// --- The HTTP/2 upstream's own rules (h2-upstream.ts) ------------------------------------------------------------

test('h2c backend that answers nothing: 504 after header_timeout (a passive failure); one that stops mid-body is cut after idle_timeout', async (t) => {
  const b = await startH2({
    onStream: (s, h) => {
      if (h[':path'] === '/mid') { s.respond({ ':status': 200 }); s.write('partial'); } // then silence
      return true; // '/head': never answers at all
    },
  });
  const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${b.port}`], [() => b.close()], undefined, '{ connect_timeout: "500ms", header_timeout: "300ms", idle_timeout: "300ms" }');
  const head = await get(`${p.url}/head`);
  assert.equal(head.status, 504, head.body);
  assert.match(head.body, /UPSTREAM_TIMEOUT/);
  assert.deepEqual(passive.map((x) => x.error), ['UND_ERR_HEADERS_TIMEOUT']);
  // Mid-body: the head went out already, so the client's response is cut (not a whole answer).
  const mid = await request(`${p.url}/mid`);
  assert.equal(mid.statusCode, 200);
  await assert.rejects(mid.body.text(), 'a response cut by the body timeout does not end cleanly');
  assert.deepEqual(passive.map((x) => x.error), ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
});

test('h2c: a client that reads slowly stalls the backend (flow control), not the body timeout; 4 MB arrive intact', async (t) => {
  const big = Buffer.alloc(4 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32BE(i, i);
  const b = await startH2({ onStream: (s) => { s.respond({ ':status': 200, 'content-length': String(big.length) }); s.end(big); return true; } });
  const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${b.port}`], [() => b.close()], undefined, '{ connect_timeout: "500ms", header_timeout: "1s", idle_timeout: "400ms" }');
  // The client stops reading for longer than idle_timeout... of the backend's silence; its own silence is allowed
  // up to idle_timeout too, so the pauses stay below that: 4 pauses of 250 ms.
  const body = await new Promise<Buffer>((resolve, reject) => {
    httpGet(`${p.url}/big`, (res) => {
      const chunks: Buffer[] = [];
      let pauses = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        if (pauses < 4 && chunks.length % 8 === 0) { pauses++; res.pause(); setTimeout(() => res.resume(), 250); }
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    }).on('error', reject);
  });
  assert.equal(body.length, big.length);
  assert.ok(body.equals(big), 'the body arrived intact');
  assert.deepEqual(passive, []);
});

test('h2c: a graceful GOAWAY (a backend restarting) loses nothing: streams it took finish, later requests open a new connection', async (t) => {
  const b = await startH2({ delayMs: 150 });
  const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${b.port}`], [() => b.close()]);
  const first = Array.from({ length: 10 }, (_, i) => get(`${p.url}/a${i}`, { method: 'POST', body: `a${i}` }));
  while (b.streams < 10) await new Promise((r) => setTimeout(r, 5));
  // node's close(): GOAWAY with the last stream it took, then it finishes those.
  for (const s of b.sessions) s.close();
  const second = Array.from({ length: 10 }, (_, i) => get(`${p.url}/b${i}`, { method: 'POST', body: `b${i}` }));
  const all = await Promise.all([...first, ...second]);
  assert.deepEqual(all.map((r) => r.status), Array(20).fill(200));
  assert.deepEqual(all.map((r) => json(r.body).body), [...Array.from({ length: 10 }, (_, i) => `a${i}`), ...Array.from({ length: 10 }, (_, i) => `b${i}`)]);
  assert.deepEqual(passive, []);
  assert.ok(b.sessionCount >= 2, `${b.sessionCount} connections: the later requests went on a new one`);
});

test('h2c: the backend\'s SETTINGS_MAX_CONCURRENT_STREAMS holds: 30 requests with a limit of 4 open more connections, never 5 streams on one', async (t) => {
  const server = createH2Server({ settings: { maxConcurrentStreams: 4 } });
  const perSession = new Map<ServerHttp2Session, number>();
  let worst = 0;
  server.on('session', (s) => { s.on('error', () => {}); });
  server.on('stream', (stream: ServerHttp2Stream) => {
    const s = stream.session as ServerHttp2Session;
    const n = (perSession.get(s) ?? 0) + 1;
    perSession.set(s, n);
    worst = Math.max(worst, n);
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => setTimeout(() => {
      perSession.set(s, (perSession.get(s) ?? 1) - 1);
      if (!stream.destroyed) { stream.respond({ ':status': 200 }); stream.end('ok'); }
    }, 60));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${port}`], [() => new Promise<void>((r) => { server.close(() => r()); })]);
  // One request first: the connection is up and its SETTINGS known before the burst.
  assert.equal((await get(`${p.url}/warm`)).status, 200);
  const all = await Promise.all(Array.from({ length: 30 }, (_, i) => get(`${p.url}/r${i}`)));
  assert.deepEqual(all.map((r) => r.status), Array(30).fill(200));
  assert.ok(worst <= 4, `at most 4 streams at once on a connection, saw ${worst}`);
  assert.ok(perSession.size >= 2, `${perSession.size} connections`);
  assert.deepEqual(passive, []);
});

test('a WebSocket upgrade routed to an h2c pool is refused (400, says why) and never counts against the backend', async (t) => {
  const b = await startH2();
  const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${b.port}`], [() => b.close()]);
  const u = new URL(p.url);
  const answer = await new Promise<string>((resolve, reject) => {
    const sock = tcpConnect(Number(u.port), u.hostname, () => {
      sock.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    });
    let got = '';
    sock.on('data', (c: Buffer) => { got += c.toString(); });
    sock.on('close', () => resolve(got));
    sock.on('error', reject);
  });
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.match(answer, /upgrade failed on pool \\"app\\": pool protocol h2c speaks HTTP\/2 to its backends/);
  assert.deepEqual(passive, []);
  assert.equal((await get(`${p.url}/`)).status, 200, 'the backend still takes requests');
});

test('h2c: request headers HTTP/2 cannot carry (two Content-Type, two Authorization) are the client\'s 400, never a backend failure', async (t) => {
  const b = await startH2();
  const { p, passive } = await proxyFor(t, '    protocol: "h2c"\n', [`127.0.0.1:${b.port}`], [() => b.close()]);
  const u = new URL(p.url);
  for (const dup of ['Content-Type: text/plain\r\nContent-Type: text/html', 'Authorization: Bearer sekrit-a\r\nAuthorization: Bearer sekrit-b']) {
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = tcpConnect(Number(u.port), u.hostname, () => {
        sock.write(`GET /dup HTTP/1.1\r\nHost: x\r\n${dup}\r\nConnection: close\r\n\r\n`);
      });
      let got = '';
      sock.on('data', (c: Buffer) => { got += c.toString(); });
      sock.on('close', () => resolve(got));
      sock.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 400 /, dup);
    assert.match(answer, /VF_ERR_BAD_REQUEST/);
    assert.doesNotMatch(answer, /sekrit/, 'header values are not echoed');
  }
  assert.deepEqual(passive, [], 'nothing counted against the backend');
  assert.equal((await get(`${p.url}/`)).status, 200, 'the backend still takes requests');
});
