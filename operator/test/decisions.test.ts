// The view bookkeeping of operator/src/decisions.ts: events folded into a proxy's last status (no status read),
// and the view of one pool read back from it. Plain data in and out.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProxyStatus } from '@veloflux/kube/types';
import { foldEvent, viewOf } from '@veloflux/operator/decisions';

const status = (): ProxyStatus => ({
  version: 'v1', proxy: 'proxy-7',
  pools: [{ name: 'app', activeLevel: 0, mode: 'auto', failoverActive: false, failoverCount: 2, backends: [{ address: 'p:80', level: 0, health: 'up' }, { address: 'b:80', level: 1, health: 'unknown' }] }],
});

test('events fold into the last status: health, level; anything else asks for a status read', () => {
  const s = status();
  const table: [string, unknown, boolean][] = [
    ['backend_down', { pool: 'app', backend: 'p:80' }, true],
    ['backend_up', { pool: 'app', backend: 'b:80' }, true],
    ['backend_down', { pool: 'app', backend: 'elsewhere:80' }, false],
    ['backend_down', { pool: 'other', backend: 'p:80' }, false],
    ['failover_activated', { pool: 'app', from: 0, to: 1 }, true],
    ['level_changed', { pool: 'app', from: 1, to: '2' }, false],
    ['config_applied', { version: 'v2' }, false],
    ['ramp_step', { pool: 'app', percent: 50 }, false],
  ];
  for (const [type, data, folded] of table) assert.equal(foldEvent(s, type, data), folded, `${type} ${JSON.stringify(data)}`);
  assert.deepEqual(viewOf(s, 'app', 'pod-x'), { proxy: 'proxy-7', backends: [{ address: 'p:80', health: 'down' }, { address: 'b:80', health: 'up' }] });
  assert.deepEqual([s.pools[0]?.activeLevel, s.pools[0]?.failoverActive, s.pools[0]?.failoverCount], [1, true, 3]);
  assert.equal(foldEvent(undefined, 'backend_down', { pool: 'app', backend: 'p:80' }), false);
});

test('a view: unknown health for anything but up and down; the pod name when the proxy reports no id', () => {
  const s: ProxyStatus = { version: 'v', pools: [{ name: 'app', activeLevel: 0, backends: [{ address: 'p:80', level: 0, health: 'weird' }, { address: 'q:80', level: 0 }] }] };
  assert.deepEqual(viewOf(s, 'app', 'pod-1'), { proxy: 'pod-1', backends: [{ address: 'p:80', health: 'unknown' }, { address: 'q:80', health: 'unknown' }] });
  assert.equal(viewOf(s, 'missing', 'pod-1'), undefined);
  assert.equal(viewOf(undefined, 'app', 'pod-1'), undefined);
});
