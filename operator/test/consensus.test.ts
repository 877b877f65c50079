// The shared decision as tables (operator/src/consensus.ts, pure): views in, verdict and decision out, a manual
// clock. No proxy, no apiserver: the end-to-end proof is test/operator/consensus.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '@veloflux/config/load';
import type { PoolConfig } from '@veloflux/config/types';
import { agreeing, initialConsensus, raiseFloor, step, ttlMs, verdicts } from '@veloflux/operator/consensus';
import type { ConsensusState, Health, ProxyView } from '@veloflux/operator/consensus';

function pool(extra = '', strategy = 'immediate', p2Weight = 100): PoolConfig {
  const r = loadConfigText(`pools:
  - name: app
    backends:
      - { address: "p1:80" }
      - { address: "p2:80", weight: ${p2Weight} }
      - { address: "b1:80", failover_level: 1 }
      - { address: "t1:80", failover_level: 2 }
${extra}failover: { strategy: ${strategy}, recovery_interval: "10s", check_interval: "1s", step_percent: 50, step_interval: "2s" }
`);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config.pools[0] as PoolConfig;
}

/** Views from a compact table: one string per proxy, one letter per backend in config order (u up, d down, ? unknown). */
function views(...rows: string[]): ProxyView[] {
  const addresses = ['p1:80', 'p2:80', 'b1:80', 't1:80'];
  const h: Record<string, Health> = { u: 'up', d: 'down', '?': 'unknown' };
  return rows.map((row, i) => ({ proxy: `proxy-${i}`, backends: [...row].map((c, j) => ({ address: addresses[j] as string, health: h[c] as Health })) }));
}

const downOf = (p: PoolConfig, v: ProxyView[], quorum?: number): string =>
  verdicts(p, v, quorum).map((x) => (x.down ? 'd' : 'u')).join('');

test('verdict per backend: majority of the reporting proxies, or the quorum', () => {
  const p = pool();
  const table: [string, string[], number | undefined, string][] = [
    // what                                   views (p1 p2 b1 t1 per proxy)   quorum   verdict
    ['all up', ['uuuu', 'uuuu', 'uuuu'], undefined, 'uuuu'],
    ['one of three sees p1 down', ['duuu', 'uuuu', 'uuuu'], undefined, 'uuuu'],
    ['two of three see p1 down', ['duuu', 'duuu', 'uuuu'], undefined, 'duuu'],
    ['two of four: not a majority', ['duuu', 'duuu', 'uuuu', 'uuuu'], undefined, 'uuuu'],
    ['three of four', ['duuu', 'duuu', 'duuu', 'uuuu'], undefined, 'duuu'],
    ['a single proxy decides alone', ['dduu'], undefined, 'dduu'],
    ['unknown is no vote: 1 of 1 reporting', ['d???', '????', '????'], undefined, 'duuu'],
    ['nobody reports: up', ['????', '????'], undefined, 'uuuu'],
    ['no views at all: up', [], undefined, 'uuuu'],
    ['quorum 1: any one proxy', ['duuu', 'uuuu', 'uuuu'], 1, 'duuu'],
    ['quorum 3 of 3', ['duuu', 'duuu', 'uuuu'], 3, 'uuuu'],
    ['quorum above the reporting count: all of them', ['d???', 'd???'], 3, 'duuu'],
    ['split per backend', ['dudu', 'ddud', 'uddu'], undefined, 'dddu'],
  ];
  for (const [what, rows, quorum, want] of table) assert.equal(downOf(p, views(...rows), quorum), want, what);
  const v = verdicts(p, views('duuu', 'duuu', '?uuu'))[0];
  assert.deepEqual(v, { address: 'p1:80', level: 0, down: true, downVotes: 2, reporting: 2 });
});

test('a view of a backend the pool does not have is ignored', () => {
  const p = pool();
  const v: ProxyView[] = [{ proxy: 'x', backends: [{ address: 'elsewhere:80', health: 'down' }, { address: 'p1:80', health: 'down' }] }];
  assert.equal(downOf(p, v), 'duuu');
});

