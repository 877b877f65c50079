// computeStatus(): proxy reports -> FailoverPool status and transitions, as tables with a manual clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeStatus, setCondition } from '../src/status.ts';
import type { ProxyReport, StatusInput } from '../src/status.ts';
import type { FailoverPoolStatus } from '@veloflux/kube/types';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const auto = { mode: 'auto' as const, expired: false };

function proxy(pod: string, activeLevel: number | undefined, more: Partial<ProxyReport> = {}): ProxyReport {
  return { pod, synced: true, reachable: true, pool: activeLevel === undefined ? undefined : { name: 'app', activeLevel, failoverActive: activeLevel > 0, backends: [] }, ...more };
}

function run(proxies: ProxyReport[], prev?: FailoverPoolStatus, now = T0, more: Partial<StatusInput> = {}): ReturnType<typeof computeStatus> {
  return computeStatus({ generation: 3, prev, refused: undefined, proxies, override: auto, now, ...more });
}

const cond = (s: FailoverPoolStatus, type: string): string => {
  const c = s.conditions?.find((x) => x.type === type);
  return `${c?.status} ${c?.reason}`;
};

test('conditions and counts, one row per situation', () => {
  const rows: { what: string; proxies: ProxyReport[]; more?: Partial<StatusInput>; level: number; synced: string; conds: Record<string, string> }[] = [
    { what: 'all synced on level 0', proxies: [proxy('a', 0), proxy('b', 0)], level: 0, synced: '2/2',
      conds: { Ready: 'True Serving', Synced: 'True AllSynced', FailoverActive: 'False Primary', Degraded: 'False AsExpected' } },
    { what: 'one pending', proxies: [proxy('a', 0), proxy('b', undefined, { synced: false })], level: 0, synced: '1/2',
      conds: { Ready: 'True Serving', Synced: 'False Pending' } },
    { what: 'push failed', proxies: [proxy('a', 0), proxy('b', undefined, { synced: false, pushError: '400 VF_ERR_CONFIG_INVALID' })], level: 0, synced: '1/2',
      conds: { Synced: 'False PushFailed', Degraded: 'True PushFailed' } },
    { what: 'no proxies: Degraded says so', proxies: [], level: 0, synced: '0/0', conds: { Ready: 'False NoProxies', Synced: 'False NoProxies', Degraded: 'True NoProxies' } },
    { what: 'rotated token: every failing pod answers 401', proxies: [proxy('a', 0, { synced: false, reachable: false, pushError: '401 VF_ERR_UNAUTHORIZED: bad token', errorReason: 'Unauthorized' }), proxy('b', 0, { synced: false, reachable: false, pushError: '401 VF_ERR_UNAUTHORIZED: bad token', errorReason: 'Unauthorized' })], level: 0, synced: '0/2',
      conds: { Synced: 'False Unauthorized', Degraded: 'True Unauthorized' } },
    { what: 'mixed failures: PushFailed', proxies: [proxy('a', 0, { synced: false, pushError: '401 x', errorReason: 'Unauthorized' }), proxy('b', 0, { synced: false, pushError: 'token Secret missing', errorReason: 'TokenSecretMissing' })], level: 0, synced: '0/2',
      conds: { Synced: 'False PushFailed', Degraded: 'True PushFailed' } },
    { what: 'conflict', proxies: [proxy('a', undefined)], more: { refused: { reason: 'Conflict', message: 'x' } }, level: 0, synced: '1/1',
      conds: { Ready: 'False Conflict', Synced: 'False Conflict' } },
    { what: 'failover', proxies: [proxy('a', 1), proxy('b', 1)], level: 1, synced: '2/2', conds: { FailoverActive: 'True Failover' } },
    { what: 'replicas disagree: majority wins', proxies: [proxy('a', 1), proxy('b', 0), proxy('c', 1)], level: 1, synced: '3/3',
      conds: { Degraded: 'True ReplicasDisagree' } },
    { what: 'tie goes to the higher level', proxies: [proxy('a', 2), proxy('b', 1)], level: 2, synced: '2/2', conds: { Degraded: 'True ReplicasDisagree' } },
    { what: 'unsynced proxies do not vote while synced ones report', proxies: [proxy('a', 0), proxy('b', 1, { synced: false })], level: 0, synced: '1/2',
      conds: { Degraded: 'False AsExpected' } },
    { what: 'backend down', proxies: [proxy('a', 0, { pool: { name: 'app', activeLevel: 0, backends: [{ address: 'x:1', level: 0, health: 'down' }, { address: 'y:1', level: 0, health: 'up' }] } })], level: 0, synced: '1/1',
      conds: { Degraded: 'True BackendsDown' } },
    { what: 'unreachable', proxies: [proxy('a', 0), proxy('b', undefined, { reachable: false, synced: false })], level: 0, synced: '1/2', conds: { Degraded: 'True ProxiesUnreachable' } },
    { what: 'manual override on level 0', proxies: [{ ...proxy('a', 0), pool: { name: 'app', activeLevel: 0, failoverActive: true } }], more: { override: { mode: 'active', expired: false } }, level: 0, synced: '1/1',
      conds: { FailoverActive: 'True ManualOverride' } },
  ];
  for (const row of rows) {
    const { status } = run(row.proxies, undefined, T0, row.more);
    assert.equal(status.activeLevel, row.level, row.what);
    assert.equal(status.syncedProxies, row.synced, row.what);
    assert.equal(status.observedGeneration, 3, row.what);
    for (const [type, want] of Object.entries(row.conds)) assert.equal(cond(status, type), want, `${row.what}: ${type}`);
  }
});

