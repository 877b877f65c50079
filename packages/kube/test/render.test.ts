// render(): FailoverPools + EndpointSlices + Secrets -> a pod's config.yaml, as tables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parse } from 'yaml';
import { loadConfigText } from '@veloflux/config/load';
import { render, renderOverride, selects } from '@veloflux/kube/render';
import type { EndpointSliceLike, RenderInput } from '@veloflux/kube/render';
import type { FailoverPool, FailoverPoolSpec } from '@veloflux/kube/types';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const base = { listen: '127.0.0.5:18080', admin: { listen: '127.0.0.5:19000' } };

function fp(name: string, spec: Partial<FailoverPoolSpec> = {}, created = '2025-01-01T00:00:00Z'): FailoverPool {
  return {
    metadata: { name, namespace: 'ns', generation: 1, creationTimestamp: created },
    spec: {
      proxySelector: { matchLabels: { app: 'proxy' } },
      routes: [{ hosts: [`${name}.example.com`], pathPrefix: '/' }],
      backends: [{ address: '10.0.0.1:80' }, { address: '10.0.0.2:80', failoverLevel: 1 }],
      ...spec,
    },
  };
}

function input(pools: FailoverPool[], more: Partial<RenderInput> = {}): RenderInput {
  return { labels: { app: 'proxy' }, pools, endpointSlices: [], secrets: new Map(), base, now: NOW, ...more };
}

const doc = (text: string | undefined): Record<string, any> => parse(text ?? 'null') as Record<string, any>;

test('selects: matchLabels and matchExpressions', () => {
  const labels = { app: 'proxy', tier: 'edge' };
  const rows: [Parameters<typeof selects>[0], boolean][] = [
    [{ matchLabels: { app: 'proxy' } }, true],
    [{ matchLabels: { app: 'other' } }, false],
    [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['edge', 'core'] }] }, true],
    [{ matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['edge'] }] }, false],
    [{ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }, true],
    [{ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }, false],
    [{}, true],
    [undefined, false],
  ];
  for (const [selector, want] of rows) assert.equal(selects(selector, labels), want, JSON.stringify(selector));
});

test('one pool renders to the proxy format, keeps the pod\'s own keys, and hashes like the proxy', () => {
  const r = render(input([fp('app', {
    strategy: 'graceful', recoveryInterval: '30s', stepPercent: 50,
    backends: [{ address: '10.0.0.1:80', weight: 50, region: 'eu', healthCheck: { path: '/hz', interval: '2s', timeout: '1s', unhealthyThreshold: 1 } }, { address: '10.0.0.2:80', failoverLevel: 1 }],
  })]));
  assert.deepEqual(r.pools, ['app']);
  assert.deepEqual(doc(r.text), {
    listen: '127.0.0.5:18080',
    admin: { listen: '127.0.0.5:19000' },
    pools: [{
      name: 'app',
      backends: [
        { address: '10.0.0.1:80', weight: 50, region: 'eu', health_check: { path: '/hz', interval: '2s', timeout: '1s', unhealthy_threshold: 1 } },
        { address: '10.0.0.2:80', failover_level: 1 },
      ],
      failover: { strategy: 'graceful', recovery_interval: '30s', step_percent: 50 },
      consensus: { mode: 'shared' },
    }],
    routes: [{ host: 'app.example.com', path_prefix: '/', pool: 'app' }],
  });
  const loaded = loadConfigText(r.text as string);
  assert.ok(loaded.ok);
  assert.equal(r.version, loaded.version);
});

test('pods that no pool selects get an empty config; a pool that selects other pods is left out', () => {
  const empty = render(input([fp('app')], { labels: { app: 'other' } }));
  assert.deepEqual(doc(empty.text), { ...base, pools: [], routes: [] });
  assert.equal(empty.version, (loadConfigText(empty.text) as { version: string }).version);
  const r = render(input([fp('a'), fp('b', { proxySelector: { matchLabels: { app: 'other' } } })]));
  assert.deepEqual(r.pools, ['a']);
});

