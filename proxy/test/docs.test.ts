import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { configurationDoc, errorsDoc } from '../../scripts/docs.ts';
import { ERRORS } from '../src/errors.ts';

const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

test('docs/configuration.md is current with the schema (run npm run docs)', () => {
  assert.equal(read('docs/configuration.md'), configurationDoc());
});

test('docs/errors.md is current and lists every error code (run npm run docs)', () => {
  const doc = read('docs/errors.md');
  assert.equal(doc, errorsDoc());
  for (const e of Object.values(ERRORS)) assert.ok(doc.includes(`\`${e.code}\` | ${e.status} |`), e.code);
});

test('every config key of the SPEC example is documented', () => {
  const doc = read('docs/configuration.md');
  for (const key of ['listen', 'admin.listen', 'region', 'pools[].backends[].health_check.unhealthy_threshold', 'pools[].backends[].failover_level', 'routes[].path_prefix', 'failover.recovery_interval', 'failover.step_percent', 'failover.notification.channels']) {
    assert.ok(doc.includes(`| \`${key}\` |`), key);
  }
});

test('docs/admin-api.md lists every endpoint of the OpenAPI document', async () => {
  const { OPENAPI } = await import('../src/admin/openapi.ts');
  const doc = read('docs/admin-api.md');
  for (const [path, ops] of Object.entries(OPENAPI.paths)) {
    for (const method of Object.keys(ops)) assert.match(doc, new RegExp(`\\| ${method.toUpperCase()} \\| \`${path.replace(/[/]/g, '\\/')}`), `${method} ${path}`);
  }
});

test('docs/metrics.md lists every metric the proxy exposes', async () => {
  const { TrafficMetrics } = await import('../src/metrics/traffic.ts');
  const { ControlMetrics } = await import('../src/metrics/control.ts');
  const { Controller } = await import('../src/control/controller.ts');
  const { loadConfigText } = await import('@veloflux/config/load');
  const loaded = loadConfigText('pools:\n  - name: a\n    backends: [{ address: "127.0.0.1:9" }]\nroutes: [{ pool: a }]\n');
  assert.ok(loaded.ok);
  const controller = new Controller(loaded.config, loaded.version, { probe: async () => ({ ok: true }) });
  const names = [
    ...(await new ControlMetrics(() => controller).registry.getMetricsAsJSON()).map((m) => m.name),
    ...new TrafficMetrics().families.map((f) => f.name),
  ];
  const doc = read('docs/metrics.md');
  assert.ok(names.length >= 16);
  for (const n of names) assert.ok(doc.includes(`| \`${n}\` |`), n);
});
