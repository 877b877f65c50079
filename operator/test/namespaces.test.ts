import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scopedPath } from '../../operator/src/informer.ts';
import { parseNamespaces } from '../../operator/src/manager.ts';
import { sliceScopes } from '../../operator/src/reconcile.ts';
import type { PoolObject } from '../../operator/src/reconcile.ts';

test('scopedPath puts the namespace before the resource, core and group APIs alike; cluster-wide is unchanged', () => {
  assert.equal(scopedPath('/api/v1/pods', 'shop'), '/api/v1/namespaces/shop/pods');
  assert.equal(scopedPath('/apis/veloflux.io/v1alpha1/failoverpools', 'a-b'), '/apis/veloflux.io/v1alpha1/namespaces/a-b/failoverpools');
  assert.equal(scopedPath('/apis/discovery.k8s.io/v1/endpointslices', undefined), '/apis/discovery.k8s.io/v1/endpointslices');
});

const pool = (ns: string, name: string, services: unknown[]): PoolObject => ({
  metadata: { name, namespace: ns },
  spec: { backends: services.map((s) => (typeof s === 'string' ? { service: { name: s, port: 80 } } : s)) },
} as unknown as PoolObject);

test('sliceScopes: per namespace, exactly the Services its pools name; no pool, no watch', () => {
  assert.deepEqual(sliceScopes([]), []);
  assert.deepEqual(sliceScopes([
    pool('shop', 'a', ['web', 'api', { address: 'backup:80' }]),
    pool('shop', 'b', ['web']),
    pool('billing', 'c', ['pay']),
    pool('empty', 'd', [{ address: 'x:80' }]),
  ]), [
    { namespace: 'billing', labelSelector: 'kubernetes.io/service-name in (pay)' },
    { namespace: 'shop', labelSelector: 'kubernetes.io/service-name in (api,web)' },
  ]);
});

test('sliceScopes ignores names that are not Service names (nothing hostile reaches a label selector)', () => {
  const hostile = ['web,evil', 'a)', 'UPPER', '', 'x'.repeat(64), 42, null, { name: 'web' }];
  assert.deepEqual(sliceScopes([pool('shop', 'a', hostile.map((name) => ({ service: { name, port: 80 } })))]), []);
  assert.deepEqual(sliceScopes([pool('shop', 'a', [{ service: { name: 'ok', port: 80 } }, { service: { name: 'a,b', port: 80 } }])]), [{ namespace: 'shop', labelSelector: 'kubernetes.io/service-name in (ok)' }]);
});

test('parseNamespaces: names, empty means cluster-wide, clear refusals that name what is allowed', () => {
  assert.equal(parseNamespaces(undefined), undefined);
  assert.equal(parseNamespaces(''), undefined);
  assert.deepEqual(parseNamespaces('shop,billing'), ['shop', 'billing']);
  assert.deepEqual(parseNamespaces(' shop , billing '), ['shop', 'billing']);
  assert.match(parseNamespaces('shop,,billing') as string, /entry 2 must be a namespace name/);
  assert.match(parseNamespaces('Shop') as string, /entry 1 must be a namespace name \(lowercase/);
  assert.match(parseNamespaces('a/b') as string, /entry 1/);
  assert.match(parseNamespaces('x'.repeat(64)) as string, /at most 63/);
  assert.match(parseNamespaces('a,b,a') as string, /lists namespace "a" twice/);
  assert.match(parseNamespaces(Array.from({ length: 257 }, (_, i) => `n${i}`).join(',')) as string, /at most 256/);
});