test('conflicting routes: the later pool (creation time, then name) is refused with Conflict on every pod', () => {
  const rows: { pools: FailoverPool[]; kept: string[]; refused: string }[] = [
    { pools: [fp('old', {}, '2025-01-01T00:00:00Z'), fp('new', { routes: [{ hosts: ['OLD.example.com'] }] }, '2025-02-01T00:00:00Z')], kept: ['old'], refused: 'new' },
    { pools: [fp('new', { routes: [{ hosts: ['old.example.com'] }] }, '2025-02-01T00:00:00Z'), fp('old', {}, '2025-01-01T00:00:00Z')], kept: ['old'], refused: 'new' },
    { pools: [fp('b', { routes: [{}] }), fp('a', { routes: [{ pathPrefix: '/' }] })], kept: ['a'], refused: 'b' },
  ];
  for (const row of rows) {
    const r = render(input(row.pools));
    assert.deepEqual(r.pools, row.kept);
    assert.equal(r.refused.get(row.refused)?.reason, 'Conflict');
    assert.match(r.refused.get(row.refused)?.message ?? '', /already routed to FailoverPool "(old|a)"/);
  }
  // Same host, different prefixes: no conflict.
  const r = render(input([fp('a'), fp('b', { routes: [{ hosts: ['a.example.com'], pathPrefix: '/api' }] })]));
  assert.deepEqual(r.pools, ['a', 'b']);
});

