// npm run bench: throughput, latency and memory of VeloFlux against the minimal undici proxy (the headline ratio),
// nginx, HAProxy and direct-to-backend, measured side by side in one run on this machine.
//   npm run bench [-- --rounds 3 --max-rounds 8 --duration 5 --quick --no-md --no-h2 --no-grpc --profile --baseline REV]
// --rounds is the least number of rounds; more are run (up to --max-rounds) until the headline ratios' median has a
// 90% confidence interval within +-5% (stats.ts medianInterval), and that interval is printed.
// --baseline REV also builds and measures the proxy of commit REV in the same rounds: "did this change cost throughput?
// Method (details in BENCHMARKS.md): backends and the load generator on core 1, each proxy on core 0; rounds
// interleave the peers (rotating the order); every measurement is preceded by a warm-up; medians with min–max.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { topSelf } from './lib/cpuprofile.ts';
import { openLoop, saturate, type SaturationResult } from './lib/load.ts';
import { PEER_LABEL, REPO, VELOFLUX_MAIN, buildBaseline, buildVeloflux, startBackend, startNginxBackend, startPeer, velofluxConfig, type Peer, type PeerKind } from './lib/peers.ts';
import { canPin, cpuSnapshot, foreignCores, freePort, groupCpuSeconds, pinSelf, sampleRss, start, waitHttp, type Rss } from './lib/proc.ts';
import { performance } from 'node:perf_hooks';
import { machineMarkdown, markdownTable, textTable, updateBenchmarksMd, writeResults, type Table } from './lib/report.ts';
import { fmtInterval, fmtNum, fmtSpread, halfWidthPct, medianInterval, spread } from './lib/stats.ts';
import { H2_LABEL, h2load, makeBenchCert, startH2Peer, type H2Peer, type H2PeerKind, type H2loadResult } from './lib/h2.ts';
import { ensureTools, machine } from './lib/tools.ts';
import { grpcScenario } from './grpc.ts';
import { existsSync, statSync, writeFileSync } from 'node:fs';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    'max-rounds': { type: 'string', default: '8' },
    'no-h2': { type: 'boolean', default: false }, // skip the HTTP/2 comparison (h2load)
    duration: { type: 'string', default: '5' }, // seconds per measurement
    warmup: { type: 'string', default: '1' }, // seconds before each measurement
    connections: { type: 'string', default: '64' },
    quick: { type: 'boolean', default: false }, // 1 round of 2 s: for developing the harness, not for figures
    'no-md': { type: 'boolean', default: false }, // do not rewrite BENCHMARKS.md
    'no-2core': { type: 'boolean', default: false },
    'no-access-log': { type: 'boolean', default: false }, // skip the access-log cost scenario
    // node (node:http, as issue #2 asks) or nginx (a cheaper backend, so the backend's core is less of a ceiling)
    backend: { type: 'string', default: 'node' },
    profile: { type: 'boolean', default: false }, // always take a VeloFlux CPU profile (otherwise only on a miss)
    // node flags for VeloFlux only, to try a tuning: --veloflux-node-flags='--max-semi-space-size=8'
    'veloflux-node-flags': { type: 'string', default: '' },
    // a commit to measure alongside (e.g. main before a change): its proxy is built into a temp dir
    baseline: { type: 'string' },
    // the gRPC unary scenario (bench/grpc.ts; builds ghz from its Go module once per machine)
    'no-grpc': { type: 'boolean', default: false },
  },
});
const ROUNDS = args.quick ? 1 : Number(args.rounds);
const MAX_ROUNDS = args.quick ? 1 : Math.max(ROUNDS, Number(args['max-rounds']));
/** A headline ratio is settled when its median's 90% interval is within this many percent. */
const SETTLED_PCT = 5;
const DURATION = args.quick ? 2 : Number(args.duration);
const WARMUP = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
const RATIO_TARGET = 1.0;
const RSS_TARGET_MB = 100;
const BACKEND = args.backend === 'nginx' ? 'nginx' : 'node';
const backendStarter = BACKEND === 'nginx' ? startNginxBackend : startBackend;
const VELOFLUX_FLAGS = args['veloflux-node-flags'].split(' ').filter(Boolean);
const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;

const when = new Date();
const m = machine();
console.log(`VeloFlux bench: ${m.cores} cores, ${m.cpu}, load ${m.loadavg.join(' ')}`);
if (m.busy.length) console.log(`WARNING: machine busy (${m.busy.join('; ')}): figures will be noisy`);
const missing = ensureTools(['wrk', 'nginx', 'haproxy', 'taskset', ...(args['no-h2'] ? [] : ['h2load'])]);
if (!canPin()) console.log('WARNING: taskset unavailable: processes are not pinned to cores');
pinSelf('1'); // with the backends and the load generator, never with the proxy under test
buildVeloflux(); // measure the current sources, built as the image runs them

