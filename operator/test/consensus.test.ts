// The shared decision as tables (operator/src/consensus.ts, pure): views in, verdict and decision out, a manual
// clock. No proxy, no apiserver: the end-to-end proof is test/operator/consensus.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '@veloflux/config/load';
import type { PoolConfig } from '@veloflux/config/types';
import { agreeing, initialConsensus, observeTraffic, raiseFloor, step, ttlMs, verdicts } from '@veloflux/operator/consensus';
import type { ConsensusState, Health, ProxyView } from '@veloflux/operator/consensus';
import { parseTraffic } from '@veloflux/operator/traffic';
import type { LevelReading } from '@veloflux/operator/traffic';

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

test('failback manual (SPEC 10) in a shared decision: a new approval token approves the failback the engine awaits; the same token, or the one seen first, does not', () => {
  const withToken = (token?: string): PoolConfig => {
    const p = pool(`    override: { mode: auto${token ? `, failback_approval: "${token}"` : ''} }\n`);
    return { ...p, policy: { ...p.policy, failback: 'manual' } };
  };
  // The operator starts with a token already in the config: seen, approves nothing.
  let r = step(initialConsensus(0, 0, 0), { pool: withToken('t0'), views: views('dduu', 'dduu'), now: 0 });
  assert.equal(r.decision.level, 1);
  r = step(r.state, { pool: withToken('t0'), views: views('uuuu', 'uuuu'), now: 1000 });
  r = step(r.state, { pool: withToken('t0'), views: views('uuuu', 'uuuu'), now: 11_000 });
  assert.equal(r.decision.level, 1, 'awaiting approval');
  assert.deepEqual(r.state.engine.awaitingApproval, { since: 11_000, to: 0 });
  r = step(r.state, { pool: withToken('t0'), views: views('uuuu', 'uuuu'), now: 12_000 });
  assert.equal(r.decision.level, 1, 'the token seen first approves nothing');
  r = step(r.state, { pool: withToken('t1'), views: views('uuuu', 'uuuu'), now: 13_000 });
  assert.equal(r.decision.level, 0, 'a new token approves');
  assert.equal(r.changed, true);
  // A second failover: t1 again approves nothing; t2 does.
  r = step(r.state, { pool: withToken('t1'), views: views('dduu', 'dduu'), now: 14_000 });
  r = step(r.state, { pool: withToken('t1'), views: views('uuuu', 'uuuu'), now: 15_000 });
  r = step(r.state, { pool: withToken('t1'), views: views('uuuu', 'uuuu'), now: 25_000 });
  assert.equal(r.decision.level, 1);
  r = step(r.state, { pool: withToken('t2'), views: views('uuuu', 'uuuu'), now: 26_000 });
  assert.equal(r.decision.level, 0);
  // No token at first, one added later: it approves.
  let s = step(initialConsensus(0, 0, 0), { pool: withToken(), views: views('dduu', 'dduu'), now: 0 });
  s = step(s.state, { pool: withToken(), views: views('uuuu', 'uuuu'), now: 1000 });
  s = step(s.state, { pool: withToken(), views: views('uuuu', 'uuuu'), now: 11_000 });
  s = step(s.state, { pool: withToken('first'), views: views('uuuu', 'uuuu'), now: 12_000 });
  assert.equal(s.decision.level, 0);
});

// Shared ramp gate (SPEC 10): the proxies report their traffic by level, cumulative; the operator judges a due
// step on the sum over them of (latest - first report of the step), with the p99 of the summed histogram.
function gatedPool(): PoolConfig {
  const r = loadConfigText(`pools:
  - name: app
    backends:
      - { address: "p1:80" }
      - { address: "p2:80", weight: 300 }
      - { address: "b1:80", failover_level: 1 }
      - { address: "t1:80", failover_level: 2 }
failover: { strategy: graceful, recovery_interval: "10s", check_interval: "1s", step_percent: 25, step_interval: "5s", ramp_gate: { max_error_percent: 5, max_p99: "500ms" } }
`);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config.pools[0] as PoolConfig;
}

/** A cumulative reading of level 1: `slow` of the requests took over 500 ms (1 s bucket), the rest under 50 ms. */
function level1(requests: number, errors: number, slow = 0): LevelReading[] {
  return [{ level: 1, requests, errors, buckets: [{ le: 0.05, count: requests - slow }, { le: 1, count: requests }, { le: Infinity, count: requests }] }];
}

