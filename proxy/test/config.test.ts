import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { formatDuration, parseDuration } from '@veloflux/config/duration';
import { loadConfigText, parseYaml } from '@veloflux/config/load';
import { backendSchema, configSchema, poolSchema } from '@veloflux/config/schema';

const seed = readFileSync(new URL('../../docs/seed/FAILOVER.pt-BR.md', import.meta.url), 'utf8');
const yamlBlocks = [...seed.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);

const SPEC_EXAMPLE = readFileSync(new URL('./fixtures/spec-example.yaml', import.meta.url), 'utf8');

test('the seed document has the four YAML blocks this test expects', () => {
  assert.equal(yamlBlocks.length, 4);
});

test('seed block 1 (the manual configuration) is a complete, valid config', () => {
  const r = loadConfigText(yamlBlocks[0] as string);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  const pool = r.config.pools[0];
  assert.equal(pool?.name, 'app-principal-pool');
  assert.deepEqual(pool?.backends.map((b) => [b.address, b.level, b.healthCheck.unhealthyThreshold]), [['servidor-principal:80', 0, 2], ['servidor-backup:80', 1, 2]]);
  assert.equal(r.config.routes[0]?.host, 'sua-aplicacao.com');
  assert.equal(r.config.notification.channels.length, 2);
});

test('seed block 2 (several applications) validates as a config fragment', () => {
  const r = parseYaml(yamlBlocks[1] as string, configSchema, true);
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.value?.routes.map((x) => [x.host, x.pool]), [['app1.example.com', 'app1-pool'], ['app2.example.com', 'app2-pool']]);
});

test('seed block 3 (cascade) validates as a pool fragment with levels 0, 1, 2', () => {
  const r = parseYaml(yamlBlocks[2] as string, poolSchema, true);
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.value?.backends.map((b) => b.failover_level), [0, 1, 2]);
});

test('seed block 4 (regions) validates as a config fragment', () => {
  const r = parseYaml(yamlBlocks[3] as string, configSchema, true);
  assert.deepEqual(r.issues, []);
  assert.deepEqual(r.value?.pools[0]?.backends.map((b) => [b.region, b.failover ?? false]), [['us-east', false], ['us-west', true], ['eu-west', true]]);
});

test('the SPEC section 1 example is a complete, valid config with every feature', () => {
  const r = loadConfigText(SPEC_EXAMPLE);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  const pool = r.config.pools[0];
  assert.deepEqual(pool?.backends.map((b) => b.level), [0, 1, 2]);
  assert.equal(pool?.policy.strategy, 'graceful', 'the pool override wins');
  assert.equal(pool?.policy.recoveryIntervalMs, 10_000, 'the rest is inherited');
  assert.equal(r.config.region, 'us-east');
  assert.equal(pool?.backends[0]?.healthCheck.timeoutMs, 2000);
  assert.equal(pool?.backends[1]?.healthCheck.intervalMs, 5000, 'check_interval is the default interval');
});

test('a single backend fragment validates against the backend schema', () => {
  assert.deepEqual(parseYaml('address: "tertiary:80"\nfailover_level: 2\n', backendSchema).issues, []);
});

const base = (pools: string, rest = 'routes: [{ pool: a }]\n'): string => `pools:\n${pools}${rest}`;
const oneBackend = '  - name: a\n    backends:\n      - address: "p:80"\n';

