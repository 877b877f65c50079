// The proxy end to end in this process: real backends on 127.0.0.1 that die, hang, reset and recover.
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { TestBackend, startBackends } from './helpers/backend.ts';
import { runLoad } from './helpers/load.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

/** A pool over the given backends (level per backend), fast probes, short recovery. */
function poolYaml(backends: { b: TestBackend; level?: number; region?: string; weight?: number }[], extra = '', interval = '200ms'): string {
  const lines = backends.map(({ b, level, region, weight }) =>
    `      - address: "${b.address}"\n        failover_level: ${level ?? 0}\n${region ? `        region: "${region}"\n` : ''}${weight !== undefined ? `        weight: ${weight}\n` : ''}        health_check: { interval: "${interval}", timeout: "100ms" }\n`).join('');
  return `pools:\n  - name: app\n    backends:\n${lines}routes:\n  - pool: app\nfailover:\n  recovery_interval: "1s"\n${extra}`;
}

async function get(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', ...(init.body !== undefined ? { body: init.body } : {}), ...(init.headers ? { headers: init.headers } : {}) });
  return { status: res.statusCode, body: await res.body.text(), headers: res.headers };
}

async function setup(t: { after: (fn: () => Promise<void> | void) => void }, yaml: string, backends: TestBackend[]): Promise<TestProxy> {
  const p = await startTestProxy(yaml);
  t.after(async () => {
    await p.stop();
    await Promise.all(backends.map((b) => b.kill()));
  });
  await p.waitReady();
  return p;
}

test('failover to level 1, cascade to level 2, failback to level 0 after recovery_interval', async (t) => {
  const [primary, backup, tertiary] = await startBackends('primary', 'backup', 'tertiary') as [TestBackend, TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b: primary }, { b: backup, level: 1 }, { b: tertiary, level: 2 }]), [primary, backup, tertiary]);
  assert.equal((await get(`${p.url}/`)).body, 'primary');

  await primary.kill();
  await p.waitFor((e) => e.type === 'failover_activated', 5000, 'failover to level 1');
  assert.equal((await get(`${p.url}/`)).body, 'backup');

  await backup.kill();
  const cascade = await p.waitFor((e) => e.type === 'level_changed', 5000, 'cascade to level 2');
  assert.deepEqual([cascade.type === 'level_changed' && cascade.from, cascade.type === 'level_changed' && cascade.to], [1, 2]);
  assert.equal((await get(`${p.url}/`)).body, 'tertiary');

  await primary.revive();
  await p.waitFor((e) => e.type === 'backend_up' && e.level === 0, 5000, 'primary up');
  const upAt = Date.now();
  assert.equal((await get(`${p.url}/`)).body, 'tertiary', 'no return before recovery_interval');
  const recovered = await p.waitFor((e) => e.type === 'failover_recovered', 5000, 'failback');
  assert.ok(Date.now() - upAt >= 900, 'returned only after the recovery interval');
  assert.equal(recovered.type === 'failover_recovered' && recovered.to, 0);
  assert.equal((await get(`${p.url}/`)).body, 'primary');
  assert.ok(p.logs.some((l) => l.includes('"msg":"failover activated"') && l.includes('"from":0') && l.includes('"to":1')), 'a failover log line');
});

test('zero failed GET requests while the primary is killed under steady load', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b: primary }, { b: backup, level: 1 }], '', '1s'), [primary, backup]);
  const load = runLoad(p.url, { concurrency: 8, durationMs: 2500, maxRequests: 20_000 });
  await sleep(800);
  await primary.kill();
  const r = await load;
  assert.deepEqual(r.failures, [], 'no request failed');
  assert.ok((r.byBackend.get('primary') ?? 0) > 0 && (r.byBackend.get('backup') ?? 0) > 0, `both served: ${JSON.stringify([...r.byBackend])}`);
  assert.equal(r.ok, r.sent);
});