test('shared ramp gate: a due step waits while the level taking traffic is over the gate, summed over the proxies, and resumes when it recovers', () => {
  const p = gatedPool();
  const failing = views('uduu', 'uduu', 'uuuu'); // p2 (3/4 of level 0) down: graceful ramps onto level 1
  type Row = { at: number; reports?: [string, LevelReading[]][]; shares?: string; paused?: RegExp | null; changed?: boolean; events?: string[] };
  const table: Row[] = [
    { at: 0, shares: '0:100', paused: null },
    { at: 1000, shares: '1:25,0:75', paused: null, changed: true }, // the ramp starts; the proxies get it and report
    { at: 1100, reports: [['proxy-0', level1(0, 0)], ['proxy-1', level1(0, 0)]] },
    { at: 5800, reports: [['proxy-0', level1(100, 2)], ['proxy-1', level1(100, 2)]] },
    // 4 errors in 200 requests (2%): the step goes ahead.
    { at: 6000, shares: '1:50,0:50', paused: null, changed: true, events: ['ramp_step'] },
    // proxy-0 saw 30 errors in 200, proxy-1 none in 200: 7.5% of the pool's traffic on level 1.
    { at: 10_800, reports: [['proxy-0', level1(300, 32)], ['proxy-1', level1(300, 2)]] },
    { at: 11_000, shares: '1:50,0:50', paused: /level 1 answered 7\.5% errors over the last step \(max_error_percent 5\)/, changed: true, events: ['ramp_paused'] },
    // No errors now, but 5 of 200 requests slow (2.5% > 1%): the summed histogram's p99 is the 1 s bucket.
    { at: 15_800, reports: [['proxy-0', level1(400, 32)], ['proxy-1', level1(400, 2, 5)]] },
    { at: 16_000, shares: '1:50,0:50', paused: /level 1 p99 1000ms over the last step \(max_p99 500ms\)/, changed: true, events: [] },
    // One slow request of proxy-1's two, proxy-0's 198 fast: p99 of the sum 50 ms (an average of the proxies'
    // p99s would say 525 ms and hold the ramp for one slow request).
    { at: 20_800, reports: [['proxy-0', level1(598, 32)], ['proxy-1', level1(402, 2, 6)]] },
    { at: 21_000, shares: '1:75,0:25', paused: null, changed: true, events: ['ramp_resumed', 'ramp_step'] },
    // No report during this step (the figures are zero): the ramp advances on time.
    { at: 26_000, shares: '1:100', paused: null, changed: true, events: ['ramp_step'] },
  ];
  let s: ConsensusState = initialConsensus(0, 0, 0);
  let sequence = 0;
  for (const row of table) {
    for (const [proxy, levels] of row.reports ?? []) s = observeTraffic(s, p, proxy, levels);
    if (row.shares === undefined) continue;
    const r = step(s, { pool: p, views: row.at === 0 ? views('uuuu', 'uuuu', 'uuuu') : failing, now: row.at });
    s = r.state;
    assert.equal(r.decision.shares.map((x) => `${x.level}:${x.percent}`).join(','), row.shares, `shares at ${row.at}`);
    if (row.paused === null) assert.equal(r.decision.paused, undefined, `not paused at ${row.at}`);
    else if (row.paused) assert.match(r.decision.paused?.reason ?? '', row.paused, `paused at ${row.at}`);
    if (row.changed !== undefined) assert.equal(r.changed, row.changed, `changed at ${row.at}`);
    if (row.events) assert.deepEqual(r.events.map((e) => e.type).filter((t) => t.startsWith('ramp')), row.events, `events at ${row.at}`);
    if (r.changed) { assert.ok(r.decision.sequence > sequence, 'a pause or resume is a new sequence'); sequence = r.decision.sequence; }
  }
  assert.equal(s.gate, undefined, 'the ramp ended: no readings kept');
});