test('decisions: levels from the verdicts, a sequence that grows only on a change', () => {
  const p = pool();
  let s: ConsensusState = initialConsensus(41, 0, 0);
  const table: [number, string[], number, string, number, boolean][] = [
    // now    views                      level  shares        sequence changed
    [0, ['uuuu', 'uuuu', 'uuuu'], 0, '0:100', 42, true],
    [100, ['duuu', 'uuuu', 'uuuu'], 0, '0:100', 42, false], // one proxy alone: no change
    [200, ['dduu', 'dduu', 'uuuu'], 1, '1:100', 43, true], // both primaries down by majority: level 1
    [300, ['dduu', 'dddu', 'dduu'], 1, '1:100', 43, false],
    [400, ['dddu', 'dddu', 'dduu'], 2, '2:100', 44, true], // cascade
    [500, ['uudu', 'uudu', 'uudu'], 2, '2:100', 44, false], // level 0 back: recovery_interval not yet
    [10_499, ['uudu', 'uudu', 'uudu'], 2, '2:100', 44, false],
    [10_500, ['uudu', 'uudu', 'uudu'], 0, '0:100', 45, true], // healthy for 10 s: back to 0
  ];
  for (const [now, rows, level, shares, sequence, changed] of table) {
    const r = step(s, { pool: p, views: views(...rows), now });
    s = r.state;
    assert.deepEqual([r.decision.level, r.decision.shares.map((x) => `${x.level}:${x.percent}`).join(','), r.decision.sequence, r.changed], [level, shares, sequence, changed], `at ${now}`);
  }
});

test('the engine tells when to step again (recovery interval due)', () => {
  const p = pool();
  let r = step(initialConsensus(0, 0, 0), { pool: p, views: views('dduu', 'dduu'), now: 0 });
  assert.equal(r.decision.level, 1);
  r = step(r.state, { pool: p, views: views('uuuu', 'uuuu'), now: 1000 });
  assert.equal(r.wakeAt, 11_000);
  r = step(r.state, { pool: p, views: views('uuuu', 'uuuu'), now: 11_000 });
  assert.equal(r.decision.level, 0);
});

test('graceful: the shares ramp step by step, the same for every proxy', () => {
  // p2 carries 3/4 of level 0's weight: with it down, level 0 has less than half its capacity (failing under
  // graceful) but still serves, so it keeps the part of the traffic the ramp has not moved yet.
  const p = pool('', 'graceful', 300);
  let r = step(initialConsensus(0, 0, 0), { pool: p, views: views('uuuu', 'uuuu', 'uuuu'), now: 0 });
  r = step(r.state, { pool: p, views: views('uduu', 'uduu', 'uuuu'), now: 1000 });
  assert.deepEqual(r.decision.shares, [{ level: 1, percent: 50 }, { level: 0, percent: 50 }]);
  assert.equal(r.wakeAt, 3000);
  r = step(r.state, { pool: p, views: views('uduu', 'uduu', 'uuuu'), now: 3000 });
  assert.deepEqual(r.decision.shares, [{ level: 1, percent: 100 }]);
});

test('override: active moves to level 1 whatever the health; auto hands back to recovery', () => {
  const healthy = views('uuuu', 'uuuu', 'uuuu');
  let r = step(initialConsensus(0, 0, 0), { pool: pool(), views: healthy, now: 0 });
  const manual = pool('    override: { mode: active, reason: drill }\n');
  r = step(r.state, { pool: manual, views: healthy, now: 100 });
  assert.deepEqual([r.decision.level, r.changed], [1, true]);
  r = step(r.state, { pool: pool(), views: healthy, now: 200 });
  assert.equal(r.decision.level, 1, 'back to auto: level 0 returns after its recovery interval (healthy since 0)');
  r = step(r.state, { pool: pool(), views: healthy, now: 10_000 });
  assert.deepEqual([r.decision.level, r.decision.sequence], [0, 3]);
});

test('sequence: continues above the stored one, and above a higher one a proxy holds (409)', () => {
  const p = pool();
  const healthy = views('uuuu', 'uuuu');
  let r = step(initialConsensus(7, 0, 0), { pool: p, views: healthy, now: 0 });
  assert.equal(r.decision.sequence, 8, 'the first decision of a new leader is above the stored sequence');
  const raised = raiseFloor(r.state, 20);
  assert.equal(raised.decision?.sequence, 21, 'the current decision is re-issued above what the proxy holds');
  r = step(raised, { pool: p, views: healthy, now: 10 });
  assert.deepEqual([r.decision.sequence, r.changed], [21, false]);
  r = step(r.state, { pool: p, views: views('dduu', 'dduu'), now: 20 });
  assert.equal(r.decision.sequence, 22);
  assert.equal(raiseFloor(r.state, 5).decision?.sequence, 22, 'a lower held sequence changes nothing');
});

