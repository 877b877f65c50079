// SPEC 8 config: pool protocol and tls, health_check type/service; each mistake named by its path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '@veloflux/config/load';
import { configYaml } from '@veloflux/config/serialize';
import { stringify } from 'yaml';

function pool(fields: string, backend = '{ address: "10.0.0.5:50051" }'): string {
  return `pools:\n  - name: api\n${fields}    backends:\n      - ${backend}\n`;
}

test('SPEC 8 example: protocol h2c, grpc/http/tcp checks, tls block for an https:// backend', () => {
  const r = loadConfigText(`pools:
  - name: "grpc-api"
    protocol: "h2c"
    backends:
      - address: "10.0.0.5:50051"
        health_check: { type: "grpc", service: "my.pkg.Service", interval: "2s" }
      - address: "10.0.1.5:50051"
        failover: true
        health_check: { type: "http", path: "/health" }
      - address: "10.0.2.5:5432"
        failover_level: 2
        health_check: { type: "tcp" }
  - name: "secure"
    protocol: "h2"
    tls: { ca_file: "/etc/ca.pem", server_name: "grpc.internal", insecure_skip_verify: false }
    backends:
      - address: "10.0.3.5:443"
`);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  const [g, s] = r.config.pools;
  assert.equal(g?.protocol, 'h2c');
  assert.deepEqual(g?.backends.map((b) => [b.healthCheck.type, b.healthCheck.service, b.healthCheck.path, b.transport.secure]), [['grpc', 'my.pkg.Service', '/health', false], ['http', '', '/health', false], ['tcp', '', '/health', false]]);
  assert.deepEqual(s?.backends[0]?.transport, { protocol: 'h2', secure: true, tls: { caFile: '/etc/ca.pem', serverName: 'grpc.internal', insecureSkipVerify: false } });
  // The resolved config written back as YAML loads to the same config (the operator's render depends on it).
  const again = loadConfigText(stringify(configYaml(r.config)));
  assert.ok(again.ok, again.ok ? '' : JSON.stringify(again.issues));
  assert.deepEqual(again.config.pools, r.config.pools);
});

test('defaults: protocol http1, check type http; an https:// backend is secure over HTTP/1.1', () => {
  const r = loadConfigText(pool('', '{ address: "https://b.example:8443" }'));
  assert.ok(r.ok);
  assert.equal(r.config.pools[0]?.protocol, 'http1');
  assert.deepEqual(r.config.pools[0]?.backends[0]?.transport, { protocol: 'http1', secure: true, tls: undefined });
  assert.equal(r.config.pools[0]?.backends[0]?.healthCheck.type, 'http');
});

const BAD: [string, string, string][] = [
  ['unknown protocol', pool('    protocol: "h3"\n'), 'pools[0].protocol: must be one of "http1", "h2", "h2c", "auto", got "h3"'],
  ['h2c to an https:// address', pool('    protocol: "h2c"\n', '{ address: "https://10.0.0.5:443" }'), 'pools[0].backends[0].address: h2c is HTTP/2 without TLS, but "https://10.0.0.5:443" is an https:// address (use protocol h2 for HTTP/2 over TLS)'],
  ['tls on a cleartext pool', pool('    protocol: "h2c"\n    tls: { insecure_skip_verify: true }\n'), 'pools[0].tls: applies to https:// backends and protocol h2, but this pool has neither (its backends are cleartext)'],
  ['ca_file with skip-verify', pool('    protocol: "h2"\n    tls: { ca_file: "/ca.pem", insecure_skip_verify: true }\n'), 'pools[0].tls.ca_file: is not used with insecure_skip_verify: true (nothing is verified); set one or the other'],
  ['server_name not a host name', pool('    protocol: "h2"\n    tls: { server_name: "a b" }\n'), 'pools[0].tls.server_name: must be a host name, got "a b"'],
  ['unknown tls key', pool('    protocol: "h2"\n    tls: { verify: false }\n'), 'pools[0].tls.verify: unknown key; allowed here: ca_file, server_name, insecure_skip_verify'],
  ['unknown check type', pool('', '{ address: "10.0.0.5:80", health_check: { type: "icmp" } }'), 'pools[0].backends[0].health_check.type: must be one of "http", "grpc", "tcp", got "icmp"'],
  ['path on a tcp check', pool('', '{ address: "10.0.0.5:80", health_check: { type: "tcp", path: "/x" } }'), 'pools[0].backends[0].health_check.path: is only for type http, but the type is tcp'],
  ['expected_status on a grpc check', pool('    protocol: "h2c"\n', '{ address: "10.0.0.5:80", health_check: { type: "grpc", expected_status: 200 } }'), 'pools[0].backends[0].health_check.expected_status: is only for type http, but the type is grpc'],
  ['service on an http check', pool('', '{ address: "10.0.0.5:80", health_check: { service: "x" } }'), 'pools[0].backends[0].health_check.service: is only for type grpc, but the type is http'],
  ['grpc check on an http1 pool', pool('', '{ address: "10.0.0.5:80", health_check: { type: "grpc" } }'), 'pools[0].backends[0].health_check.type: grpc needs HTTP/2 to the backend, but pools[0].protocol is http1 (set protocol h2c, h2 or auto)'],
  ['service with a control character', pool('    protocol: "h2c"\n', '{ address: "10.0.0.5:80", health_check: { type: "grpc", service: "a\\nb" } }'), 'pools[0].backends[0].health_check.service: must be a gRPC service name: up to 512 letters, digits, "_", "." or "-", got "a\\nb"'],
];

for (const [name, text, message] of BAD) {
  test(`invalid: ${name}`, () => {
    const r = loadConfigText(text);
    assert.equal(r.ok, false, name);
    if (r.ok) return;
    const got = r.issues.map((i) => `${i.path}: ${i.message}`);
    assert.ok(got.includes(message), `expected ${JSON.stringify(message)} among ${JSON.stringify(got)}`);
  });
}