test('shared ramp gate: no reports means on time; reports outside a ramp are dropped; a restarted proxy counts from its restart', () => {
  const p = gatedPool();
  const failing = views('uduu', 'uduu', 'uuuu');
  // Before any ramp: a report is not kept (no step to judge).
  let s = step(initialConsensus(0, 0, 0), { pool: p, views: views('uuuu', 'uuuu', 'uuuu'), now: 0 }).state;
  assert.equal(observeTraffic(s, p, 'proxy-0', level1(10, 10)), s);
  // A ramp with no report at all (older proxies, or no traffic figures): steps on time, as before.
  let r = step(s, { pool: p, views: failing, now: 1000 });
  r = step(r.state, { pool: p, views: failing, now: 6000 });
  assert.deepEqual([r.decision.shares.map((x) => x.percent), r.decision.paused], [[50, 50], undefined]);
  // proxy-0 restarts mid-step: its counters start again from 0. The step counts what it saw since (20 of 20
  // errors), not a negative difference, and not the 1000 requests before the restart.
  s = r.state;
  s = observeTraffic(s, p, 'proxy-0', level1(1000, 0));
  s = observeTraffic(s, p, 'proxy-0', level1(20, 20));
  s = observeTraffic(s, p, 'proxy-0', level1(40, 40));
  r = step(s, { pool: p, views: failing, now: 11_000 });
  assert.match(r.decision.paused?.reason ?? '', /level 1 answered 100\.0% errors/);
  // Levels the pool does not have are ignored.
  s = observeTraffic(r.state, p, 'proxy-1', [{ level: 7, requests: 5, errors: 5, buckets: [{ le: Infinity, count: 5 }] }]);
  assert.deepEqual(s.gate?.proxies.get('proxy-1'), { base: [], last: [] });
});

test('shared ramp gate: proxy reports are untrusted; anything malformed is dropped without a throw', () => {
  const good = { level: 1, requests: 10, errors: 1, buckets: [{ le: 0.05, count: 9 }, { le: '+Inf', count: 10 }] };
  assert.deepEqual(parseTraffic({ pool: 'app', levels: [good], at: '2026-01-01T00:00:00Z' }), { pool: 'app', levels: [{ level: 1, requests: 10, errors: 1, buckets: [{ le: 0.05, count: 9 }, { le: Infinity, count: 10 }] }] });
  const bad: [string, unknown][] = [
    ['not an object', 'traffic'],
    ['null', null],
    ['an array', [good]],
    ['no pool', { levels: [good] }],
    ['pool not a string', { pool: 7, levels: [good] }],
    ['huge pool name', { pool: 'x'.repeat(10_000), levels: [good] }],
    ['levels not an array', { pool: 'app', levels: { 1: good } }],
    ['too many levels', { pool: 'app', levels: Array.from({ length: 1000 }, (_, i) => ({ ...good, level: i })) }],
  ];
  for (const [what, data] of bad) assert.equal(parseTraffic(data), undefined, what);
  // A malformed level entry is dropped; the others stay.
  const entries: [string, unknown][] = [
    ['negative requests', { ...good, requests: -1 }],
    ['NaN errors', { ...good, errors: Number.NaN }],
    ['errors above requests', { ...good, errors: 11 }],
    ['a string count', { ...good, requests: '10' }],
    ['beyond a safe integer', { ...good, requests: 2 ** 60 }],
    ['Infinity', { ...good, requests: Infinity }],
    ['a fractional level', { ...good, level: 1.5 }],
    ['no buckets', { ...good, buckets: [] }],
    ['no +Inf bucket', { ...good, buckets: [{ le: 0.05, count: 9 }] }],
    ['buckets out of order', { ...good, buckets: [{ le: 1, count: 9 }, { le: 0.05, count: 9 }, { le: '+Inf', count: 10 }] }],
    ['counts falling', { ...good, buckets: [{ le: 0.05, count: 10 }, { le: '+Inf', count: 9 }] }],
    ['a negative bound', { ...good, buckets: [{ le: -1, count: 0 }, { le: '+Inf', count: 10 }] }],
    ['a bucket not an object', { ...good, buckets: [3, { le: '+Inf', count: 10 }] }],
    ['too many buckets', { ...good, buckets: [...Array.from({ length: 100 }, (_, i) => ({ le: i + 1, count: 0 })), { le: '+Inf', count: 10 }] }],
    ['null', null],
    ['an array', [1, 2]],
  ];
  for (const [what, entry] of entries) {
    assert.deepEqual(parseTraffic({ pool: 'app', levels: [entry, { ...good, level: 0 }] })?.levels.map((l) => l.level), [0], what);
  }
  // Through the operator's step: a pool whose proxies send garbage ramps on time, without a throw.
  const p = gatedPool();
  const failing = views('uduu', 'uduu', 'uuuu');
  let r = step(initialConsensus(0, 0, 0), { pool: p, views: failing, now: 1000 });
  let s = r.state;
  for (const [, data] of [...bad, ...entries.map(([w, e]) => [w, { pool: 'app', levels: [e] }] as [string, unknown])]) {
    const report = parseTraffic(data);
    if (report) s = observeTraffic(s, p, 'proxy-0', report.levels);
  }
  r = step(s, { pool: p, views: failing, now: 6000 });
  assert.deepEqual([r.decision.shares.map((x) => x.percent), r.decision.paused], [[50, 50], undefined]);
});
