// health_check.type grpc (grpc.health.v1 against a real @grpc/grpc-js health service) and tcp, through a real
// proxy's prober; the wire decoding of health responses against hostile bytes.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createH2Server } from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import { createServer as createTcpServer } from 'node:net';
import { hostname } from 'node:os';
import { test } from 'node:test';
import { decodeHealthResponse, encodeHealthRequest } from '../src/health/grpc-health.ts';
import { makeCa, startEchoServer } from './helpers/grpc.ts';
import type { EchoServer } from './helpers/grpc.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

function frame(msg: number[]): Buffer {
  const b = Buffer.alloc(5 + msg.length);
  b.writeUInt32BE(msg.length, 1);
  Buffer.from(msg).copy(b, 5);
  return b;
}

test('grpc.health.v1 wire format: requests encode the service; responses decode, hostile bytes are errors, never throws', () => {
  assert.deepEqual([...encodeHealthRequest('')], [0, 0, 0, 0, 0]);
  assert.deepEqual([...encodeHealthRequest('a.B')], [0, 0, 0, 0, 5, 0x0a, 3, 0x61, 0x2e, 0x42]);
  const table: [string, Buffer, unknown][] = [
    ['SERVING', frame([0x08, 1]), { status: 'SERVING' }],
    ['NOT_SERVING', frame([0x08, 2]), { status: 'NOT_SERVING' }],
    ['empty message (status defaults to UNKNOWN)', frame([]), { status: 'UNKNOWN' }],
    ['unknown fields skipped', frame([0x12, 2, 0x41, 0x42, 0x08, 1, 0x1d, 1, 2, 3, 4]), { status: 'SERVING' }],
    ['status out of the enum', frame([0x08, 9]), { status: 'status 9' }],
    ['too short', Buffer.from([0, 0]), { error: 'the health response is not a gRPC message (2 bytes)' }],
    ['compressed flag', Buffer.from([1, 0, 0, 0, 0]), { error: 'the health response is compressed, though none was offered' }],
    ['bad flag', Buffer.from([7, 0, 0, 0, 0]), { error: 'the health response has an invalid frame flag 7' }],
    ['length lies', Buffer.from([0, 0, 0, 0, 9, 8, 1]), { error: 'the health response frame says 9 bytes but carries 2' }],
    ['truncated varint', frame([0x08, 0x80]), { error: 'the health response is not valid protobuf (truncated varint)' }],
    ['endless varint', frame([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), { error: 'the health response is not valid protobuf (truncated varint)' }],
    ['bytes field past the end', frame([0x12, 50, 1]), { error: 'the health response is not valid protobuf (truncated bytes field)' }],
    ['wire type 7', frame([0x0f]), { error: 'the health response is not valid protobuf (wire type 7)' }],
    ['field 0', frame([0x00, 1]), { error: 'the health response is not valid protobuf (field number 0)' }],
    ['truncated fixed64', frame([0x09, 1, 2]), { error: 'the health response is not valid protobuf (truncated fixed field)' }],
  ];
  for (const [name, bytes, want] of table) assert.deepEqual(decodeHealthResponse(bytes), want, name);
  // Random bytes: an answer or an error, never a throw.
  let seed = 7;
  for (let i = 0; i < 2000; i++) {
    const len = (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 40;
    const b = Buffer.alloc(len);
    for (let j = 0; j < len; j++) b[j] = (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256;
    if (len >= 5) b.writeUInt32BE(len - 5, 1);
    const r = decodeHealthResponse(b);
    assert.ok('status' in r || 'error' in r);
  }
});

async function proxyWith(t: { after: (fn: () => Promise<void> | void) => void }, yaml: string): Promise<TestProxy> {
  const p = await startTestProxy(yaml);
  t.after(() => p.stop());
  return p;
}

function pool(protocol: string, backends: string, extra = ''): string {
  return `pools:\n  - name: app\n    protocol: "${protocol}"\n${extra}    backends:\n${backends}routes:\n  - pool: app\n`;
}

const FAST = 'interval: "150ms", timeout: "100ms", unhealthy_threshold: 1, healthy_threshold: 1';

test('grpc check against a real grpc.health.v1 service: SERVING is up, NOT_SERVING and an unknown service are down, a hanging health server times out; probe metadata', async (t) => {
  const g = await startEchoServer('g');
  t.after(() => g.stop());
  g.health.set('my.pkg.Service', 'SERVING');
  const p = await proxyWith(t, pool('h2c', `      - address: "${g.address}"\n        health_check: { type: "grpc", service: "my.pkg.Service", ${FAST} }\n`));
  await p.waitReady();
  assert.equal(p.events.filter((e) => e.type === 'backend_down').length, 0, 'SERVING is up');
  const md = g.lastMetadata?.getMap() ?? {};
  assert.match(String(md['user-agent']), /^veloflux-health-check\/\d/);
  assert.equal(md['x-veloflux-proxy'], process.env.POD_NAME || hostname());
  assert.ok(md['grpc-timeout'] === undefined, 'grpc-timeout is a header grpc-js consumes, not metadata');

  g.health.set('my.pkg.Service', 'NOT_SERVING');
  const down = await p.waitFor((e) => e.type === 'backend_down', 5000, 'backend_down on NOT_SERVING');
  assert.equal(down.type === 'backend_down' && down.error, 'NOT_SERVING (service "my.pkg.Service")');
  g.health.set('my.pkg.Service', 'SERVING');
  await p.waitFor((e) => e.type === 'backend_up', 5000, 'backend_up on SERVING');
  const n = p.events.length;

  g.health.delete('my.pkg.Service');
  const unknown = await p.waitFor((e) => e.type === 'backend_down' && p.events.indexOf(e) >= n, 5000, 'backend_down for an unknown service');
  assert.equal(unknown.type === 'backend_down' && unknown.error, 'grpc-status 5: unknown service');
  g.health.set('my.pkg.Service', 'SERVING');
  await p.waitFor((e) => e.type === 'backend_up' && p.events.indexOf(e) >= n, 5000, 'backend_up again');
  const m = p.events.length;

  g.health.set('my.pkg.Service', 'hang');
  const hung = await p.waitFor((e) => e.type === 'backend_down' && p.events.indexOf(e) >= m, 5000, 'backend_down on a hanging health server');
  assert.equal(hung.type === 'backend_down' && hung.error, 'timeout after 100ms');
});

test('grpc check over TLS (protocol h2, ca_file): SERVING is up; a certificate from another CA is down', async (t) => {
  const ca = makeCa();
  const other = makeCa('Other');
  t.after(() => { ca.remove(); other.remove(); });
  const good = await startEchoServer('good', { tls: ca.issue(['127.0.0.1']) });
  const bad = await startEchoServer('bad', { tls: other.issue(['127.0.0.1']) });
  t.after(async () => { await good.stop(); await bad.stop(); });
  const p = await proxyWith(t, pool('h2', `      - address: "${good.address}"\n        health_check: { type: "grpc", ${FAST} }\n      - address: "${bad.address}"\n        failover_level: 1\n        health_check: { type: "grpc", ${FAST} }\n`, `    tls: { ca_file: "${ca.caFile}" }\n`));
  await p.waitReady();
  const down = await p.waitFor((e) => e.type === 'backend_down', 5000);
  assert.ok(down.type === 'backend_down' && down.backend === bad.address && down.error === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', JSON.stringify(down));
  assert.equal(p.events.filter((e) => e.type === 'backend_down' && e.backend === good.address).length, 0);
  assert.ok((good.calls.Check ?? 0) >= 1 && (bad.calls.Check ?? 0) === 0);
});

test('grpc check against a health server that answers garbage, HTTP errors or oversized bodies: down with the reason, the proxy lives on', async (t) => {
  const cases: Record<string, (s: ServerHttp2Stream) => void> = {
    '/garbage': (s) => { s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true }); s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' })); s.end(Buffer.from([0, 0, 0, 0, 3, 0xff, 0xff, 0xff])); },
    '/http404': (s) => { s.respond({ ':status': 404 }); s.end('not here'); },
    '/huge': (s) => { s.respond({ ':status': 200, 'content-type': 'application/grpc' }); s.end(Buffer.alloc(200_000, 1)); },
    '/nostatus': (s) => { s.respond({ ':status': 200, 'content-type': 'application/grpc' }); s.end(Buffer.from([0, 0, 0, 0, 2, 8, 1])); },
    '/reset': (s) => s.destroy(new Error('reset')),
  };
  let mode = '/garbage';
  const server = createH2Server();
  server.on('stream', (s) => { s.on('error', () => {}); (cases[mode] as (s: ServerHttp2Stream) => void)(s); });
  server.on('sessionError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as { port: number }).port;
  const p = await proxyWith(t, pool('h2c', `      - address: "127.0.0.1:${port}"\n        health_check: { type: "grpc", ${FAST} }\n`));
  const want: Record<string, RegExp> = {
    '/garbage': /^the health response is not valid protobuf/,
    '/http404': /^HTTP status 404, expected 200 with a gRPC answer$/,
    '/huge': /^the health response is larger than 65536 bytes$/,
    '/nostatus': /^the health response has no grpc-status$/,
    '/reset': /^ERR_HTTP2_STREAM_ERROR$/,
  };
  const errors = new Set<string>();
  for (const m of Object.keys(cases)) {
    mode = m;
    const deadline = Date.now() + 5000;
    let matched = false;
    while (Date.now() < deadline && !matched) {
      // A backend that stays down emits no new event: each probe's error is read from the status.
      const last = p.proxy.controller.status()[0]?.backends[0]?.lastError;
      if (last) errors.add(last);
      matched = [...errors].some((x) => (want[m] as RegExp).test(x));
      if (!matched) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(matched, `${m}: errors seen ${JSON.stringify([...errors])}`);
  }
  assert.equal((await fetch(`${p.adminUrl}/healthz`)).status, 200);
});

test('tcp check: a listening port is up, a closed one is down (connection refused)', async (t) => {
  const listening = createTcpServer((s) => s.destroy());
  listening.listen(0, '127.0.0.1');
  await once(listening, 'listening');
  const closed = createTcpServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => r()));
  t.after(() => new Promise<void>((r) => listening.close(() => r())));
  const port = (listening.address() as { port: number }).port;
  const p = await proxyWith(t, pool('http1', `      - address: "127.0.0.1:${port}"\n        health_check: { type: "tcp", ${FAST} }\n      - address: "127.0.0.1:${closedPort}"\n        failover_level: 1\n        health_check: { type: "tcp", ${FAST} }\n`));
  await p.waitReady();
  const down = await p.waitFor((e) => e.type === 'backend_down', 5000);
  assert.ok(down.type === 'backend_down' && down.backend === `127.0.0.1:${closedPort}` && down.error === 'ECONNREFUSED', JSON.stringify(down));
  assert.equal(p.events.filter((e) => e.type === 'backend_down' && e.backend === `127.0.0.1:${port}`).length, 0);
});

export type { EchoServer };