const dir = mkdtempSync(join(tmpdir(), 'veloflux-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true })); // also when a run fails
const cleanBaseline = args.baseline ? buildBaseline(args.baseline) : undefined;
process.on('exit', () => cleanBaseline?.());
const allKinds: PeerKind[] = ['veloflux', ...(args.baseline ? ['baseline' as const] : []), 'minimal', 'nginx', 'haproxy', 'direct'];
const kinds = allKinds.filter((k) => !missing.includes(k));

interface Sample {
  round: number; sat: SaturationResult; rss?: Rss; foreignCores: number; attempt: number;
  /** CPU the proxy used during the measurement, in cores: well below its cores = it was not the bottleneck. */
  proxyCores?: number;
}
interface RateSample { round: number; rate: number; achieved: number; p50: number; p99: number; max: number; failed: number; rss?: Rss;
  foreignCores: number }
interface ScenarioResult {
  name: string;
  workers: number;
  saturation: Record<string, Sample[]>;
  halfRate?: { rate: number; samples: Record<string, RateSample[]> };
}

// Other work on a shared machine ruins a measurement without failing it; one that saw more than this much CPU of
// processes not ours is re-run (at most MAX_ATTEMPTS times; the last one is kept, flagged).
const FOREIGN_LIMIT_CORES = 0.2;
const MAX_ATTEMPTS = 3;
let reruns = 0;

async function measureSaturation(peer: Peer, round: number, loadCpus: string | undefined, threads: number): Promise<Sample> {
  for (let attempt = 1; ; attempt++) {
    await saturate({ url: peer.url, connections: CONNECTIONS, durationS: WARMUP, cpus: loadCpus, threads });
    const rss = peer.proc ? sampleRss([peer.proc.pid]) : undefined;
    const cpu0 = cpuSnapshot();
    const proxyCpu0 = peer.proc ? groupCpuSeconds(peer.proc.pid) : 0;
    const t0 = performance.now();
    const sat = await saturate({ url: peer.url, connections: CONNECTIONS, durationS: DURATION, cpus: loadCpus, threads });
    const foreign = foreignCores(cpu0, cpuSnapshot());
    const proxyCores = peer.proc ? (groupCpuSeconds(peer.proc.pid) - proxyCpu0) / ((performance.now() - t0) / 1000) : undefined;
    const s: Sample = { round, sat, rss: rss?.stop(), foreignCores: foreign, attempt, proxyCores };
    const contended = foreign > FOREIGN_LIMIT_CORES;
    console.log(`  round ${round} ${peer.label.padEnd(18)} ${fmtNum(sat.rps).padStart(8)} req/s  p50 ${sat.p50.toFixed(2)} ms  p99 ${sat.p99.toFixed(2)} ms` +
      `${s.rss ? `  RSS ${s.rss.totalMB.toFixed(0)} MB` : ''}${proxyCores !== undefined ? `  CPU ${proxyCores.toFixed(2)} cores` : ''}${sat.failures ? `  FAILURES ${sat.failures}` : ''}` +
      `${contended ? `  (other processes used ${foreign.toFixed(2)} cores${attempt < MAX_ATTEMPTS ? ': re-running' : ': kept, flagged'})` : ''}`);
    if (!contended || attempt >= MAX_ATTEMPTS) return s;
    reruns++;
  }
}

async function measureRate(p: Peer, round: number, rate: number, loadCpus: string | undefined): Promise<RateSample> {
  for (let attempt = 1; ; attempt++) {
    const rss = p.proc ? sampleRss([p.proc.pid]) : undefined;
    const cpu0 = cpuSnapshot();
    const g = await openLoop({ url: p.url, rate, connections: 32, durationS: DURATION, warmupS: WARMUP, timeoutMs: 5000, cpus: loadCpus });
    const s: RateSample = { round, rate, achieved: g.ok / DURATION, p50: g.latency.p50, p99: g.latency.p99,
      max: g.latency.max, failed: g.non2xx + g.errors + g.unfinished, rss: rss?.stop(), foreignCores: foreignCores(cpu0, cpuSnapshot()) };
    const contended = s.foreignCores > FOREIGN_LIMIT_CORES;
    console.log(`  round ${round} ${p.label.padEnd(18)} p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  max ${s.max.toFixed(1)} ms` +
      `${s.failed ? `  FAILED ${s.failed}` : ''}${g.maxSendLagMs > 50 ? `  (generator lagged ${g.maxSendLagMs.toFixed(0)} ms)` : ''}` +
      `${contended ? `  (other processes used ${s.foreignCores.toFixed(2)} cores${attempt < MAX_ATTEMPTS ? ': re-running' : ': kept, flagged'})` : ''}`);
    if (!contended || attempt >= MAX_ATTEMPTS) return s;
    reruns++;
  }
}

/** Rounds interleave the peers; the order rotates each round so no peer always runs first (or right after another). */
function order<T>(items: readonly T[], round: number): T[] {
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** Per-round ratios of `kind` to `ref` by req/s. */
function roundRatios(saturation: Record<string, Sample[]>, kind: string, ref: string): number[] {
  const a = saturation[kind] ?? [];
  const b = saturation[ref] ?? [];
  return a.map((x, i) => x.sat.rps / (b[i]?.sat.rps ?? Number.NaN));
}

/** Every ratio's median known within +-SETTLED_PCT (90% interval), or no ratio to settle. */
function settled(ratioSets: number[][]): boolean {
  return ratioSets.every((r) => r.length === 0 || halfWidthPct(medianInterval(r)) <= SETTLED_PCT);
}

async function scenario(name: string, o: { workers: number; proxyCpus?: string; loadCpus?: string; halfRate: boolean;
  extra?: PeerKind[]; adaptive?: boolean }): Promise<ScenarioResult> {
  console.log(`\n== ${name}`);
  const threads = o.loadCpus === undefined ? 2 : 1; // the load generator gets as many threads as cores it may use
  const primary = await backendStarter('primary', await freePort(), { dir, cpus: o.loadCpus });
  const backup = await backendStarter('backup', await freePort(), { dir, cpus: o.loadCpus });
  const peers: Peer[] = [];
  try {
    for (const kind of [...kinds, ...(o.extra ?? [])]) {
      peers.push(await startPeer(kind, { dir, primary: primary.port, backup: backup.port, cpus: o.proxyCpus, workers: o.workers,
        nodeFlags: kind.startsWith('veloflux') ? VELOFLUX_FLAGS : undefined }));
    }
    // JIT warm-up of every peer once before any measurement.
    for (const p of peers) {
      await saturate({ url: p.url, connections: CONNECTIONS, durationS: Math.max(2, WARMUP), cpus: o.loadCpus, threads });
    }
    const saturation: Record<string, Sample[]> = Object.fromEntries(peers.map((p) => [p.kind, []]));
    // Adaptive (the one-core comparison): rounds go on past ROUNDS until VeloFlux/minimal and VeloFlux/nginx are
    // settled, or MAX_ROUNDS.
    const tracked = (): number[][] => ['minimal', 'nginx'].filter((k) => saturation[k]).map((k) => roundRatios(saturation, 'veloflux', k));
    for (let r = 0; r < (o.adaptive ? MAX_ROUNDS : ROUNDS); r++) {
      if (r >= ROUNDS && settled(tracked())) break;
      for (const p of order(peers, r)) saturation[p.kind]!.push(await measureSaturation(p, r + 1, o.loadCpus, threads));
      if (o.adaptive && saturation.veloflux) console.log(`  after round ${r + 1}: ${['minimal', 'nginx'].filter((k) => saturation[k]).map((k) => `VeloFlux/${k} ${fmtInterval(medianInterval(roundRatios(saturation, 'veloflux', k)))}`).join('; ')}`);
    }
    const result: ScenarioResult = { name, workers: o.workers, saturation };
    if (o.halfRate && saturation.veloflux) {
      const rate = Math.round(spread(saturation.veloflux.map((s) => s.sat.rps)).median / 2);
      console.log(`  -- at 50% of VeloFlux's max: ${rate} req/s, open loop, 32 connections`);
      const samples: Record<string, RateSample[]> = Object.fromEntries(peers.map((p) => [p.kind, []]));
      for (let r = 0; r < ROUNDS; r++) {
        for (const p of order(peers, r)) samples[p.kind]!.push(await measureRate(p, r + 1, rate, o.loadCpus));
      }
      result.halfRate = { rate, samples };
    }
    return result;
  } finally {
    for (const p of peers) await p.stop();
    await primary.proc.stop();
    await backup.proc.stop();
  }
}

interface HeapLine { pid: number; rss: number; heapTotal: number; heapUsed: number; external: number; spaces: Record<string, number> }
interface Diagnosis { file?: string; totalMs: number; top: ReturnType<typeof topSelf>['top']; heap?: HeapLine }

/**
 * A separate VeloFlux run at saturation under `node --cpu-prof` (where the CPU goes) with bench/lib/heapstats.ts
 * preloaded (where the resident memory is: V8 heap spaces vs the rest). Taken when a target is missed or on --profile.
 */
async function diagnoseVeloflux(): Promise<Diagnosis | undefined> {
  const profDir = join(REPO, 'bench/results/profiles', when.toISOString().replaceAll(':', ''));
  const primary = await backendStarter('primary', await freePort(), { dir, cpus: '1' });
  const backup = await backendStarter('backup', await freePort(), { dir, cpus: '1' });
  let heap: HeapLine | undefined;
  let skipMs = 0;
  try {
    const spawned = Date.now();
    const peer = await startPeer('veloflux', { dir, primary: primary.port, backup: backup.port, cpus: '0', workers: 1,
      nodeFlags: [...VELOFLUX_FLAGS, '--import', join(REPO, 'bench/lib/heapstats.ts'), '--cpu-prof', `--cpu-prof-dir=${profDir}`] });
    await saturate({ url: peer.url, connections: CONNECTIONS, durationS: 2, cpus: '1' });
    skipMs = Date.now() - spawned; // start-up and warm-up are not what we want to see
    await saturate({ url: peer.url, connections: CONNECTIONS, durationS: DURATION, cpus: '1' });
    const lines = peer.proc!.output().split('\n').filter((l) => l.startsWith('BENCH_HEAP '));
    const last = lines.at(-1); // the last second under load
    if (last) heap = JSON.parse(last.slice('BENCH_HEAP '.length)) as HeapLine;
    await peer.stop(); // the profile is written on a clean exit (SIGTERM -> exit 0)
  } finally {
    await primary.proc.stop();
    await backup.proc.stop();
  }
  const files = existsSync(profDir) ? readdirSync(profDir).filter((f) => f.endsWith('.cpuprofile')) : [];
  if (files.length === 0) {
    console.log(`no .cpuprofile written in ${profDir} (did the proxy exit cleanly on SIGTERM?)`);
    return heap ? { totalMs: 0, top: [], heap } : undefined;
  }
  const file = join(profDir, files[0]!);
  return { file: relative(REPO, file), ...topSelf(file, 20, skipMs), heap };
}

/**
 * The access log's cost (SPEC 11; target: on costs at most 10% of throughput): one VeloFlux process on core 0,
 * measured with `access_log` off and on (JSON lines to a file, every request) in the same run, switched live by a
 * config PUT between measurements, so the process, its JIT state and its connections are the same; rounds
 * alternate which state goes first.
 */
interface AccessLogCost { off: Sample[]; on: Sample[]; ratios: number[]; bytes: number }
async function accessLogCost(): Promise<AccessLogCost> {
  console.log('\n== access log: one VeloFlux on core 0, access_log off vs on (json to a file), switched live');
  const primary = await backendStarter('primary', await freePort(), { dir, cpus: '1' });
  const backup = await backendStarter('backup', await freePort(), { dir, cpus: '1' });
  const port = await freePort();
  const admin = await freePort();
  const logFile = join(dir, 'access-cost.log');
  const base = velofluxConfig(port, admin, { dir, primary: primary.port, backup: backup.port, workers: 1 });
  const configs = { off: base, on: `${base}access_log: { enabled: true, format: json, path: "${logFile}" }\n` };
  writeFileSync(join(dir, 'access-cost.yaml'), configs.off);
  const proc = start('veloflux-access-log', process.execPath, [...VELOFLUX_FLAGS, VELOFLUX_MAIN, '--config', join(dir, 'access-cost.yaml'), '--workers', '1'],
    { cpus: '0', logDir: dir, env: { ...process.env, MALLOC_ARENA_MAX: '2', VELOFLUX_ADMIN_TOKEN: 'bench-token' } });
  const apply = async (which: 'off' | 'on'): Promise<void> => {
    const r = await fetch(`http://127.0.0.1:${admin}/api/v1/config`, { method: 'PUT', headers: { authorization: 'Bearer bench-token', 'content-type': 'application/yaml' }, body: configs[which] });
    if (r.status !== 200) throw new Error(`access-log scenario: PUT ${which}: ${r.status} ${await r.text()}`);
    await r.arrayBuffer().catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the worker takes the config over IPC
  };
  const peer: Peer = { kind: 'veloflux', label: 'VeloFlux', url: `http://127.0.0.1:${port}/`, proc, stop: () => proc.stop() };
  const result: AccessLogCost = { off: [], on: [], ratios: [], bytes: 0 };
  try {
    await waitHttp(`http://127.0.0.1:${admin}/readyz`, { timeoutMs: 15_000, proc });
    await saturate({ url: peer.url, connections: CONNECTIONS, durationS: Math.max(2, WARMUP), cpus: '1', threads: 1 });
    for (let r = 0; r < ROUNDS; r++) {
      for (const which of order(['off', 'on'] as const, r)) {
        await apply(which);
        process.stdout.write(`  access_log ${which.padEnd(3)}`);
        result[which].push(await measureSaturation(peer, r + 1, '1', 1));
      }
      result.ratios.push((result.on[r]?.sat.rps ?? Number.NaN) / (result.off[r]?.sat.rps ?? Number.NaN));
    }
    result.bytes = existsSync(logFile) ? statSync(logFile).size : 0;
  } finally {
    await proc.stop();
    await primary.proc.stop();
    await backup.proc.stop();
  }
  return result;
}

/**
 * HTTP/2 (SPEC 8): VeloFlux, nginx (`http2`) and HAProxy, each pinned to core 0 with one worker, h2load and the two
 * node backends on core 1; cleartext with prior knowledge (h2c) and TLS (ALPN h2). Figures are CPU-normalised:
 * req/s per core the proxy actually used, since a proxy that leaves part of its core idle (the backend core is the
 * ceiling) would otherwise look as fast as one that needs all of it. Rounds go on until VeloFlux/nginx and
 * VeloFlux/HAProxy are settled (or MAX_ROUNDS).
 */
interface H2Sample { round: number; res: H2loadResult; cores: number; perCore: number; foreignCores: number }
const H2_KINDS: readonly H2PeerKind[] = args.baseline ? ['veloflux', 'baseline', 'nginx', 'haproxy'] : ['veloflux', 'nginx', 'haproxy'];
type H2Result = Record<'h2c' | 'h2', Record<H2PeerKind, H2Sample[]>>;
async function h2Scenario(): Promise<H2Result> {
  console.log('\n== HTTP/2: each proxy pinned to core 0 (1 worker); h2load (1 thread, 32 connections x 10 streams) and backends on core 1');
  const cert = makeBenchCert(dir);
  const primary = await backendStarter('primary', await freePort(), { dir, cpus: '1' });
  const backup = await backendStarter('backup', await freePort(), { dir, cpus: '1' });
  const peers: H2Peer[] = [];
  const result: H2Result = { h2c: { veloflux: [], baseline: [], nginx: [], haproxy: [] }, h2: { veloflux: [], baseline: [], nginx: [], haproxy: [] } };
  try {
    // With --baseline, that commit's VeloFlux runs in the same rounds: a change to the HTTP/2 path is measured
    // against what it changed on the same machine state (which moves nginx's and node's figures differently).
    for (const kind of H2_KINDS) {
      peers.push(await startH2Peer(kind, { dir, primary: primary.port, backup: backup.port, cpus: '0', workers: 1, cert, nodeFlags: kind === 'veloflux' || kind === 'baseline' ? VELOFLUX_FLAGS : undefined }));
    }
    for (const proto of ['h2c', 'h2'] as const) {
      const byKind = result[proto];
      for (const p of peers) await h2load({ url: p[proto], durationS: 1, clients: 32, streams: 10, cpus: '1', logDir: dir }); // JIT warm-up
      const ratios = (): number[][] => (['nginx', 'haproxy'] as const).map((k) => byKind.veloflux.map((v, i) => v.perCore / (byKind[k][i]?.perCore ?? Number.NaN)));
      for (let r = 0; r < MAX_ROUNDS; r++) {
        if (r >= ROUNDS && settled(ratios())) break;
        for (const p of order(peers, r)) {
          const cpu0 = cpuSnapshot();
          const proxy0 = groupCpuSeconds(p.proc.pid);
          const t0 = performance.now();
          const res = await h2load({ url: p[proto], durationS: DURATION, clients: 32, streams: 10, cpus: '1', logDir: dir });
          // h2load's 1 s warm-up is inside the wall time: the proxy's CPU is taken over the measured part only
          // approximately, so both req/s and CPU are over the whole run (warm-up included) for every peer alike.
          const wall = (performance.now() - t0) / 1000;
          const cores = (groupCpuSeconds(p.proc.pid) - proxy0) / wall;
          const foreign = foreignCores(cpu0, cpuSnapshot());
          const s: H2Sample = { round: r + 1, res, cores, perCore: res.rps / Math.max(cores, 0.05), foreignCores: foreign };
          byKind[p.kind].push(s);
          console.log(`  ${proto.padEnd(3)} round ${r + 1} ${p.label.padEnd(9)} ${fmtNum(res.rps).padStart(8)} req/s  CPU ${cores.toFixed(2)}  ${fmtNum(s.perCore).padStart(8)} req/s/core  p50 ${res.p50.toFixed(2)} ms  p99 ${res.p99.toFixed(2)} ms` +
            `${res.failed ? `  FAILED ${res.failed}` : ''}${foreign > FOREIGN_LIMIT_CORES ? `  (other processes used ${foreign.toFixed(2)} cores: noisy)` : ''}`);
        }
        const [vn, vh] = ratios();
        console.log(`  ${proto} after round ${r + 1}: VeloFlux/nginx per core ${fmtInterval(medianInterval(vn ?? []))}; VeloFlux/HAProxy per core ${fmtInterval(medianInterval(vh ?? []))}`);
      }
    }
    return result;
  } finally {
    for (const p of peers) await p.stop();
    await primary.proc.stop();
    await backup.proc.stop();
  }
}

// ---- run
const started = Date.now();
const single = await scenario('one core: each proxy pinned to core 0; backends and load generator on core 1',
  { workers: 1, proxyCpus: '0', loadCpus: '1', halfRate: true, adaptive: true });
const http2 = args['no-h2'] || missing.includes('h2load') ? undefined : await h2Scenario();
const dual = args['no-2core'] ? undefined
  : await scenario('both cores: VeloFlux --workers 2, nginx worker_processes 2, HAProxy nbthread 2; nothing pinned',
    { workers: 2, halfRate: false, extra: ['veloflux1'] });
const accessLog = args['no-access-log'] ? undefined : await accessLogCost();

const grpc = args['no-grpc'] ? undefined : await grpcScenario({ dir, rounds: ROUNDS, maxRounds: MAX_ROUNDS, settledPct: SETTLED_PCT, durationS: DURATION, warmupS: WARMUP });

// ---- figures
const med = (xs: number[]): number => spread(xs).median;
function saturationTable(s: ScenarioResult, title: string): Table {
  const minimal = s.saturation.minimal;
  const nginx = s.saturation.nginx;
  const rows = Object.entries(s.saturation).map(([kind, samples]) => {
    const perRound = (ref: Sample[] | undefined): string => {
      if (!ref) return '-';
      const ratios = samples.map((x, i) => x.sat.rps / (ref[i]?.sat.rps ?? Number.NaN));
      return `${fmtSpread(spread(ratios), 2)}x`;
    };
    const rss = samples.filter((x) => x.rss).map((x) => x.rss!);
    return [
      PEER_LABEL[kind as PeerKind],
      fmtSpread(spread(samples.map((x) => x.sat.rps))),
      samples[0]?.proxyCores === undefined ? '-' : med(samples.map((x) => x.proxyCores ?? Number.NaN)).toFixed(2),
      med(samples.map((x) => x.sat.p50)).toFixed(2),
      med(samples.map((x) => x.sat.p99)).toFixed(2),
      rss.length ? Math.max(...rss.map((r) => r.totalMB)).toFixed(0) : '-',
      rss.length ? `${Math.max(...rss.map((r) => r.maxProcMB)).toFixed(0)} (${Math.max(...rss.map((r) => r.processes))})` : '-',
      perRound(minimal),
      perRound(nginx),
      String(samples.reduce((a, x) => a + x.sat.failures, 0)),
    ];
  });
  return {
    title,
    head: ['peer', 'req/s median (min–max)', 'proxy CPU (cores)', 'p50 ms', 'p99 ms', 'RSS MB', 'RSS MB/process (n)', 'vs minimal', 'vs nginx', 'failures'],
    rows,
    notes: ['"proxy CPU": cores the proxy process(es) used during the measurement; clearly below the cores it had means the',
      'proxy was not the bottleneck (the backend and load generator on the other core were).',
      ...contentionNotes(Object.values(s.saturation).flat())],
  };
}

function contentionNotes(samples: { foreignCores: number }[]): string[] {
  const flagged = samples.filter((x) => x.foreignCores > FOREIGN_LIMIT_CORES);
  const worst = Math.max(0, ...samples.map((x) => x.foreignCores));
  return [`Other processes used at most ${worst.toFixed(2)} cores during these measurements` +
    (flagged.length ? `; ${flagged.length} measurement(s) kept above ${FOREIGN_LIMIT_CORES} cores: treat as noisy.` : '.')];
}

const tables: Table[] = [];
const loadTool = single.saturation.veloflux?.[0]?.sat.tool ?? 'wrk';
tables.push(saturationTable(single,
  `Saturation, one core per proxy (${loadTool} 1 thread, ${CONNECTIONS} connections, ${DURATION} s × ${ROUNDS} rounds; ${BACKEND === 'nginx' ? 'nginx' : 'node:http'} backend)`));

const velo = single.saturation.veloflux ?? [];
const minimal = single.saturation.minimal ?? [];
const ratios = velo.map((v, i) => v.sat.rps / (minimal[i]?.sat.rps ?? Number.NaN));
const ratio = spread(ratios);
const rssPerWorker = Math.max(0, ...velo.flatMap((v) => (v.rss ? [v.rss.maxProcMB] : [])),
  ...(dual?.saturation.veloflux ?? []).flatMap((v) => (v.rss ? [v.rss.maxProcMB] : [])));
const ratioPass = ratio.median >= RATIO_TARGET;
const base = single.saturation.baseline;
const baseRatios = base ? velo.map((v, i) => v.sat.rps / (base[i]?.sat.rps ?? Number.NaN)) : [];
const rssPass = rssPerWorker <= RSS_TARGET_MB;
tables.push({
  title: 'Headline: VeloFlux / minimal undici pool.stream proxy, one core each',
  head: ['', ...ratios.map((_, i) => `round ${i + 1}`), 'median (min–max)', 'target', ''],
  rows: [['VeloFlux / minimal', ...ratios.map((r) => `${r.toFixed(2)}x`), `${fmtSpread(ratio, 2)}x`, `>= ${RATIO_TARGET.toFixed(1)}x`,
    ratioPass ? 'PASS' : 'MISS'],
    ...(base ? [[`VeloFlux / ${PEER_LABEL.baseline}`, ...baseRatios.map((r) => `${r.toFixed(2)}x`), `${fmtSpread(spread(baseRatios), 2)}x`, 'within noise',
      // Same-build rounds on this machine spread by about +-5%: a median within that is "no change".
      Math.abs(spread(baseRatios).median - 1) <= 0.05 ? 'SAME' : spread(baseRatios).median > 1 ? 'FASTER' : 'SLOWER']] : [])],
  notes: [...(VELOFLUX_FLAGS.length ? [`VeloFlux ran with node flags: ${VELOFLUX_FLAGS.join(' ')}`] : []),
    `Median and its 90% distribution-free interval over rounds: VeloFlux/minimal ${fmtInterval(medianInterval(ratios))}` +
      `${single.saturation.nginx ? `; VeloFlux/nginx ${fmtInterval(medianInterval(roundRatios(single.saturation, 'veloflux', 'nginx')))}` : ''}` +
      ` (rounds continue past --rounds until each is within +-${SETTLED_PCT}%, at most --max-rounds ${MAX_ROUNDS}).`,
    `RSS per VeloFlux process under load: ${rssPerWorker.toFixed(0)} MB (target <= ${RSS_TARGET_MB} MB): ${rssPass ? 'PASS' : 'MISS'}`,
    ],
});

if (single.halfRate) {
  const { rate, samples } = single.halfRate;
  tables.push({
    title: `At 50% of VeloFlux's max: ${fmtNum(rate)} req/s open loop, 32 keep-alive connections, ${DURATION} s × ${ROUNDS} rounds, one core`,
    head: ['peer', 'served req/s', 'p50 ms (min–max)', 'p99 ms (min–max)', 'max ms', 'RSS MB', 'failed'],
    rows: Object.entries(samples).map(([kind, xs]) => [
      PEER_LABEL[kind as PeerKind],
      fmtNum(med(xs.map((x) => x.achieved))),
      fmtSpread(spread(xs.map((x) => x.p50)), 2),
      fmtSpread(spread(xs.map((x) => x.p99)), 2),
      Math.max(...xs.map((x) => x.max)).toFixed(1),
      xs.some((x) => x.rss) ? Math.max(...xs.map((x) => x.rss?.totalMB ?? 0)).toFixed(0) : '-',
      String(xs.reduce((a, x) => a + x.failed, 0)),
    ]),
    notes: ['Latency counts from the scheduled send time (open loop), so queueing is included.',
      ...contentionNotes(Object.values(samples).flat())],
  });
}
if (http2) {
  for (const proto of ['h2c', 'h2'] as const) {
    const byKind = http2[proto];
    const ratioOf = (k: H2PeerKind, f: (s: H2Sample) => number): number[] => byKind.veloflux.map((v, i) => f(v) / (byKind[k][i] ? f(byKind[k][i]!) : Number.NaN));
    tables.push({
      title: `HTTP/2 ${proto === 'h2c' ? 'cleartext (prior knowledge)' : 'over TLS (ALPN h2)'}, one core per proxy: h2load 32 connections x 10 streams, ${DURATION} s x ${byKind.veloflux.length} rounds`,
      head: ['peer', 'req/s median (min–max)', 'proxy CPU (cores)', 'req/s per core', 'p50 ms', 'p99 ms', 'VeloFlux / peer, per core', 'VeloFlux / peer, p99', 'failed'],
      rows: H2_KINDS.map((k) => {
        const xs = byKind[k];
        return [
          k === 'baseline' ? PEER_LABEL.baseline : H2_LABEL[k],
          fmtSpread(spread(xs.map((x) => x.res.rps))),
          med(xs.map((x) => x.cores)).toFixed(2),
          fmtNum(med(xs.map((x) => x.perCore))),
          med(xs.map((x) => x.res.p50)).toFixed(2),
          med(xs.map((x) => x.res.p99)).toFixed(2),
          k === 'veloflux' ? '' : fmtInterval(medianInterval(ratioOf(k, (s) => s.perCore))),
          k === 'veloflux' ? '' : `${med(ratioOf(k, (s) => s.res.p99)).toFixed(2)}x`,
          String(xs.reduce((a, x) => a + x.res.failed, 0)),
        ];
      }),
      notes: ['Target (issue 14): VeloFlux >= 0.5x nginx per core. Ratios are per round (peers interleaved), with the median\'s 90% interval.',
        '"VeloFlux / peer, p99" above 1 means VeloFlux\'s p99 is higher (worse).',
        ...(args.baseline ? [`${PEER_LABEL.baseline}: the proxy of that commit in the same rounds; its ratio above 1 means this build serves more per core.`] : []),
        ...contentionNotes(Object.values(byKind).flat())],
    });
  }
}
if (dual) {
  tables.push(saturationTable(dual,
    `Saturation, both cores (VeloFlux --workers 2, nginx 2 workers, HAProxy 2 threads, minimal undici 1 process; nothing pinned; wrk 2 threads; ${DURATION} s × ${ROUNDS} rounds)`));
  tables.at(-1)!.notes!.unshift('Backends and wrk share the same two cores here, so this measures the whole machine, not proxy scaling alone: compare with "direct".');
}

if (accessLog) {
  const r = spread(accessLog.ratios);
  tables.push({
    title: `Access log cost: VeloFlux on one core, access_log off vs on (json lines to a file, every request), same process, ${DURATION} s × ${ROUNDS} rounds`,
    head: ['', 'req/s median (min–max)', 'p50 ms', 'p99 ms', 'on / off per round', 'target'],
    rows: [
      ['access_log off', fmtSpread(spread(accessLog.off.map((x) => x.sat.rps))), med(accessLog.off.map((x) => x.sat.p50)).toFixed(2), med(accessLog.off.map((x) => x.sat.p99)).toFixed(2), '', ''],
      ['access_log on', fmtSpread(spread(accessLog.on.map((x) => x.sat.rps))), med(accessLog.on.map((x) => x.sat.p50)).toFixed(2), med(accessLog.on.map((x) => x.sat.p99)).toFixed(2),
        `${accessLog.ratios.map((x) => `${x.toFixed(2)}x`).join(' ')} (median ${fmtSpread(r, 2)}x)`, `>= 0.90x: ${r.median >= 0.9 ? 'PASS' : 'MISS'}`],
    ],
    notes: [`${(accessLog.bytes / 1024 / 1024).toFixed(0)} MiB of access log written during the run.`, ...contentionNotes([...accessLog.off, ...accessLog.on])],
  });
}
if (grpc) tables.push(...grpc.tables);

let profile: Diagnosis | undefined;
if (args.profile || !ratioPass || !rssPass) {
  const why = [!ratioPass && 'throughput ratio', !rssPass && 'RSS'].filter(Boolean).join(' and ');
  console.log(`\n== ${why ? `target missed (${why})` : 'profile requested'}: VeloFlux at saturation under node --cpu-prof, heap spaces sampled`);
  profile = await diagnoseVeloflux();
  if (profile?.heap) {
    const h = profile.heap;
    tables.push({
      title: 'VeloFlux memory at saturation, one core (last second under load; MiB)',
      head: ['RSS', 'V8 heap total', 'heap used', 'not V8 heap (RSS - heap total)', 'external', ...Object.keys(h.spaces).map((k) => `${k} space`)],
      rows: [[String(h.rss), String(h.heapTotal), String(h.heapUsed), String(h.rss - h.heapTotal), String(h.external), ...Object.values(h.spaces).map(String)]],
      notes: ['"new space" is V8\'s young generation (two semi-spaces + a nursery); node sizes it from the heap limit, so it grows under allocation-heavy load.',
        'Try a tuning without editing code: npm run bench -- --veloflux-node-flags=\'--max-semi-space-size=16\' (or node bench/semispace.ts).'],
    });
  }
  if (profile?.file) {
    tables.push({
      title: `VeloFlux CPU profile at saturation, one core: top self time (of ${fmtNum(profile.totalMs)} ms sampled after warm-up, until exit)`,
      head: ['function', 'where', 'self ms', 'self %'],
      rows: profile.top.map((h) => [h.fn, h.where, fmtNum(h.selfMs), h.selfPct.toFixed(1)]),
      notes: [`profile: ${profile.file} (open in Chrome DevTools or speedscope; not committed)`],
    });
  }
}
rmSync(dir, { recursive: true, force: true });

for (const t of tables) console.log(textTable(t));
const elapsed = (Date.now() - started) / 1000;
console.log(`\n(${elapsed.toFixed(0)} s; ${reruns} measurement(s) re-run because other processes were busy)`);

const file = writeResults(`${args.quick ? 'quick-' : ''}bench${BACKEND === 'nginx' ? '-nginx-backend' : ''}`, { command, when, machine: m, backend: BACKEND, rounds: ROUNDS, durationS: DURATION,
  connections: CONNECTIONS, single, http2, dual, accessLog, ratio: { perRound: ratios, ...ratio }, rssPerWorkerMB: rssPerWorker,
  targets: { ratio: ratioPass, rss: rssPass }, grpc: grpc?.raw, baseline: base ? { rev: PEER_LABEL.baseline, perRound: baseRatios, ...spread(baseRatios) } : undefined, profile, missing, reruns }, when);
console.log(`results: ${file.replace(REPO, '')}`);
if (!args['no-md'] && !args.quick) {
  updateBenchmarksMd(BACKEND === 'nginx' ? 'proxy-nginx-backend' : 'proxy', [machineMarkdown(m, command, when), ...tables.map((t) => markdownTable(t))].join('\n'));
  console.log('BENCHMARKS.md updated');
}
process.exit(0);
