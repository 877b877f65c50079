// Child processes for the benchmarks: start (optionally pinned to CPUs with taskset), wait until ready, measure RSS,
// stop. Every child runs in its own process group (detached), so stopping it also stops what it forked (nginx and
// cluster workers), and a crash or Ctrl-C of the bench kills every group it started: a benchmark must never leave
// processes behind on a shared machine.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StartOptions {
  /** taskset CPU list, e.g. "0" or "1" or "0,1"; omitted = not pinned. */
  cpus?: string;
  env?: NodeJS.ProcessEnv;
  /** Directory for `<name>.log` (stdout + stderr of the child). */
  logDir: string;
}

export interface Proc {
  readonly name: string;
  readonly pid: number;
  readonly exited: Promise<number | null>;
  /** Output seen so far (last 64 KiB), for error messages. */
  output(): string;
  running(): boolean;
  /** Resolves when the output matches `re`; rejects on exit or after `timeoutMs`. */
  waitForOutput(re: RegExp, timeoutMs: number): Promise<void>;
  /** Sends a signal to the whole process group (SIGSTOP/SIGCONT for the stall drill). */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; always ends the whole group. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL the whole group at once (a crash, for the "stopped" drill). */
  kill(): Promise<void>;
}

/** Process groups started and not yet stopped. */
const live = new Set<number>();

function killAllSync(): void {
  for (const pgid of live) {
    for (const sig of ['SIGCONT', 'SIGKILL'] as const) {
      try { process.kill(-pgid, sig); } catch { /* already gone */ }
    }
  }
  live.clear();
}
process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    killAllSync();
    process.exit(130);
  });
}

let tasksetChecked: boolean | undefined;
/** True when `taskset` (util-linux) can pin processes; checked once. */
export function canPin(): boolean {
  tasksetChecked ??= spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  return tasksetChecked;
}

const OUTPUT_KEEP = 64 * 1024;
/** USER_HZ: the unit of the times in /proc/<pid>/stat; 100 on every Linux architecture node supports. */
const CLK_TCK = 100;

let selfPinned = false;
/**
 * Pins the bench program itself (RSS sampling, log capture, fault injection) to `cpus`, away from the proxy under
 * test. Children inherit affinity, so from then on unpinned children are explicitly given every CPU.
 */
export function pinSelf(cpus: string): void {
  if (canPin() && spawnSync('taskset', ['-apc', cpus, String(process.pid)]).status === 0) selfPinned = true;
}

function pinned(command: string, args: readonly string[], cpus: string | undefined): string[] {
  const list = cpus ?? (selfPinned ? `0-${availableParallelism() - 1}` : undefined);
  return list !== undefined && canPin() ? ['taskset', '-c', list, command, ...args] : [command, ...args];
}

export function start(name: string, command: string, args: readonly string[], opts: StartOptions): Proc {
  const argv = pinned(command, args, opts.cpus);
  const logFile = join(opts.logDir, `${name}.log`);
  appendFileSync(logFile, `$ ${argv.join(' ')}\n`);
  // taskset execs the command, so child.pid is the command's pid and the leader of its own group.
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${argv.join(' ')}`);
  const pid = child.pid;
  let out = '';
  let code: number | null | undefined;
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    appendFileSync(logFile, chunk);
    out = (out + chunk.toString('utf8')).slice(-OUTPUT_KEEP);
    for (const w of waiters) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (err) => onData(Buffer.from(`spawn error: ${err.message}\n`)));
    child.on('exit', (c, sig) => {
      code = c ?? (sig ? 128 : null);
      for (const w of waiters) w();
      resolve(code);
    });
  });

  const signalGroup = (sig: NodeJS.Signals): void => {
    try { process.kill(-pid, sig); } catch { /* group gone */ }
  };
  const proc: Proc = {
    name,
    pid,
    exited,
    output: () => out,
    running: () => code === undefined,
    waitForOutput(re, timeoutMs) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (re.test(out)) done(null);
          else if (code !== undefined) done(new Error(`${name} exited (${code}) before ${re}:\n${tail(out)}`));
        };
        const timer = setTimeout(() => done(new Error(`${name}: no ${re} within ${timeoutMs} ms:\n${tail(out)}`)), timeoutMs);
        const done = (err: Error | null): void => {
          clearTimeout(timer);
          waiters.delete(check);
          if (err) reject(err); else resolve();
        };
        waiters.add(check);
        check();
      });
    },
    signal: signalGroup,
    async stop(graceMs = 3000) {
      if (code === undefined) {
        signalGroup('SIGCONT'); // a stopped process cannot handle SIGTERM
        signalGroup('SIGTERM');
        await Promise.race([exited, sleep(graceMs)]);
      }
      signalGroup('SIGKILL'); // also reaps workers the leader left behind
      await Promise.race([exited, sleep(2000)]);
      live.delete(pid);
    },
    async kill() {
      signalGroup('SIGCONT');
      signalGroup('SIGKILL');
      await Promise.race([exited, sleep(2000)]);
      live.delete(pid);
    },
  };
  live.add(pid);
  return proc;
}

function tail(s: string, lines = 20): string {
  return s.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Polls `url` until it answers `status` (default 200); fails fast if `proc` exits. */
export async function waitHttp(url: string, opts: { timeoutMs: number; proc?: Proc; status?: number }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (opts.proc && !opts.proc.running()) {
      throw new Error(`${opts.proc.name} exited before ${url} was ready:\n${tail(opts.proc.output())}`);
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === (opts.status ?? 200)) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  const out = opts.proc ? `\n${tail(opts.proc.output())}` : '';
  throw new Error(`${url} not ready within ${opts.timeoutMs} ms (last: ${last})${out}`);
}

/** A free TCP port on 127.0.0.1 (the OS picks it; a tiny race until the child binds it is accepted). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export interface Rss {
  /** Sum over every process of the group, MiB. */
  totalMB: number;
  /** The largest single process of the group, MiB (per worker for a multi-process proxy). */
  maxProcMB: number;
  processes: number;
}

/** Resident memory of a process group, from /proc (Linux). */
export function groupRss(pgid: number): Rss {
  let total = 0;
  let max = 0;
  let n = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm)": state ppid pgrp ...; comm may contain spaces, so split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${entry}/status`, 'utf8'));
      if (!m) continue; // zombie or kernel thread
      const mb = Number(m[1]) / 1024;
      total += mb;
      max = Math.max(max, mb);
      n++;
    } catch { /* exited while reading */ }
  }
  return { totalMB: total, maxProcMB: max, processes: n };
}