test('a POST is never sent twice: reset after sending gives 502; refused before sending is rescued once', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b: primary }, { b: backup, level: 1 }], '', '30s'), [primary, backup]);

  primary.mode = 'reset';
  const sent = await get(`${p.url}/orders`, { method: 'POST', body: 'order-1' });
  assert.equal(sent.status, 502);
  assert.equal(JSON.parse(sent.body).error.code, 'VF_ERR_UPSTREAM_RESET');
  assert.deepEqual(primary.seen.filter((s) => s.method === 'POST').map((s) => s.body), ['order-1']);
  assert.equal(backup.seen.length, 0, 'not sent again elsewhere');

  // The same failure on a GET is rescued on the next level.
  const rescued = await get(`${p.url}/orders`);
  assert.deepEqual([rescued.status, rescued.body], [200, 'backup']);

  primary.mode = 'ok';
  await primary.kill();
  const before = await get(`${p.url}/orders`, { method: 'POST', body: 'order-2' });
  assert.deepEqual([before.status, before.body], [200, 'backup']);
  assert.deepEqual(backup.seen.filter((s) => s.method === 'POST').map((s) => s.body), ['order-2']);
});

test('a hung backend: GET is rescued after header_timeout, POST gets 504 and is not repeated', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b: primary }, { b: backup, level: 1 }], 'dataplane: { header_timeout: "300ms" }\n', '30s'), [primary, backup]);
  primary.mode = 'hang';
  const g = await get(`${p.url}/slow`);
  assert.deepEqual([g.status, g.body], [200, 'backup']);
  // One timeout so far: below unhealthy_threshold (2), so the primary still gets the POST.
  const post = await get(`${p.url}/slow`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 504);
  assert.equal(JSON.parse(post.body).error.code, 'VF_ERR_UPSTREAM_TIMEOUT');
  assert.equal(backup.seen.filter((s) => s.method === 'POST').length, 0);
  // Two passive timeouts mark it down before its next probe.
  await p.waitFor((e) => e.type === 'backend_down' && e.by === 'passive', 2000, 'passive down');
});

test('no route gives 404; no backend anywhere gives 503 with Retry-After; errors are JSON with a code', async (t) => {
  const [only] = await startBackends('only') as [TestBackend];
  const yaml = `pools:\n  - name: app\n    backends:\n      - address: "${only.address}"\n        health_check: { interval: "200ms", timeout: "100ms" }\nroutes:\n  - { host: "app.test", pool: app }\n`;
  const p = await setup(t, yaml, [only]);
  const miss = await get(`${p.url}/x`, { headers: { host: 'other.test' } });
  assert.equal(miss.status, 404);
  assert.deepEqual(JSON.parse(miss.body), { error: { code: 'VF_ERR_NO_ROUTE', message: 'no route for host "other.test" and path "/x"' } });
  await only.kill();
  await p.waitFor((e) => e.type === 'backend_down', 3000);
  const none = await get(`${p.url}/x`, { headers: { host: 'app.test' } });
  assert.equal(none.status, 503);
  assert.equal(none.headers['retry-after'], '5');
  assert.equal(JSON.parse(none.body).error.code, 'VF_ERR_NO_HEALTHY_BACKEND');
});

test('forwarding: X-Forwarded-*, Host kept, hop-by-hop headers dropped both ways, bodies streamed intact', async (t) => {
  const [b] = await startBackends('b') as [TestBackend];
  b.handler = (req, res, body) => {
    if (req.url === '/echo') {
      res.writeHead(200, { connection: 'x-internal', 'x-internal': 'secret', 'x-kept': 'yes' });
      // Stream the echo back in pieces.
      const buf = Buffer.from(body);
      let off = 0;
      const pump = (): void => {
        while (off < buf.length) {
          const ok = res.write(buf.subarray(off, off + 65_536));
          off += 65_536;
          if (!ok) { res.once('drain', pump); return; }
        }
        res.end();
      };
      pump();
      return true;
    }
    return false;
  };
  const p = await setup(t, poolYaml([{ b }]), [b]);
  const big = 'x'.repeat(3 * 1024 * 1024) + 'end';
  const res = await get(`${p.url}/echo`, { method: 'POST', body: big, headers: { host: 'shop.test', 'x-forwarded-for': '10.9.9.9' } });
  assert.equal(res.status, 200);
  assert.equal(res.body.length, big.length);
  assert.ok(res.body.endsWith('end'));
  assert.equal(res.headers['x-kept'], 'yes');
  assert.equal(res.headers['x-internal'], undefined, 'a response header named by Connection is dropped');
  const seen = b.seen.find((s) => s.url === '/echo');
  assert.equal(seen?.headers.host, 'shop.test');
  assert.equal(seen?.headers['x-forwarded-for'], '10.9.9.9, 127.0.0.1');
  assert.equal(seen?.headers['x-forwarded-proto'], 'http');
  assert.equal(seen?.headers['x-forwarded-host'], 'shop.test');

  // Hop-by-hop request headers (node's client sends a custom Connection header as written; undici's does not).
  const hop = httpRequest({ host: '127.0.0.1', port: p.proxy.data.port, path: '/hop', headers: { connection: 'foo', foo: 'hop', te: 'trailers', 'proxy-authorization': 'Basic eA==' } });
  hop.end();
  const [hopRes] = (await once(hop, 'response')) as [IncomingMessage];
  hopRes.resume();
  assert.equal(hopRes.statusCode, 200);
  const hopSeen = b.seen.find((s) => s.url === '/hop');
  assert.ok(hopSeen);
  assert.deepEqual([hopSeen.headers.foo, hopSeen.headers.te, hopSeen.headers['proxy-authorization']], [undefined, undefined, undefined]);
});