test('a restarted operator starts on the stored level and waits out the recovery interval', () => {
  const p = pool();
  let r = step(initialConsensus(3, 1, 0), { pool: p, views: views('uuuu', 'uuuu'), now: 0 });
  assert.deepEqual([r.decision.level, r.decision.sequence], [1, 4]);
  r = step(r.state, { pool: p, views: views('uuuu', 'uuuu'), now: 10_000 });
  assert.equal(r.decision.level, 0);
});

test('a restarted operator that decides what is stored reuses its sequence; a different decision takes the next', () => {
  const p = pool();
  const same = step(initialConsensus(9, 0, 0, [{ level: 0, percent: 100 }]), { pool: p, views: views('uuuu', 'uuuu'), now: 0 });
  assert.deepEqual([same.decision.sequence, same.changed], [9, false]);
  const other = step(initialConsensus(9, 0, 0, [{ level: 0, percent: 100 }]), { pool: p, views: views('dduu', 'dduu'), now: 0 });
  assert.deepEqual([other.decision.level, other.decision.sequence, other.changed], [1, 10, true]);
  const none = step(initialConsensus(9, 0, 0), { pool: p, views: views('uuuu', 'uuuu'), now: 0 });
  assert.deepEqual([none.decision.sequence, none.changed], [10, true], 'without stored shares: a new sequence');
});

test('ttl: 3 x the check interval, at least 2 s', () => {
  assert.equal(ttlMs(pool()), 3000);
  const fast = loadConfigText('pools: [{ name: a, backends: [{ address: "x:1" }] }]\nfailover: { check_interval: "300ms" }\n');
  assert.ok(fast.ok);
  assert.equal(ttlMs(fast.config.pools[0] as PoolConfig), 2000);
});

test('agreement: shared counts proxies serving the current sequence; local the most common level', () => {
  const d = { level: 1, shares: [{ level: 1, percent: 100 }], sequence: 9 };
  const proxies = [
    { level: 1, source: 'shared' as const, sequence: 9 },
    { level: 1, source: 'shared' as const, sequence: 8 },
    { level: 0, source: 'local' as const, sequence: 9 },
    { level: undefined, source: undefined, sequence: undefined },
  ];
  assert.equal(agreeing('shared', d, proxies), 1);
  assert.equal(agreeing('shared', undefined, proxies), 0);
  assert.equal(agreeing('local', d, proxies), 2);
  assert.equal(agreeing('local', d, []), 0);
});

test('engine v2 in shared decisions: failback manual waits for a new approval token; the token seen first approves nothing', () => {
  const manualPool = (token?: string): PoolConfig => {
    const r = loadConfigText(`pools:
  - name: app
${token ? `    override: { mode: auto, failback_approval: "${token}" }\n` : ''}    backends:
      - { address: "p1:80" }
      - { address: "p2:80" }
      - { address: "b1:80", failover_level: 1 }
      - { address: "t1:80", failover_level: 2 }
failover: { failback: manual, recovery_interval: "1s", check_interval: "1s" }
`);
    if (!r.ok) throw new Error(JSON.stringify(r.issues));
    return r.config.pools[0] as PoolConfig;
  };
  const healthy = views('uuuu', 'uuuu', 'uuuu');
  const down = views('dduu', 'dduu', 'uuuu');
  // A token already there at the first step (an approval of an earlier wait) approves nothing later.
  let r = step(initialConsensus(0, 0, 0), { pool: manualPool('T0'), views: healthy, now: 0 });
  r = step(r.state, { pool: manualPool('T0'), views: down, now: 100 });
  assert.equal(r.decision.level, 1);
  r = step(r.state, { pool: manualPool('T0'), views: healthy, now: 5000 });
  r = step(r.state, { pool: manualPool('T0'), views: healthy, now: 6000 });
  assert.equal(r.decision.level, 1, 'level 0 healthy for its recovery interval, awaiting approval: traffic stays on the backup');
  assert.ok(r.state.engine.awaitingApproval !== undefined);
  r = step(r.state, { pool: manualPool('T0'), views: healthy, now: 6500 });
  assert.equal(r.decision.level, 1, 'the same token again approves nothing');
  r = step(r.state, { pool: manualPool('T1'), views: healthy, now: 7000 });
  assert.deepEqual([r.decision.level, r.changed], [0, true], 'a new token approves the failback for every proxy at once');
});