/** Samples `groupRss` every `everyMs` until `stop()`; returns the peak. */
export function sampleRss(pgids: readonly number[], everyMs = 250): { stop(): Rss } {
  const peak: Rss = { totalMB: 0, maxProcMB: 0, processes: 0 };
  const take = (): void => {
    for (const pgid of pgids) {
      const r = groupRss(pgid);
      if (r.totalMB > peak.totalMB) { peak.totalMB = r.totalMB; peak.processes = r.processes; }
      peak.maxProcMB = Math.max(peak.maxProcMB, r.maxProcMB);
    }
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peak;
    },
  };
}

/** Runs a command to completion (bounded by `timeoutMs`), returning stdout; throws with stderr on failure. */
export function runToEnd(name: string, command: string, args: readonly string[], opts: { cpus?: string; timeoutMs: number }):
  Promise<string> {
  const argv = pinned(command, args, opts.cpus);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid !== undefined) live.add(child.pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => { stdout += c.toString('utf8'); });
    child.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString('utf8')).slice(-OUTPUT_KEEP); });
    const timer = setTimeout(() => {
      try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ }
      reject(new Error(`${name} did not finish within ${opts.timeoutMs} ms: ${argv.join(' ')}\n${tail(stderr)}`));
    }, opts.timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('exit', (code) => {
      clearTimeout(timer);
      live.delete(child.pid!);
      if (code === 0) resolve(stdout);
      else reject(new Error(`${name} exited ${code}: ${argv.join(' ')}\n${tail(stderr || stdout)}`));
    });
  });
}

/** CPU time, in clock ticks, of the whole machine and of this bench's own processes (for `foreignCores`). */
export interface CpuSnapshot { busy: number; total: number; ours: number; cores: number }

/**
 * The machine is shared: to tell whether a measurement was disturbed, compare the CPU the machine was busy (everything
 * but idle and iowait in /proc/stat) with the CPU our own processes spent (this program and every process group it
 * started). Each process counts utime + stime + cutime + cstime, so a child that exits and is reaped (wrk) moves its
 * time into its parent's cutime instead of vanishing. Softirq time of our loopback traffic is mostly charged to our
 * processes' stime; what is not reads as a small foreign share (~0.05 core measured on an idle machine).
 */
export function cpuSnapshot(): CpuSnapshot {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [, , , idle = 0, iowait = 0] = fields;
  let ours = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pgrp = Number(f[2]);
      if (Number(entry) !== process.pid && !live.has(pgrp)) continue;
      ours += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch { /* exited while reading */ }
  }
  const total = fields.reduce((a, b) => a + b, 0);
  return { busy: total - idle - iowait, total, ours, cores: availableParallelism() };
}

/** Cores' worth of CPU used by processes that are not ours between two snapshots (0 = we had the machine). */
export function foreignCores(a: CpuSnapshot, b: CpuSnapshot): number {
  const total = b.total - a.total;
  if (total <= 0) return 0;
  return Math.max(0, ((b.busy - a.busy) - (b.ours - a.ours)) / total) * a.cores;
}

/** CPU time (utime + stime + cutime + cstime) of a process group so far, in seconds. */
export function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) !== pgid) continue;
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch { /* exited while reading */ }
  }
  return ticks / CLK_TCK;
}
