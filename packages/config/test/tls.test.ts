// The tls: block and failover.drain_timeout (SPEC 8): defaults, and every mistake named with its path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '@veloflux/config/load';

const POOLS = 'pools:\n  - name: a\n    backends: [{ address: "127.0.0.1:9" }]\nroutes: [{ pool: a }]\n';

function problems(yaml: string): string[] {
  const r = loadConfigText(`${yaml}${POOLS}`);
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
}

test('tls: defaults (listen :8443, TLSv1.2, alpn h2 then http/1.1), hosts lower-cased; drain_timeout 30s', () => {
  const r = loadConfigText(`tls:\n  certificates:\n    - { cert_file: /a.crt, key_file: /a.key }\n    - { cert_file: /b.crt, key_file: /b.key, hosts: ["API.example.com", "*.example.com"] }\n${POOLS}`);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  assert.deepEqual(r.config.tls, {
    listen: { host: '', port: 8443 },
    minVersion: 'TLSv1.2',
    alpn: ['h2', 'http/1.1'],
    certificates: [{ certFile: '/a.crt', keyFile: '/a.key', hosts: [] }, { certFile: '/b.crt', keyFile: '/b.key', hosts: ['api.example.com', '*.example.com'] }],
  });
  assert.equal(r.config.drainTimeoutMs, 30_000);
  const none = loadConfigText(POOLS);
  assert.ok(none.ok);
  assert.equal(none.config.tls, undefined);
});

test('tls: each mistake is reported with its path and what is allowed', () => {
  const cases: [string, RegExp][] = [
    ['tls: {}\n', /^tls\.certificates: is required/],
    ['tls: { certificates: [] }\n', /^tls\.certificates: must have at least 1 item/],
    ['tls: { min_version: "TLSv1.1", certificates: [{ cert_file: /a, key_file: /b }] }\n', /^tls\.min_version: must be one of "TLSv1\.2", "TLSv1\.3"/],
    ['tls: { alpn: ["h3"], certificates: [{ cert_file: /a, key_file: /b }] }\n', /^tls\.alpn\[0\]: must be one of "h2", "http\/1\.1"/],
    ['tls: { alpn: ["h2", "h2"], certificates: [{ cert_file: /a, key_file: /b }] }\n', /^tls\.alpn\[1\]: "h2" is listed twice/],
    ['tls: { alpn: [], certificates: [{ cert_file: /a, key_file: /b }] }\n', /^tls\.alpn: must have at least 1 item/],
    ['tls: { certificates: [{ cert_file: "", key_file: /b }] }\n', /^tls\.certificates\[0\]\.cert_file: /],
    ['tls: { certificates: [{ cert_file: /a }] }\n', /^tls\.certificates\[0\]\.key_file: is required/],
    ['tls: { certificates: [{ cert_file: /a, key_file: /b, hosts: ["bad host"] }] }\n', /^tls\.certificates\[0\]\.hosts\[0\]: .*a host name or "\*\.suffix"/],
    ['tls: { certificates: [{ cert_file: /a, key_file: /b, hosts: [] }] }\n', /^tls\.certificates\[0\]\.hosts: must have at least 1 item/],
    ['tls: { certificates: [{ cert_file: /a, key_file: /b, hosts: [x.io] }, { cert_file: /c, key_file: /d, hosts: [X.io] }] }\n', /^tls\.certificates\[1\]\.hosts\[0\]: "X\.io" is also a host of tls\.certificates\[0\]/],
    ['tls: { certificate: [] }\n', /^tls\.certificate: unknown key; allowed here: listen, min_version, alpn, certificates/],
    ['tls: { listen: "nope", certificates: [{ cert_file: /a, key_file: /b }] }\n', /^tls\.listen: /],
    ['listen: ":8443"\ntls: { certificates: [{ cert_file: /a, key_file: /b }] }\n', /^tls\.listen: must not be the cleartext listen address/],
    ['tls: "yes"\n', /^tls: must be a mapping/],
    ['failover: { drain_timeout: "30" }\n', /^failover\.drain_timeout: must be a duration/],
  ];
  for (const [yaml, want] of cases) {
    const p = problems(yaml);
    assert.ok(p.some((x) => want.test(x)), `${yaml.trim()}: ${JSON.stringify(p)}`);
  }
});