test('transitions: activated counts a failover, level change and recovery do not; no data keeps the level', () => {
  const s0 = run([proxy('a', 0)]).status;
  const up = run([proxy('a', 1)], s0, T0 + 5_000);
  assert.deepEqual(up.transitions, [{ type: 'FailoverActivated', from: 0, to: 1 }]);
  assert.equal(up.status.failoverCount, 1);
  assert.equal(up.status.lastFailoverTime, '2026-01-01T00:00:05Z');
  const deeper = run([proxy('a', 2)], up.status, T0 + 6_000);
  assert.deepEqual(deeper.transitions, [{ type: 'LevelChanged', from: 1, to: 2 }]);
  assert.equal(deeper.status.failoverCount, 1);
  const silent = run([proxy('a', undefined, { reachable: false, synced: false })], deeper.status, T0 + 7_000);
  assert.deepEqual(silent.transitions, []);
  assert.equal(silent.status.activeLevel, 2);
  const back = run([proxy('a', 0)], silent.status, T0 + 9_000);
  assert.deepEqual(back.transitions, [{ type: 'FailoverRecovered', from: 2, to: 0 }]);
  assert.equal(back.status.failoverCount, 1);
  assert.equal(back.status.lastFailoverTime, '2026-01-01T00:00:05Z');
  // The same reports again (an operator restart reads the stored status): nothing new.
  const again = run([proxy('a', 0)], back.status, T0 + 60_000);
  assert.deepEqual(again.transitions, []);
  assert.deepEqual(again.status, back.status);
});