// Each bad config gives exactly these problems, each with its path and line.
const BAD: { name: string; yaml: string; issues: string[] }[] = [
  {
    name: 'a duration without unit',
    yaml: base('  - name: a\n    backends:\n      - address: "p:80"\n        health_check: { timeout: "2" }\n'),
    issues: ['5: pools[0].backends[0].health_check.timeout: must be a duration like "2s" (units ms, s, m, h), got "2"'],
  },
  {
    name: 'unknown keys at several depths',
    yaml: `${base(`${oneBackend}        wieght: 5\n`)}failover: { stratgy: immediate }\n`,
    issues: [
      '5: pools[0].backends[0].wieght: unknown key; allowed here: address, weight, failover, failover_level, region, health_check',
      '7: failover.stratgy: unknown key; allowed here: enabled, strategy, check_interval, recovery_interval, delay, step_percent, step_interval, hold_down, ramp_gate, failback, drain_timeout, notification',
    ],
  },
  {
    name: 'timeout not below interval',
    yaml: base('  - name: a\n    backends:\n      - address: "p:80"\n        health_check: { interval: "1s", timeout: "1s" }\n'),
    issues: ['5: pools[0].backends[0].health_check.timeout: must be less than the interval (1000ms), got 1000ms'],
  },
  {
    name: 'no level-0 backend',
    yaml: base('  - name: a\n    backends:\n      - address: "p:80"\n        failover: true\n'),
    issues: ['4: pools[0].backends: needs at least one level-0 (primary) backend: one without failover: true or failover_level > 0'],
  },
  {
    name: 'a route naming an unknown pool, and a duplicate pool',
    yaml: base(`${oneBackend}${oneBackend}`, 'routes: [{ pool: b }]\n'),
    issues: ['5: pools[1].name: duplicate pool name "a" (also pools[0])', '8: routes[0].pool: names no pool: "b" (pools: "a")'],
  },
  {
    name: 'bad values',
    yaml: `${base('  - name: a\n    backends:\n      - address: "p"\n        weight: -1\n        health_check: { unhealthy_threshold: 0 }\n')}failover:\n  strategy: fast\n  step_percent: 101\n`,
    issues: [
      '4: pools[0].backends[0].address: must be "host:port" or "http://host:port" with a port 1-65535, got "p"',
      '5: pools[0].backends[0].weight: must be a whole number from 0 to 1000000, got -1',
      '6: pools[0].backends[0].health_check.unhealthy_threshold: must be a whole number from 1 to 100, got 0',
      '9: failover.strategy: must be one of "immediate", "graceful", "delayed", got "fast"',
      '10: failover.step_percent: must be a whole number from 1 to 100, got 101',
    ],
  },
  {
    name: 'missing required fields',
    yaml: 'pools:\n  - backends:\n      - weight: 1\n',
    issues: [
      '2: pools[0].name: is required (Pool name, unique in the config; routes refer to it.)',
      '3: pools[0].backends[0].address: is required (Where the backend listens: "host:port", "http://host:port" or "https://host:port".)',
    ],
  },
  {
    name: 'failover: true contradicting failover_level: 0',
    yaml: base(`${oneBackend}      - address: "q:80"\n        failover: true\n        failover_level: 0\n`),
    issues: ['6: pools[0].backends[1].failover: failover: true contradicts failover_level: 0 (failover: true means a level >= 1)'],
  },
  { name: 'YAML syntax error', yaml: 'pools: [\n', issues: ['2: (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]'] },
  { name: 'not a mapping', yaml: '- a\n', issues: ['1: (top level): must be a mapping, got a list'] },
  { name: 'a bad listen address', yaml: `listen: "8080"\n${base(oneBackend)}`, issues: ['1: listen: must be ":port" or "host:port" with a port 0-65535, got "8080"'] },
];

for (const c of BAD) {
  test(`bad config: ${c.name}`, () => {
    const r = loadConfigText(c.yaml);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(r.issues.map((i) => `${i.line}: ${i.path}: ${i.message}`), c.issues);
  });
}

test('durations: parse and format', () => {
  const cases: [string, number | undefined][] = [['500ms', 500], ['5s', 5000], ['2m', 120_000], ['1h', 3_600_000], ['1m30s', 90_000], ['1.5s', 1500], ['2', undefined], ['s', undefined], ['-1s', undefined], ['5 s', undefined]];
  for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  assert.deepEqual([1500, 2000, 120_000, 5_400_000, 0].map(formatDuration), ['1500ms', '2s', '2m', '1h30m', '0s']);
});

test('a secret value never appears in a validation message', () => {
  const r = loadConfigText(`${base(oneBackend)}failover:\n  notification:\n    channels:\n      - { type: email, smtp_server: s, smtp_password: "hunter2-secret", recipients: [], bogus: 1 }\n      - { type: webhook, url: "https://hooks.example/T0/secret-path", format: teams }\n`);
  assert.equal(r.ok, false);
  if (r.ok) return;
  const text = JSON.stringify(r.issues);
  assert.ok(!text.includes('hunter2-secret') && !text.includes('secret-path'), text);
  assert.deepEqual(r.issues.map((i) => i.path), ['failover.notification.channels[0].bogus', 'failover.notification.channels[0].recipients', 'failover.notification.channels[1].format']);
});

test('a config with no pools is valid (an operator-managed proxy starts empty); routes still need their pools', () => {
  const empty = loadConfigText('listen: ":8080"\n');
  assert.ok(empty.ok);
  assert.deepEqual([empty.config.pools.length, empty.config.routes.length], [0, 0]);
  const dangling = loadConfigText('routes: [{ pool: a }]\n');
  assert.equal(dangling.ok, false);
  if (!dangling.ok) assert.deepEqual(dangling.issues.map((i) => i.message), ['names no pool: "a" (pools: )']);
});
