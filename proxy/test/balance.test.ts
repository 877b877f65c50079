import assert from 'node:assert/strict';
import { test } from 'node:test';
import { preferRegion } from '../src/balance/locality.ts';
import { SmoothPicker } from '../src/balance/swrr.ts';

const item = (name: string, weight: number) => ({ name, weight });

test('smooth weighted round-robin: 5,1,1 gives the nginx sequence a a b a c a a', () => {
  const p = new SmoothPicker([item('a', 5), item('b', 1), item('c', 1)]);
  assert.equal(Array.from({ length: 7 }, () => p.pick()?.name).join(' '), 'a a b a c a a');
});

test('smooth weighted round-robin: shares follow weights over many picks; weight 0 is never picked', () => {
  const p = new SmoothPicker([item('a', 3), item('b', 1), item('z', 0)]);
  const counts = new Map<string, number>();
  for (let i = 0; i < 400; i++) { const n = p.pick()?.name as string; counts.set(n, (counts.get(n) ?? 0) + 1); }
  assert.deepEqual(Object.fromEntries(counts), { a: 300, b: 100 });
});

test('smooth weighted round-robin: skip excludes tried items; nothing left gives undefined', () => {
  const a = item('a', 1);
  const items = [a, item('b', 1)];
  const p = new SmoothPicker(items);
  assert.equal(p.pick(new Set([a]))?.name, 'b');
  assert.equal(p.pick(new Set(items)), undefined);
  assert.equal(new SmoothPicker([]).pick(), undefined);
});

test('locality: own region preferred while any serves, else everyone', () => {
  const bs = [{ n: 'e1', region: 'us-east' }, { n: 'w1', region: 'us-west' }, { n: 'x', region: undefined }];
  assert.deepEqual(preferRegion(bs, 'us-west').map((b) => b.n), ['w1']);
  assert.deepEqual(preferRegion(bs, 'eu').map((b) => b.n), ['e1', 'w1', 'x']);
  assert.deepEqual(preferRegion(bs, undefined).map((b) => b.n), ['e1', 'w1', 'x']);
});
