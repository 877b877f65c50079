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
