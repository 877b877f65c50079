// Draining on failover (SPEC 8): a WebSocket and HTTP/2 streams open on the primary when it loses its traffic
// keep running, then after failover.drain_timeout the WebSocket gets close 1001, a gRPC stream UNAVAILABLE in its
// trailers and another HTTP/2 stream RST_STREAM; nothing counts against the backend; new traffic is on the backup.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect as h2connect, constants as h2c } from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { levelsToDrain, levelsWithTraffic } from '../src/dataplane/drain.ts';
import type { RoutingState } from '../src/routing.ts';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { startTestProxy } from './helpers/proxy.ts';

test('levelsToDrain: the (pool, level) pairs with open exchanges and no share of new requests', () => {
  const routing: RoutingState = { seq: 1, configVersion: 'v', pools: {
    a: { shares: [{ level: 0, percent: 0 }, { level: 1, percent: 100 }], serving: [] },
    b: { shares: [{ level: 0, percent: 75 }, { level: 1, percent: 25 }], serving: [] },
  } };
  assert.deepEqual([...levelsWithTraffic(routing, 'a')], [1]);
  assert.deepEqual([...levelsWithTraffic(routing, 'gone')], []);
  const open = [
    { poolName: 'a', level: 0, drain() {} }, { poolName: 'a', level: 1, drain() {} },
    { poolName: 'b', level: 0, drain() {} }, { poolName: 'b', level: 1, drain() {} }, { poolName: 'gone', level: 0, drain() {} },
  ];
  assert.deepEqual([...levelsToDrain(open, routing).values()], [{ pool: 'a', level: 0 }, { pool: 'gone', level: 0 }]);
});