test('lastTransitionTime changes only when the status does', () => {
  const c1 = setCondition([], { type: 'Synced', status: 'False', reason: 'Pending', message: '0/1' }, T0);
  const c2 = setCondition(c1, { type: 'Synced', status: 'False', reason: 'PushFailed', message: 'boom' }, T0 + 1_000);
  assert.equal(c2[0]?.lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(c2[0]?.reason, 'PushFailed');
  const c3 = setCondition(c2, { type: 'Synced', status: 'True', reason: 'AllSynced', message: '1/1' }, T0 + 2_000);
  assert.equal(c3[0]?.lastTransitionTime, '2026-01-01T00:00:02Z');
  assert.equal(c3.length, 1);
});

test('engine v2: the Flapping condition and its Events, status.flapping and status.failback', () => {
  const flap = { since: '2026-01-01T00:00:00.000Z', failovers: 3, holdMs: 20_000 };
  const reportOf = (flapping: typeof flap | null, awaitingApproval = false): ProxyReport =>
    proxy('a', 1, { pool: { name: 'app', activeLevel: 1, failoverActive: true, flapping, failback: { mode: 'manual', awaitingApproval } } });
  const failback = { mode: 'manual' as const, approvedAt: undefined };
  // Without spec.holdDown (and no condition yet), no Flapping condition is written.
  assert.equal(run([reportOf(null)]).status.conditions?.some((c) => c.type === 'Flapping'), false);
  const stable = run([reportOf(null)], undefined, T0, { holdDown: true, failback });
  assert.equal(cond(stable.status, 'Flapping'), 'False Stable');
  assert.deepEqual(stable.status.failback, { mode: 'manual', awaitingApproval: false });
  const started = run([reportOf(flap, true)], stable.status, T0 + 1000, { holdDown: true, failback });
  assert.equal(cond(started.status, 'Flapping'), 'True Flapping');
  assert.deepEqual(started.status.flapping, { since: flap.since, failovers: 3, holdMs: 20_000 });
  assert.deepEqual(started.status.failback, { mode: 'manual', awaitingApproval: true });
  assert.deepEqual(started.transitions.filter((t) => t.type.startsWith('Flapping')), [{ type: 'FlappingStarted', from: 1, to: 1, failovers: 3, holdMs: 20_000 }]);
  // Counted against the stored status: the same report again records nothing.
  assert.deepEqual(run([reportOf(flap, true)], started.status, T0 + 2000, { holdDown: true, failback }).transitions, []);
  const ended = run([reportOf(null)], started.status, T0 + 3000, { holdDown: true, failback: { mode: 'manual', approvedAt: '2026-01-01T00:00:03Z' } });
  assert.equal(cond(ended.status, 'Flapping'), 'False Stable');
  assert.equal(ended.status.flapping, undefined);
  assert.deepEqual(ended.status.failback, { mode: 'manual', awaitingApproval: false, approvedAt: '2026-01-01T00:00:03Z' });
  assert.deepEqual(ended.transitions.map((t) => t.type), ['FlappingEnded']);
});

test('shared ramp gate: RampPaused and RampResumed against the stored status.consensus.paused, once each; local says nothing', () => {
  const ramp = { from: 0, to: 1, percent: 30 };
  const shared = (paused?: { reason: string }): Partial<StatusInput> => ({ shared: { awaitingApproval: false, flapping: undefined, paused, ramp } });
  const consensus = (paused?: { reason: string }): FailoverPoolStatus => ({ activeLevel: 1, consensus: { mode: 'shared', source: 'shared', sequence: 3, agreeing: 1, proxies: 1, agree: '1/1', ...(paused ? { paused } : {}) } });
  const why = { reason: 'level 1 answered 40.0% errors over the last step (max_error_percent 5)' };
  const table: [string, FailoverPoolStatus, Partial<StatusInput>, string[]][] = [
    // what                                  stored status          input           transitions
    ['a pause starts', consensus(), shared(why), ['RampPaused 0->1 30% level 1 answered 40.0% errors over the last step (max_error_percent 5)']],
    ['still paused (stored): no second Event', consensus(why), shared(why), []],
    ['the pause ends', consensus(why), shared(), ['RampResumed 0->1 30%']],
    ['local mode: the proxies say it', consensus(), {}, []],
  ];
  for (const [what, prev, more, want] of table) {
    const got = run([proxy('a', 1)], prev, T0, more).transitions
      .filter((t) => t.type === 'RampPaused' || t.type === 'RampResumed')
      .map((t) => `${t.type} ${t.from}->${t.to}${'percent' in t ? ` ${t.percent}%` : ''}${t.type === 'RampPaused' ? ` ${t.reason}` : ''}`);
    assert.deepEqual(got, want, what);
  }
});
