// npm run bench:failover: failover drills at a fixed request rate against VeloFlux, nginx and HAProxy, side by side.
//   npm run bench:failover [-- --rate 1000 --duration 20 --peers veloflux,nginx,haproxy --quick --no-md]
// Each drill: primary + backup backends (core 1), the proxy (core 0), an open-loop load of `rate` req/s over 32
// keep-alive connections (core 1) for 20 s. At t=5 s the primary fails, at t=12 s it is restored:
//   stop:  SIGKILL (connections reset, then refused), restarted on the same port
//   stall: SIGSTOP (the kernel still accepts connections, nothing answers), then SIGCONT
//   hang:  the backend keeps accepting and reading but never answers (SIGUSR2), then answers again (SIGUSR1)
//   flap:  from t=5 s the primary is stopped and restarted every 2 s (down 2 s, up 2 s) for --flap-for seconds
//          (default 30; the drill lasts 5 + flap-for + 8 s), then stays up
// Per second: who served, non-2xx, errors, max latency. Totals: failed requests, seconds with zero successes, when
// traffic was back on the primary, moves onto the backup ("failovers", from the per-second accounting, the same
// for every peer; VeloFlux also reports its own veloflux_failover_events_total), and the drill's normal p99 (the
// seconds before the fault). The `hedged` peer is VeloFlux with pools[].retry { per_try_timeout: auto,
// hedge: true } and failover.hold_down (SPEC 10).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { LoadgenResult } from './loadgen.ts';
import { openLoop } from './lib/load.ts';
import { PEER_LABEL, REPO, buildVeloflux, startBackend, startPeer, type Backend, type Peer, type PeerKind } from './lib/peers.ts';
import { canPin, cpuSnapshot, foreignCores, freePort, pinSelf } from './lib/proc.ts';
import { machineMarkdown, markdownTable, textTable, updateBenchmarksMd, writeResults, type Table } from './lib/report.ts';
import { fmtNum } from './lib/stats.ts';
import { ensureTools, machine } from './lib/tools.ts';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    connections: { type: 'string', default: '32' },
    duration: { type: 'string', default: '20' },
    'fault-at': { type: 'string', default: '5' },
    'restore-at': { type: 'string', default: '12' },
    peers: { type: 'string', default: 'veloflux,hedged,nginx,haproxy' }, // add `minimal` to see a proxy without failover
    drills: { type: 'string', default: 'stop,stall,hang,flap' },
    'flap-for': { type: 'string', default: '30' },
    quick: { type: 'boolean', default: false }, // 8 s drills, fault at 2 s, restore at 5 s: for developing the harness
    'no-md': { type: 'boolean', default: false },
  },
});
const RATE = Number(args.rate);
const DURATION = args.quick ? 8 : Number(args.duration);
const FAULT_AT = args.quick ? 2 : Number(args['fault-at']);
const RESTORE_AT = args.quick ? 5 : Number(args['restore-at']);
const CONNECTIONS = Number(args.connections);
const CLIENT_TIMEOUT_MS = 10_000; // well above the proxies' 2 s timeouts: a failure is the proxy's answer, not ours
const command = `npm run bench:failover${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

type Drill = 'stop' | 'stall' | 'hang' | 'flap';
const DRILL_LABEL: Record<Drill, string> = {
  stop: 'stopped (SIGKILL: reset, then refused)',
  stall: 'stalled (SIGSTOP: accepts, never answers)',
  hang: 'hung (server accepts and reads, never replies)',
  flap: 'flapping (SIGKILL and restart: down 2 s, up 2 s)',
};
const FLAP_FOR = args.quick ? 8 : Number(args['flap-for']);
/** Drill length and restore time: the flap drill flaps for FLAP_FOR seconds from FAULT_AT. */
const durationOf = (d: Drill): number => (d === 'flap' ? FAULT_AT + FLAP_FOR + 8 : DURATION);
const restoreOf = (d: Drill): number => (d === 'flap' ? FAULT_AT + FLAP_FOR : RESTORE_AT);

const when = new Date();
const m = machine();
console.log(`VeloFlux failover drills: ${m.cores} cores, load ${m.loadavg.join(' ')}`);
if (m.busy.length) console.log(`WARNING: machine busy (${m.busy.join('; ')}): latencies will be noisy`);
const missing = ensureTools(['nginx', 'haproxy', 'taskset']);
if (!canPin()) console.log('WARNING: taskset unavailable: processes are not pinned to cores');
pinSelf('1'); // with the backends and the load generator, never with the proxy under test
buildVeloflux(); // measure the current sources, built as the image runs them
const kinds = args.peers.split(',').map((s) => s.trim() as PeerKind).filter((k) => k in PEER_LABEL && !missing.includes(k));
const drills = args.drills.split(',').map((s) => s.trim() as Drill).filter((d) => d in DRILL_LABEL);
const dir = mkdtempSync(join(tmpdir(), 'veloflux-failover-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true })); // also when a run fails

interface DrillResult {
  peer: PeerKind;
  drill: Drill;
  /** ms after the load started */
  faultAtMs: number;
  restoredAtMs: number;
  failed: number;
  zeroSuccessSeconds: number[];
  /** Whether any request was served by the backup while the primary was down. */
  leftPrimary: boolean;
  /** First second from which every success came from the primary, to the end; undefined = not by the end. */
  backOnPrimaryAt?: number;
  load: LoadgenResult;
  /** Cores' worth of CPU used by processes not ours during the drill (the machine may be shared). */
  foreignCores: number;
  /** Moves onto the backup: seconds with backup answers after a second without (the same count for every peer). */
  failovers: number;
  /** VeloFlux peers: veloflux_failover_events_total at the end. */
  ownFailovers?: number;
}

async function runDrill(kind: PeerKind, drill: Drill): Promise<DrillResult> {
  const primaryPort = await freePort();
  let primary: Backend | undefined = await startBackend('primary', primaryPort, { dir, cpus: '1' });
  const backup = await startBackend('backup', await freePort(), { dir, cpus: '1' });
  let peer: Peer | undefined;
  try {
    peer = await startPeer(kind, { dir, primary: primaryPort, backup: backup.port, cpus: '0', workers: 1 });
    await sleep(1500); // a few health-check rounds with both backends up
    // 1 s of the same load before t=0 opens the connections and warms the JIT; the generator needs ~0.2 s to start.
    const startAt = Date.now() + 1500;
    const cpu0 = cpuSnapshot();
    const load = openLoop({ url: peer.url, rate: RATE, connections: CONNECTIONS, durationS: durationOf(drill), startAt, warmupS: 1,
      timeoutMs: CLIENT_TIMEOUT_MS, cpus: '1', normalBeforeS: FAULT_AT });
    await sleep(startAt + FAULT_AT * 1000 - Date.now());
    const faultAtMs = Date.now() - startAt;
    if (drill === 'stop' || drill === 'flap') {
      await primary.proc.kill();
      primary = undefined;
    } else if (drill === 'stall') {
      primary.proc.signal('SIGSTOP');
    } else {
      primary.proc.signal('SIGUSR2');
    }
    if (drill === 'flap') {
      // Down 2 s, up 2 s, until restoreOf(flap); bounded by the cycle count.
      for (let cycle = 0; cycle < Math.ceil(FLAP_FOR / 4); cycle++) {
        const base = startAt + (FAULT_AT + cycle * 4) * 1000;
        await sleep(base + 2000 - Date.now());
        primary = await startBackend('primary', primaryPort, { dir, cpus: '1' });
        if (cycle === Math.ceil(FLAP_FOR / 4) - 1) break;
        await sleep(base + 4000 - Date.now());
        await primary.proc.kill();
        primary = undefined;
      }
    }
    await sleep(startAt + restoreOf(drill) * 1000 - Date.now());
    if (drill === 'stop') primary = await startBackend('primary', primaryPort, { dir, cpus: '1' });
    else if (drill === 'stall') primary!.proc.signal('SIGCONT');
    else if (drill === 'hang') primary!.proc.signal('SIGUSR1');
    const restoredAtMs = Date.now() - startAt;
    const result = await load;
    const ownFailovers = peer.admin === undefined ? undefined : await failoverEvents(peer.admin);
    return { ...summarize(kind, drill, faultAtMs, restoredAtMs, result), foreignCores: foreignCores(cpu0, cpuSnapshot()), ...(ownFailovers === undefined ? {} : { ownFailovers }) };
  } finally {
    await peer?.stop();
    await primary?.proc.stop();
    await backup.proc.stop();
  }
}

/** veloflux_failover_events_total of the bench pool, from the admin API. */
async function failoverEvents(admin: string): Promise<number | undefined> {
  try {
    const res = await fetch(`${admin}/metrics`);
    const line = (await res.text()).split('\n').find((l) => l.startsWith('veloflux_failover_events_total{pool="bench"}'));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  } catch {
    return undefined;
  }
}

function summarize(peer: PeerKind, drill: Drill, faultAtMs: number, restoredAtMs: number, load: LoadgenResult):
  Omit<DrillResult, 'foreignCores' | 'ownFailovers'> {
  const failed = load.non2xx + load.errors + load.unfinished;
  const zeroSuccessSeconds = load.perSecond.filter((s) => s.ok === 0).map((s) => s.second);
  let failovers = 0;
  load.perSecond.forEach((s, i) => { if ((s.servedBy.backup ?? 0) > 0 && (i === 0 || (load.perSecond[i - 1]!.servedBy.backup ?? 0) === 0)) failovers++; });
  const RESTORE = restoreOf(drill);
  let backOnPrimaryAt: number | undefined;
  for (let s = load.perSecond.length - 1; s >= RESTORE; s--) {
    const sec = load.perSecond[s]!;
    if (sec.ok > 0 && (sec.servedBy.primary ?? 0) === sec.ok) backOnPrimaryAt = s;
    else break;
  }
  const leftPrimary = load.perSecond.some((s) => s.second >= FAULT_AT && s.second < RESTORE && (s.servedBy.backup ?? 0) > 0);
  return { peer, drill, faultAtMs, restoredAtMs, failed, zeroSuccessSeconds, leftPrimary, backOnPrimaryAt, load, failovers };
}

function perSecondTable(r: DrillResult): Table {
  return {
    title: `${PEER_LABEL[r.peer]}, primary ${DRILL_LABEL[r.drill]}, fault at ${(r.faultAtMs / 1000).toFixed(2)} s, restored at ${(r.restoredAtMs / 1000).toFixed(2)} s`,
    head: ['second', 'sent', 'primary', 'backup', 'non-2xx', 'errors', 'max latency ms'],
    rows: r.load.perSecond.map((s) => [
      `${s.second}${s.second === FAULT_AT ? ' fault' : s.second === restoreOf(r.drill) ? ' restore' : ''}`,
      String(s.sent),
      String(s.servedBy.primary ?? 0),
      String(s.servedBy.backup ?? 0),
      String(s.non2xx),
      String(s.errors),
      fmtNum(s.maxLatencyMs),
    ]),
    notes: Object.keys(r.load.errorKinds).length ? [`failures: ${Object.entries(r.load.errorKinds).map(([k, n]) => `${k} × ${n}`).join(', ')}`] : [],
  };
}

// ---- run
const started = Date.now();
const results: DrillResult[] = [];
for (const drill of drills) {
  for (const kind of kinds) {
    console.log(`\n== ${PEER_LABEL[kind]}: primary ${DRILL_LABEL[drill]} at ${FAULT_AT} s, restored at ${restoreOf(drill)} s (${RATE} req/s, ${durationOf(drill)} s)`);
    const r = await runDrill(kind, drill);
    results.push(r);
    console.log(textTable(perSecondTable(r)));
  }
}
rmSync(dir, { recursive: true, force: true });

const totals: Table = {
  title: `Failover drills: ${RATE} req/s open loop, ${CONNECTIONS} keep-alive connections, ${DURATION} s; primary fails at ${FAULT_AT} s, restored at ${RESTORE_AT} s (flap: down/up every 2 s from ${FAULT_AT} s for ${FLAP_FOR} s, ${durationOf('flap')} s); proxy on one core`,
  head: ['peer', 'drill', 'failed (non-2xx / errors / unfinished)', 'seconds with zero successes', 'max latency ms', 'p99 ms', 'normal p99 ms', 'failovers', 'back on primary from', 'other CPU (cores)'],
  rows: results.map((r) => [
    PEER_LABEL[r.peer],
    r.drill,
    `${r.failed} (${r.load.non2xx} / ${r.load.errors} / ${r.load.unfinished})`,
    r.zeroSuccessSeconds.length ? `${r.zeroSuccessSeconds.length} (s ${r.zeroSuccessSeconds.join(', ')})` : '0',
    fmtNum(r.load.latency.max),
    fmtNum(r.load.latency.p99),
    fmtNum(r.load.normal?.p99 ?? Number.NaN),
    `${r.failovers}${r.ownFailovers === undefined ? '' : ` (own ${r.ownFailovers})`}`,
    !r.leftPrimary ? 'never left it' : r.backOnPrimaryAt === undefined ? `not by ${durationOf(r.drill)} s` : `${r.backOnPrimaryAt} s (+${r.backOnPrimaryAt - restoreOf(r.drill)} s)`,
    r.foreignCores.toFixed(2),
  ]),
  notes: ['"back on primary from": the first second after which every success came from the primary, to the end of the drill.',
    '"normal p99": p99 of the requests scheduled before the fault. "failovers": seconds with backup answers after a second without, the same count for every peer; "own": VeloFlux\'s veloflux_failover_events_total.',
    '"other CPU": cores\' worth of CPU used by processes not started by the bench during the drill (the machine may be shared).'],
};
const velo = results.filter((r) => r.peer === 'veloflux');
const targets = velo.length ? [
  `VeloFlux failed requests: ${velo.map((r) => `${r.drill} ${r.failed}`).join(', ')} (target 0 in all three): ${velo.every((r) => r.failed === 0) ? 'PASS' : 'MISS'}`,
  ...velo.filter((r) => r.drill === 'stop').map((r) =>
    `VeloFlux seconds with zero successes in the stop drill: ${r.zeroSuccessSeconds.length} (target 0): ${r.zeroSuccessSeconds.length === 0 ? 'PASS' : 'MISS'}`),
] : [];
const hedged = results.filter((r) => r.peer === 'hedged' && (r.drill === 'stall' || r.drill === 'hang'));
for (const r of hedged) {
  const over = r.load.latency.max - (r.load.normal?.p99 ?? Number.NaN);
  targets.push(`VeloFlux hedged, ${r.drill}: failed ${r.failed} (target 0), max latency ${fmtNum(r.load.latency.max)} ms = normal p99 + ${fmtNum(over)} ms (target <= 300): ${r.failed === 0 && over <= 300 ? 'PASS' : 'MISS'}`);
}
for (const r of results.filter((x) => x.drill === 'flap')) {
  targets.push(`${PEER_LABEL[r.peer]}, flap: ${r.failovers} failovers${r.ownFailovers === undefined ? '' : ` (own count ${r.ownFailovers})`}, ${r.failed} failed${r.peer === 'hedged' ? ` (target <= 3 failovers: ${(r.ownFailovers ?? r.failovers) <= 3 ? 'PASS' : 'MISS'})` : ''}`);
}
totals.notes!.push(...targets);
console.log(textTable(totals));
console.log(`\n(${((Date.now() - started) / 1000).toFixed(0)} s)`);

const file = writeResults(args.quick ? 'quick-failover' : 'failover', { command, when, machine: m, rate: RATE,
  durationS: DURATION, faultAt: FAULT_AT, restoreAt: RESTORE_AT, connections: CONNECTIONS, results, missing }, when);
console.log(`results: ${file.replace(REPO, '')}`);
if (!args['no-md'] && !args.quick) {
  const details = results.map((r) => {
    const t = perSecondTable(r);
    return `<details><summary>${t.title}</summary>\n\n${markdownTable({ ...t, title: '' }, 4).replace(/^#### \n\n/, '')}\n</details>\n`;
  });
  updateBenchmarksMd('failover', [machineMarkdown(m, command, when), markdownTable(totals), '### Per second', '', ...details].join('\n'));
  console.log('BENCHMARKS.md updated');
}
process.exit(0);