test('failover drains a WebSocket (close 1001) and HTTP/2 streams (gRPC UNAVAILABLE, RST_STREAM) after drain_timeout', async (t) => {
  // The primary: WebSocket echo, and two endless streaming responses.
  const primary = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/health') { res.end('ok'); return; }
    req.resume();
    if (req.headers['content-type'] === 'application/grpc') res.setHeader('content-type', 'application/grpc');
    res.write('first');
    const timer = setInterval(() => res.write('tick'), 50);
    res.on('close', () => clearInterval(timer));
  });
  primary.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\n\r\n`);
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  primary.listen(0, '127.0.0.1');
  await once(primary, 'listening');
  const [backup] = await startBackends('backup') as [TestBackend];
  const passive: string[] = [];
  const done: number[] = [];
  const p = await startTestProxy(`pools:\n  - name: app\n    backends:\n      - address: "127.0.0.1:${(primary.address() as { port: number }).port}"\n        health_check: { interval: "30s", timeout: "1s" }\n      - address: "${backup.address}"\n        failover_level: 1\n        health_check: { interval: "30s", timeout: "1s" }\nroutes:\n  - pool: app\nfailover:\n  drain_timeout: "1500ms"\n`,
    { hooks: { passive: (target) => passive.push(target.backend.id), done: (_p, _t, status) => done.push(status) } });
  t.after(async () => { await p.stop(); primary.closeAllConnections(); primary.close(); await backup.kill(); });
  await p.waitReady();

  const up = httpRequest({ host: '127.0.0.1', port: p.proxy.data.port, path: '/ws', headers: { connection: 'Upgrade', upgrade: 'websocket' } });
  up.end();
  const [res, ws] = (await once(up, 'upgrade')) as [IncomingMessage, Socket];
  assert.equal(res.statusCode, 101);
  const fromWs: Buffer[] = [];
  ws.on('data', (c: Buffer) => fromWs.push(c));
  const wsClosed = new Promise((resolve) => ws.once('close', resolve));

  const s = h2connect(p.url);
  s.on('error', () => {});
  t.after(() => s.destroy());
  const open = (headers: Record<string, string>): Promise<{ headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders | undefined; rst: number }> => new Promise((resolve) => {
    const r = s.request(headers, { endStream: false });
    r.end();
    let h: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    r.on('response', (x) => { h = x; });
    r.on('trailers', (x) => { trailers = x; });
    r.on('error', () => {});
    r.resume();
    r.on('close', () => resolve({ headers: h, trailers, rst: r.rstCode ?? -1 }));
  });
  const grpc = open({ ':method': 'POST', ':path': '/pkg.Svc/Watch', 'content-type': 'application/grpc' });
  const plain = open({ ':method': 'GET', ':path': '/events' });
  await sleep(200);

  p.proxy.controller.activate('app', 'drain test');
  // New traffic goes to the backup at once; the open exchanges still run.
  const fresh = await fetch(`${p.url}/new`);
  assert.equal(await fresh.text(), 'backup');
  ws.write('still here');
  const until = Date.now() + 1000;
  while (!Buffer.concat(fromWs).toString().includes('still here') && Date.now() < until) await sleep(10);
  assert.ok(Buffer.concat(fromWs).toString().includes('still here'), 'the WebSocket keeps running during the drain');

  await wsClosed;
  const tail = Buffer.concat(fromWs);
  assert.deepEqual([...tail.subarray(tail.length - 4)], [0x88, 0x02, 0x03, 0xe9], 'a close frame with 1001 (going away)');
  const g = await grpc;
  assert.equal(g.headers[':status'], 200);
  assert.equal(g.trailers?.['grpc-status'], '14');
  assert.match(decodeURIComponent(String(g.trailers?.['grpc-message'])), /VF_ERR_DRAINED: level 0 of pool "app"/);
  const plainEnd = await plain;
  assert.equal(plainEnd.rst, h2c.NGHTTP2_CANCEL);
  assert.deepEqual(passive, [], 'a drain counts against nobody');
  assert.ok(done.includes(503), JSON.stringify(done));
  // The session itself stays usable, now on the backup.
  const again = await new Promise<string>((resolve) => {
    const r = s.request({ ':path': '/again' });
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.on('end', () => resolve(Buffer.concat(chunks).toString()));
  });
  assert.equal(again, 'backup');
});

test('a level that gets its traffic back before drain_timeout closes nothing', async (t) => {
  const primary = createServer((req, res) => { if (req.url === '/health') { res.end('ok'); return; } res.write('first'); const timer = setInterval(() => res.write('tick'), 50); res.on('close', () => clearInterval(timer)); });
  primary.listen(0, '127.0.0.1');
  await once(primary, 'listening');
  const [backup] = await startBackends('backup') as [TestBackend];
  const p = await startTestProxy(`pools:\n  - name: app\n    backends:\n      - address: "127.0.0.1:${(primary.address() as { port: number }).port}"\n        health_check: { interval: "30s", timeout: "1s" }\n      - address: "${backup.address}"\n        failover_level: 1\n        health_check: { interval: "30s", timeout: "1s" }\nroutes:\n  - pool: app\nfailover:\n  drain_timeout: "1s"\n  recovery_interval: "1ms"\n  step_interval: "1ms"\n`);
  t.after(async () => { await p.stop(); primary.closeAllConnections(); primary.close(); await backup.kill(); });
  await p.waitReady();
  const s = h2connect(p.url);
  s.on('error', () => {});
  t.after(() => s.destroy());
  const r = s.request({ ':path': '/events' });
  let closed = false;
  r.on('close', () => { closed = true; });
  r.on('error', () => {});
  r.resume();
  await once(r, 'response');
  p.proxy.controller.activate('app', 'drain test');
  p.proxy.controller.deactivate('app', 'drain test over');
  await p.waitFor((e) => e.type === 'failover_recovered', 5000, 'traffic back on level 0');
  await sleep(1800);
  assert.equal(closed, false, 'the stream survived: its level took traffic again before drain_timeout');
  r.close(h2c.NGHTTP2_CANCEL);
});