test('upstream connections are kept alive and reused', async (t) => {
  const [b] = await startBackends('b') as [TestBackend];
  const p = await setup(t, poolYaml([{ b }], '', '30s'), [b]);
  const before = b.connections;
  for (let i = 0; i < 50; i++) assert.equal((await get(`${p.url}/k`)).status, 200);
  assert.ok(b.connections - before <= 2, `50 sequential requests used ${b.connections - before} connections`);
});

test('WebSocket upgrades pass through both ways', async (t) => {
  // A backend that answers the upgrade with 101 and echoes every byte back.
  const echo = createServer((_req, res) => res.end('ok'));
  echo.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\nx-backend: echo\r\n\r\n`);
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
  assert.equal(res.headers['x-backend'], 'echo');
  socket.write('ping');
  const [data] = (await once(socket, 'data')) as [Buffer];
  assert.equal(data.toString(), 'ping');
  socket.destroy();
});

test('locality: backends of the proxy\'s region are preferred while they serve', async (t) => {
  const [east, west] = await startBackends('east', 'west') as [TestBackend, TestBackend];
  const p = await setup(t, `region: "us-west"\n${poolYaml([{ b: east, region: 'us-east' }, { b: west, region: 'us-west' }])}`, [east, west]);
  const served = new Set<string>();
  for (let i = 0; i < 10; i++) served.add((await get(`${p.url}/`)).body);
  assert.deepEqual([...served], ['west']);
  await west.kill();
  await p.waitFor((e) => e.type === 'backend_down', 3000);
  assert.equal((await get(`${p.url}/`)).body, 'east');
});

test('weights share traffic inside a level (3:1)', async (t) => {
  const [a, b] = await startBackends('a', 'b') as [TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b: a, weight: 300 }, { b, weight: 100 }]), [a, b]);
  const counts: Record<string, number> = {};
  for (let i = 0; i < 40; i++) { const body = (await get(`${p.url}/`)).body; counts[body] = (counts[body] ?? 0) + 1; }
  assert.deepEqual(counts, { a: 30, b: 10 });
});

test('/readyz answers 503 until the first probe round has finished, then 200; /healthz is always 200', async (t) => {
  const [slow] = await startBackends('slow') as [TestBackend];
  // The first health check hangs until its 2s timeout: that is the window in which the proxy is not ready.
  slow.mode = 'hang';
  const p = await startTestProxy(poolYaml([{ b: slow }], '', '5s').replace('timeout: "100ms"', 'timeout: "2s"'));
  t.after(async () => { await p.stop(); await slow.kill(); });
  assert.equal((await get(`${p.adminUrl}/healthz`)).status, 200);
  const early = await get(`${p.adminUrl}/readyz`);
  assert.equal(early.status, 503);
  assert.equal(JSON.parse(early.body).status, 'not ready');
  await p.waitReady(5000);
  assert.equal((await get(`${p.adminUrl}/readyz`)).status, 200);
});

test('every request in flight on a primary that stalls is rescued, however many time out at once', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b: primary }, { b: backup, level: 1 }], 'dataplane: { header_timeout: "300ms" }\n', '30s'), [primary, backup]);
  primary.mode = 'hang';
  // 40 requests in flight at once on the stalled primary: more than the retry budget's minimum (16) and more
  // than half of what is in flight, so a budget on rescues would fail some of them.
  const agent = new (await import('undici')).Agent({ connections: 40 });
  t.after(() => agent.close());
  const answers = await Promise.all(Array.from({ length: 40 }, async () => {
    const res = await request(`${p.url}/stall`, { dispatcher: agent });
    return `${res.statusCode} ${await res.body.text()}`;
  }));
  assert.deepEqual([...new Set(answers)], ['200 backup']);
  assert.equal(primary.seen.filter((s) => s.url === '/stall').length, 40, 'each was tried on the primary first');
});

test('an idempotent request with a small body is replayed whole on the next backend after a reset', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const p = await setup(t, poolYaml([{ b: primary }, { b: backup, level: 1 }], '', '30s'), [primary, backup]);
  primary.mode = 'reset';
  const res = await get(`${p.url}/items/7`, { method: 'PUT', body: 'payload-123', headers: { 'Content-Type': 'text/plain' } });
  assert.deepEqual([res.status, res.body], [200, 'backup']);
  assert.deepEqual(primary.seen.map((s) => [s.method, s.body]), [['PUT', 'payload-123']], 'sent (and reset) on the primary');
  const replayed = backup.seen.find((s) => s.url === '/items/7');
  assert.deepEqual([replayed?.method, replayed?.body, replayed?.headers['content-length'], replayed?.headers['content-type']], ['PUT', 'payload-123', '11', 'text/plain']);
});

/** A raw client connection to the proxy; resolves `closed` when the proxy closes it. */
async function rawClient(port: number): Promise<{ socket: Socket; closed: Promise<void> }> {
  const { connect } = await import('node:net');
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => {});
  const closed = once(socket, 'close').then(() => undefined);
  return { socket, closed };
}

/** Rejects when `p` has not settled within `ms` (a bound for a test that would otherwise hang, not a timing check). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms); })])
    .finally(() => clearTimeout(timer));
}

test('idle_timeout: a client that stops sending its body is cut off, one that keeps sending is not', async (t) => {
  const [b] = await startBackends('b') as [TestBackend];
  const p = await setup(t, poolYaml([{ b }], 'dataplane: { idle_timeout: "1s" }\n', '30s'), [b]);
  const port = p.proxy.data.port;
  // Streamed body (POST) and buffered-for-replay body (PUT): both stall after 10 of 100 bytes.
  for (const method of ['POST', 'PUT']) {
    const c = await rawClient(port);
    c.socket.write(`${method} /slow HTTP/1.1\r\nHost: app.test\r\nContent-Length: 100\r\n\r\n0123456789`);
    await within(c.closed, 15_000, `${method} with a stalled body`);
  }
  assert.equal(b.seen.filter((s) => s.url === '/slow').length, 0, 'no incomplete body reached the backend as a request');
  // A slow client that never goes quiet for long (a byte every 100 ms against a 1 s timeout) gets its answer.
  const c = await rawClient(port);
  let answer = '';
  c.socket.on('data', (d: Buffer) => { answer += d.toString(); });
  c.socket.write('POST /trickle HTTP/1.1\r\nHost: app.test\r\nContent-Length: 25\r\n\r\n');
  for (let i = 0; i < 25; i++) {
    await sleep(100);
    c.socket.write('x');
  }
  await within(new Promise<void>((resolve) => { const check = (): void => { if (answer.includes('\r\n\r\nb')) resolve(); else c.socket.once('data', check); }; check(); }), 15_000, 'trickled request answered');
  assert.match(answer, /^HTTP\/1\.1 200 /);
  assert.equal(b.seen.find((s) => s.url === '/trickle')?.body, 'x'.repeat(25));
  c.socket.destroy();
});

test('idle_timeout: a client that stops reading a streamed response is cut off and the upstream exchange aborted', async (t) => {
  const [b] = await startBackends('b') as [TestBackend];
  let upstreamClosed!: () => void;
  const aborted = new Promise<void>((resolve) => { upstreamClosed = resolve; });
  b.handler = (req, res) => {
    if (req.url !== '/firehose') return false;
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 120);
    let sent = 0;
    // At most 256 MB: far more than the socket buffers between here and a client that reads nothing.
    const pump = (): void => {
      while (sent < 4096) {
        sent++;
        if (!res.write(chunk)) { res.once('drain', pump); return; }
      }
      res.end();
    };
    res.on('close', () => { if (!res.writableFinished) upstreamClosed(); });
    pump();
    return true;
  };
  const p = await setup(t, poolYaml([{ b }], 'dataplane: { idle_timeout: "500ms" }\n', '30s'), [b]);
  const c = await rawClient(p.proxy.data.port);
  c.socket.pause(); // reads nothing
  c.socket.write('GET /firehose HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await within(aborted, 15_000, 'upstream exchange aborted');
  c.socket.destroy();
});