test('service backends expand to their ready endpoints (all, when none is ready), by port name or number', () => {
  const slices: EndpointSliceLike[] = [
    { metadata: { labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv4', ports: [{ name: 'http', port: 8080 }],
      endpoints: [{ addresses: ['10.1.0.1'], conditions: { ready: true } }, { addresses: ['10.1.0.2'], conditions: { ready: false } }, { addresses: ['10.1.0.3'] }] },
    { metadata: { labels: { 'kubernetes.io/service-name': 'web' } }, addressType: 'IPv6', ports: [{ name: 'http', port: 8080 }], endpoints: [{ addresses: ['fd00::1'] }] },
    { metadata: { labels: { 'kubernetes.io/service-name': 'other' } }, ports: [{ name: 'http', port: 80 }], endpoints: [{ addresses: ['10.9.9.9'] }] },
  ];
  for (const port of ['http', 8080] as const) {
    const r = render(input([fp('app', { backends: [{ service: { name: 'web', port }, weight: 10 }, { address: 'backup:80', failoverLevel: 1 }] })], { endpointSlices: slices }));
    assert.deepEqual(doc(r.text).pools[0].backends, [
      { address: '10.1.0.1:8080', weight: 10 }, { address: '10.1.0.3:8080', weight: 10 }, { address: '[fd00::1]:8080', weight: 10 },
      { address: 'backup:80', failover_level: 1 },
    ]);
  }
  // None ready: all endpoints stay, for the proxy's health checks to fail the level over.
  const notReady: EndpointSliceLike[] = [{ metadata: { labels: { 'kubernetes.io/service-name': 'web' } }, ports: [{ port: 80 }], endpoints: [{ addresses: ['10.1.0.9'], conditions: { ready: false } }] }];
  const down = render(input([fp('app', { backends: [{ service: { name: 'web', port: 80 } }, { address: 'b:80', failoverLevel: 1 }] })], { endpointSlices: notReady }));
  assert.deepEqual(doc(down.text).pools[0].backends, [{ address: '10.1.0.9:80' }, { address: 'b:80', failover_level: 1 }]);
  // No endpoint at all at level 0: the proxy would refuse the pool, so it is left out with the proxy's message.
  const r = render(input([fp('app', { backends: [{ service: { name: 'none', port: 80 } }, { address: 'b:80', failoverLevel: 1 }] }), fp('ok')]));
  assert.deepEqual(r.pools, ['ok']);
  assert.equal(r.refused.get('app')?.reason, 'InvalidConfig');
  assert.match(r.refused.get('app')?.message ?? '', /level-0|level 0/);
});

test('notification secrets come from Secrets; a missing one refuses the pool', () => {
  const notifications = { channels: [
    { type: 'webhook' as const, urlSecretRef: { name: 'hooks' }, hmacSecretRef: { name: 'hooks', key: 'hmac' }, format: 'slack' as const },
    { type: 'email' as const, smtpServer: 'smtp.example.com', recipients: ['ops@example.com'], credentialsSecretRef: { name: 'smtp' } },
    { type: 'log' as const },
  ] };
  const secrets = new Map<string, Record<string, string>>([['hooks', { url: 'https://hooks.example.com/T/1', hmac: 's3cret' }], ['smtp', { username: 'u@example.com', password: 'pw' }]]);
  const r = render(input([fp('app', { notifications })], { secrets }));
  assert.deepEqual(doc(r.text).failover.notification.channels, [
    { type: 'webhook', url: 'https://hooks.example.com/T/1', format: 'slack', secret: 's3cret' },
    { type: 'email', smtp_server: 'smtp.example.com', smtp_user: 'u@example.com', smtp_password: 'pw', recipients: ['ops@example.com'] },
    { type: 'log' },
  ]);
  const missing = render(input([fp('app', { notifications })], { secrets: new Map([['hooks', { url: 'https://x.example.com/' }]]) }));
  assert.deepEqual(missing.pools, []);
  assert.deepEqual(missing.refused.get('app'), { reason: 'SecretMissing', message: 'Secret "hooks" has no key "hmac"' });
});

test('consensus: shared unless the FailoverPool says local (SPEC 9)', () => {
  const mode = (spec: Partial<FailoverPool['spec']>): unknown => (doc(render(input([fp('app', spec)])).text) as { pools: { consensus: unknown }[] }).pools[0]?.consensus;
  assert.deepEqual(mode({}), { mode: 'shared' });
  assert.deepEqual(mode({ consensus: { mode: 'local' } }), { mode: 'local' });
  assert.deepEqual(mode({ consensus: { mode: 'shared', quorum: 2 } }), { mode: 'shared' }, 'the quorum is the operator\'s, not the proxy\'s');
});

test('override: active and inactive are rendered with their reason; expiry returns the pool to auto', () => {
  const rows: [FailoverPoolSpec['override'], unknown][] = [
    [undefined, undefined],
    [{ mode: 'auto' }, undefined],
    [{ mode: 'active', reason: 'maintenance' }, { mode: 'active', reason: 'maintenance' }],
    [{ mode: 'inactive', reason: 'flapping', expiresAt: '2026-01-01T00:00:01Z' }, { mode: 'inactive', reason: 'flapping' }],
    [{ mode: 'active', reason: 'drill', expiresAt: '2026-01-01T00:00:00Z' }, undefined],
  ];
  for (const [override, want] of rows) {
    assert.deepEqual(renderOverride(fp('app', override ? { override } : {}), NOW), want, JSON.stringify(override));
  }
});

test('engine v2 fields render to the proxy format; spec.failback.approve.approvedAt is the override\'s failback_approval token', () => {
  const r = render(input([fp('app', {
    holdDown: { minDwell: '10s', flapThreshold: 2, flapWindow: '1m', maxHold: '5m' },
    rampGate: { maxErrorPercent: 10, maxP99: '300ms' },
    failback: { mode: 'manual', approve: { approvedAt: '2026-01-01T00:00:00Z' } },
    outlierDetection: { consecutive5xx: 4, consecutiveGatewayErrors: 2, errorPercent: 40, minRequests: 10, interval: '5s', baseEjection: '10s', maxEjection: '1m', maxEjectionPercent: 34 },
    retry: { perTryTimeout: 'auto', hedge: true },
  })]));
  assert.deepEqual(r.pools, ['app']);
  const pool = doc(r.text).pools[0];
  assert.deepEqual(pool.failover, { hold_down: { min_dwell: '10s', flap_threshold: 2, flap_window: '1m', max_hold: '5m' }, ramp_gate: { max_error_percent: 10, max_p99: '300ms' }, failback: 'manual' });
  assert.deepEqual(pool.outlier_detection, { consecutive_5xx: 4, consecutive_gateway_errors: 2, error_percent: 40, min_requests: 10, interval: '5s', base_ejection: '10s', max_ejection: '1m', max_ejection_percent: 34 });
  assert.deepEqual(pool.retry, { per_try_timeout: 'auto', hedge: true });
  assert.deepEqual(pool.override, { mode: 'auto', failback_approval: '2026-01-01T00:00:00Z' });
  const loaded = loadConfigText(r.text);
  assert.ok(loaded.ok);
  assert.equal(loaded.ok && loaded.config.pools[0]?.override.failbackApproval, '2026-01-01T00:00:00Z');
  // With an active override the token rides along.
  const active = render(input([fp('app', { override: { mode: 'active', reason: 'drill' }, failback: { approve: { approvedAt: '2026-01-01T00:05:00Z' } } })]));
  assert.deepEqual(doc(active.text).pools[0].override, { mode: 'active', reason: 'drill', failback_approval: '2026-01-01T00:05:00Z' });
  // A bad value is the proxy's refusal, named by its config path.
  const bad = render(input([fp('app', { outlierDetection: { baseEjection: '1m', maxEjection: '10s' } })]));
  assert.equal(bad.refused.get('app')?.reason, 'InvalidConfig');
  assert.match(bad.refused.get('app')?.message ?? '', /outlier_detection\.max_ejection: must be at least base_ejection/);
});

test('SPEC 8: protocol and healthCheck type/service render to the proxy\'s keys, and the proxy loads the result', () => {
  const r = render(input([fp('grpc', {
    protocol: 'h2c',
    backends: [
      { address: '10.0.0.1:50051', healthCheck: { type: 'grpc', service: 'my.pkg.Service', interval: '2s' } },
      { address: '10.0.0.2:50051', failoverLevel: 1, healthCheck: { type: 'http', path: '/health' } },
      { address: '10.0.0.3:5432', failoverLevel: 2, healthCheck: { type: 'tcp' } },
    ],
  })]));
  const pool = doc(r.text).pools[0];
  assert.equal(pool.protocol, 'h2c');
  assert.deepEqual(pool.backends.map((b: any) => b.health_check), [{ type: 'grpc', service: 'my.pkg.Service', interval: '2s' }, { type: 'http', path: '/health' }, { type: 'tcp' }]);
  const loaded = loadConfigText(r.text ?? '');
  assert.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.issues));
  assert.deepEqual(loaded.config.pools[0]?.backends.map((b) => b.healthCheck.type), ['grpc', 'http', 'tcp']);
});

test('SPEC 8: spec.tls renders to pools[].tls (ca_file, server_name, insecure_skip_verify), and the proxy loads it', () => {
  const r = render(input([fp('api', { protocol: 'h2', tls: { caFile: '/etc/veloflux/upstream-ca/ca.crt', serverName: 'grpc.internal', insecureSkipVerify: false } })]));
  const pool = doc(r.text).pools[0];
  assert.deepEqual(pool.tls, { ca_file: '/etc/veloflux/upstream-ca/ca.crt', server_name: 'grpc.internal', insecure_skip_verify: false });
  const loaded = loadConfigText(r.text ?? '');
  assert.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.issues));
  assert.deepEqual(loaded.config.pools[0]?.backends[0]?.transport.tls, { caFile: '/etc/veloflux/upstream-ca/ca.crt', serverName: 'grpc.internal', insecureSkipVerify: false });
  // No tls block: none rendered (the system CAs, the address's host).
  assert.equal(doc(render(input([fp('plain')])).text).pools[0].tls, undefined);
});
