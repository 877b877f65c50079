// The work queue: dedup, one worker per key, dirty re-adds, per-key backoff.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkQueue } from '../src/queue.ts';

test('a waiting key is queued once; a key in process is not handed out twice, and comes back after done()', async () => {
  const q = new WorkQueue();
  q.add('a'); q.add('a'); q.add('b');
  assert.equal(q.length, 2);
  const first = await q.get();
  assert.equal(first, 'a');
  q.add('a'); // while a worker holds it
  assert.equal(await q.get(), 'b');
  let second: string | undefined = 'not yet';
  const pending = q.get().then((k) => { second = k; });
  await new Promise((r) => setImmediate(r));
  assert.equal(second, 'not yet', 'a is in process: no second worker gets it');
  q.done('a');
  await pending;
  assert.equal(second, 'a');
  q.shutdown();
});

test('two workers never hold the same key at once', async () => {
  const q = new WorkQueue();
  const holding = new Set<string>();
  let overlaps = 0;
  let handled = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await q.get();
      if (key === undefined) return;
      if (holding.has(key)) overlaps++;
      holding.add(key);
      await new Promise((r) => setImmediate(r));
      holding.delete(key);
      handled++;
      q.done(key);
    }
  };
  const workers = [worker(), worker(), worker()];
  for (let i = 0; i < 200; i++) { q.add(`k${i % 3}`); if (i % 7 === 0) await new Promise((r) => setImmediate(r)); }
  while (q.length > 0 || holding.size > 0) await new Promise((r) => setImmediate(r));
  q.shutdown();
  await Promise.all(workers);
  assert.equal(overlaps, 0);
  assert.ok(handled >= 3);
});

test('per-key exponential backoff, capped; forget() resets it', () => {
  const q = new WorkQueue({ baseMs: 10, maxMs: 100 });
  assert.deepEqual([1, 2, 3, 4, 5].map(() => q.addRateLimited('a')), [10, 20, 40, 80, 100]);
  assert.equal(q.addRateLimited('b'), 10, 'keys back off independently');
  q.forget('a');
  assert.equal(q.addRateLimited('a'), 10);
  q.shutdown();
});
