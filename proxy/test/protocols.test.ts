// The pure parts of SPEC 8, as tables: the preface sniff, grpc-timeout parsing, gRPC status mapping and message
// encoding, SNI certificate selection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERRORS } from '../src/errors.ts';
import { pickCertificate } from '../src/dataplane/certs.ts';
import { GRPC_STATUS, MAX_GRPC_TIMEOUT_MS, encodeGrpcMessage, grpcStatusOf, isGrpc, parseGrpcTimeout } from '../src/dataplane/grpc.ts';
import { H2_PREFACE, sniff } from '../src/dataplane/listener.ts';

test('sniff: the preface is HTTP/2, a prefix of it is undecided, the first differing byte decides HTTP/1.1', () => {
  const cases: [Buffer, string][] = [
    [H2_PREFACE, 'h2'],
    [Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4])]), 'h2'],
    [H2_PREFACE.subarray(0, 1), 'maybe'],
    [H2_PREFACE.subarray(0, 23), 'maybe'],
    [Buffer.from('GET / HTTP/1.1\r\n'), 'h1'],
    [Buffer.from('G'), 'h1'],
    [Buffer.from('PRI * HTTP/1.1\r\n'), 'h1'],
    [Buffer.from('PRIZE'), 'h1'],
    [Buffer.from([0x16, 0x03, 0x01]), 'h1'],
    [Buffer.alloc(0), 'maybe'],
  ];
  for (const [bytes, want] of cases) assert.equal(sniff(bytes), want, JSON.stringify(bytes.toString('latin1')));
});

test('isGrpc: application/grpc, +proto, ;params, any case; not grpc-web or others', () => {
  for (const ct of ['application/grpc', 'application/grpc+proto', 'application/grpc;charset=utf-8', 'Application/GRPC']) assert.equal(isGrpc(ct), true, ct);
  for (const ct of [undefined, '', 'application/json', 'application/grpcx', 'application/grpc-web', 'application/grp']) assert.equal(isGrpc(ct), false, String(ct));
});

test('parseGrpcTimeout: units, caps, and strict refusals', () => {
  const ok: [string, number][] = [['1H', 3_600_000], ['2M', 120_000], ['3S', 3000], ['250m', 250], ['1500u', 2], ['1u', 1], ['1n', 1], ['0S', 0], ['0n', 0], ['99999999H', MAX_GRPC_TIMEOUT_MS], ['00000001S', 1000]];
  for (const [v, ms] of ok) assert.equal(parseGrpcTimeout(v), ms, v);
  for (const v of ['', 'S', '1', '123456789S', '-1S', '+1S', '1.0S', '1s', '1h', '1 S', '1SS', '0x1S', '1e2m', '１S', '1S\n']) {
    const r = parseGrpcTimeout(v);
    assert.ok(typeof r === 'object' && /grpc-timeout must be 1 to 8 digits and a unit/.test(r.error), JSON.stringify(v));
  }
  // The message quotes a bounded prefix of a hostile value.
  const long = parseGrpcTimeout('9'.repeat(10_000));
  assert.ok(typeof long === 'object' && long.error.length < 200);
});

test('gRPC status of each proxy error, and grpc-message percent-encoding', () => {
  assert.equal(grpcStatusOf(ERRORS.NO_ROUTE), GRPC_STATUS.UNIMPLEMENTED);
  for (const e of [ERRORS.NO_HEALTHY_BACKEND, ERRORS.UPSTREAM_CONNECT, ERRORS.UPSTREAM_RESET, ERRORS.UPSTREAM_PROTOCOL, ERRORS.DRAINED]) assert.equal(grpcStatusOf(e), GRPC_STATUS.UNAVAILABLE, e.code);
  for (const e of [ERRORS.UPSTREAM_TIMEOUT, ERRORS.DEADLINE_EXCEEDED]) assert.equal(grpcStatusOf(e), GRPC_STATUS.DEADLINE_EXCEEDED, e.code);
  for (const e of [ERRORS.BAD_REQUEST, ERRORS.INTERNAL]) assert.equal(grpcStatusOf(e), GRPC_STATUS.INTERNAL, e.code);
  assert.equal(encodeGrpcMessage('no route for "x" 100%'), 'no route for "x" 100%25');
  assert.equal(encodeGrpcMessage('é\n'), '%C3%A9%0A');
  assert.equal(decodeURIComponent(encodeGrpcMessage('naïve 50% \u0000')), 'naïve 50% \u0000');
});

test('pickCertificate: exact > one-label wildcard > default (first without hosts, else the first)', () => {
  const certs = [
    { certFile: 'api', keyFile: '', hosts: ['api.example.com', '*.api.example.com'] },
    { certFile: 'default', keyFile: '', hosts: [] },
    { certFile: 'www', keyFile: '', hosts: ['www.example.com'] },
  ];
  const cases: [string | undefined, string][] = [
    [undefined, 'default'], ['', 'default'], ['api.example.com', 'api'], ['API.EXAMPLE.COM', 'api'], ['v1.api.example.com', 'api'],
    ['a.v1.api.example.com', 'default'], ['www.example.com', 'www'], ['example.com', 'default'], ['.api.example.com', 'default'], ['x', 'default'],
  ];
  for (const [name, want] of cases) assert.equal(certs[pickCertificate(certs, name)]?.certFile, want, String(name));
  assert.equal(pickCertificate([{ certFile: 'only', keyFile: '', hosts: ['a.io'] }], 'b.io'), 0, 'no default: the first');
});
