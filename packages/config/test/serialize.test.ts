// The resolved config -> config.yaml serializer: loading what it writes gives the same resolved config, and the
// restart-only list is what the proxy refuses and what the serializer keeps.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';
import { stringify } from 'yaml';
import { DEFAULTS } from '@veloflux/config/defaults';
import { loadConfigText } from '@veloflux/config/load';
import { RESTART_ONLY, RESTART_ONLY_PATHS, restartRequired } from '@veloflux/config/restart';
import { configYaml, podOwnedYaml } from '@veloflux/config/serialize';
import type { Config } from '@veloflux/config/types';

function load(text: string): Config {
  const r = loadConfigText(text);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  return r.config;
}

const SPEC = readFileSync(new URL('../../../proxy/test/fixtures/spec-example.yaml', import.meta.url), 'utf8');
const EVERY_KEY = `
listen: "[::1]:8081"
admin: { listen: "127.0.0.1:0", token_file: /run/token }
tls:
  listen: ":8443"
  min_version: TLSv1.3
  alpn: [h2]
  certificates:
    - { cert_file: /etc/tls/tls.crt, key_file: /etc/tls/tls.key }
    - { cert_file: /etc/api/tls.crt, key_file: /etc/api/tls.key, hosts: [api.example.com, "*.API.example.com"] }
dataplane: { workers: 3, connect_timeout: 1500ms, header_timeout: 1m30s, idle_timeout: 2h, keepalive_timeout: 7s,
             max_attempts: 4, retry_budget_percent: 0, young_generation_mb: 48 }
access_log: { enabled: true, format: combined, path: /var/log/veloflux/access.log, sample: 0.25 }
pools:
  - name: p
    backends:
      - { address: "https://10.0.0.1:8443", weight: 0, region: eu, health_check: { interval: 3s } }
      - { address: "10.0.0.2:80", failover_level: 3, health_check: { path: /hz, expected_status: 204, unhealthy_threshold: 5, healthy_threshold: 4 } }
    failover: { enabled: false, strategy: delayed, delay: 250ms }
    override: { mode: active, reason: "drill" }
  - name: q
    backends: [{ address: "10.0.0.3:80" }]
    override: { mode: inactive }
routes:
  - { host: "*.example.com", path_prefix: /api, pool: p }
  - { pool: q }
failover:
  step_percent: 10
  drain_timeout: 45s
  notification:
    enabled: true
    channels:
      - { type: log, level: warn }
      - { type: webhook, url: "https://hooks.example/x", format: generic, secret: s3cret, timeout: 2s }
`;

for (const [name, text] of [['the SPEC example', SPEC], ['every key set to a non-default', EVERY_KEY], ['defaults only', 'pools: [{ name: a, backends: [{ address: "127.0.0.1:1" }] }]\nroutes: [{ pool: a }]\n']] as const) {
  test(`serializer round trip: ${name}`, () => {
    const config = load(text);
    const written = stringify(configYaml(config));
    assert.deepEqual(load(written), config);
    // Written twice, the same text: nothing depends on the source's spelling.
    assert.equal(stringify(configYaml(load(written))), written);
  });
}

test('restart-only fields: the list names config.yaml paths, each read from the resolved config and written back by podOwnedYaml', () => {
  assert.deepEqual(RESTART_ONLY_PATHS, ['listen', 'admin.listen', 'admin.token_file', 'dataplane.workers', 'dataplane.young_generation_mb', 'tls']);
  const running = load(EVERY_KEY);
  const yaml = podOwnedYaml(running);
  for (const f of RESTART_ONLY) {
    const written = f.path.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], yaml);
    assert.notEqual(written, undefined, f.path);
  }
  // The pod-owned part alone, loaded again, keeps every restart-only value: a push built on it is never refused.
  const pushed = load(stringify({ ...podOwnedYaml(running), pools: [{ name: 'x', backends: [{ address: '127.0.0.1:2' }] }], routes: [{ pool: 'x' }] }));
  assert.deepEqual(restartRequired(running, pushed), []);
});

test('restartRequired names each changed restart-only field, in list order, and nothing else', () => {
  const base = load(EVERY_KEY);
  assert.deepEqual(restartRequired(base, base), []);
  const changed = load(EVERY_KEY.replace('young_generation_mb: 48', `young_generation_mb: ${DEFAULTS.dataplane.youngGenerationMb}`).replace('[::1]:8081', '[::1]:8082').replace('max_attempts: 4', 'max_attempts: 2'));
  assert.deepEqual(restartRequired(base, changed), ['listen', 'dataplane.young_generation_mb']);
});

test('access_log belongs to the pod: podOwnedYaml keeps it (an operator push does not switch it off); an older proxy\'s view without it writes none', () => {
  const running = load(EVERY_KEY);
  assert.deepEqual(podOwnedYaml(running).access_log, { enabled: true, format: 'combined', path: '/var/log/veloflux/access.log', sample: 0.25 });
  const pushed = load(stringify({ ...podOwnedYaml(running), pools: [{ name: 'x', backends: [{ address: '127.0.0.1:2' }] }], routes: [{ pool: 'x' }] }));
  assert.deepEqual(pushed.accessLog, running.accessLog);
  const { accessLog: _gone, ...older } = running;
  assert.equal(podOwnedYaml(older).access_log, undefined);
});
