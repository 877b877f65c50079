import assert from 'node:assert/strict';
import { test } from 'node:test';
import { initialHealth, isServing, observe } from '../src/health/state.ts';
import type { HealthState, Outcome } from '../src/health/state.ts';

const T = { unhealthyThreshold: 2, healthyThreshold: 3 };
const ok = (at: number): Outcome => ({ ok: true, source: 'probe', at });
const bad = (at: number, source: 'probe' | 'passive' = 'probe'): Outcome => ({ ok: false, source, at, error: 'ECONNREFUSED' });

function run(outcomes: Outcome[], start: HealthState = initialHealth(0)): string[] {
  const out: string[] = [];
  let s = start;
  for (const o of outcomes) {
    s = observe(s, o, T);
    out.push(s.status);
  }
  return out;
}

test('health: a table of outcome sequences and the statuses they give', () => {
  const rows: [string, Outcome[], string[]][] = [
    ['first probe ok: up', [ok(1)], ['up']],
    ['first probe fails: down at once (no waiting a threshold at startup)', [bad(1)], ['down']],
    ['unknown + passive failures: down at the threshold', [bad(1, 'passive'), bad(2, 'passive')], ['unknown', 'down']],
    ['up: down after unhealthy_threshold consecutive failures', [ok(1), bad(2), bad(3)], ['up', 'up', 'down']],
    ['up: a success in between resets the count', [ok(1), bad(2), ok(3), bad(4)], ['up', 'up', 'up', 'up']],
    ['passive failures count like probe failures', [ok(1), bad(2, 'passive'), bad(3)], ['up', 'up', 'down']],
    ['down: up after healthy_threshold consecutive successes', [bad(1), ok(2), ok(3), ok(4)], ['down', 'down', 'down', 'up']],
    ['down: a failure resets the success count', [bad(1), ok(2), ok(3), bad(4), ok(5), ok(6)], ['down', 'down', 'down', 'down', 'down', 'down']],
  ];
  for (const [name, outcomes, statuses] of rows) assert.deepEqual(run(outcomes), statuses, name);
});

test('health: down records why, when, and the last error; up clears them', () => {
  let s = observe(initialHealth(0), ok(1), T);
  s = observe(s, bad(5, 'passive'), T);
  s = observe(s, bad(7, 'passive'), T);
  assert.deepEqual([s.status, s.since, s.downBy, s.lastError, s.lastCheckAt], ['down', 7, 'passive', 'ECONNREFUSED', 1]);
  assert.equal(isServing(s), false);
  for (const at of [8, 9, 10]) s = observe(s, ok(at), T);
  assert.deepEqual([s.status, s.since, s.downBy, s.lastError, s.lastCheckAt], ['up', 10, undefined, undefined, 10]);
  assert.equal(isServing(s), true);
});

test('health: unknown serves (traffic flows before the first probe)', () => {
  assert.equal(isServing(initialHealth(0)), true);
});
