// External tools (Debian packages) and a description of the machine the figures come from.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';

const SEARCH = ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/sbin', '/usr/local/bin'];

/** Absolute path of a command (also looks in sbin, where Debian puts nginx and haproxy), or undefined. */
export function commandPath(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...SEARCH].filter(Boolean);
  for (const d of dirs) if (existsSync(`${d}/${cmd}`)) return `${d}/${cmd}`;
  return undefined;
}

export function hasCommand(cmd: string): boolean {
  return commandPath(cmd) !== undefined;
}

/** Debian package of each peer tool. */
const PACKAGES: Record<string, string> = { nginx: 'nginx', haproxy: 'haproxy', wrk: 'wrk', taskset: 'util-linux', h2load: 'nghttp2-client' };

/**
 * Installs missing tools with apt-get when running as root on a Debian-like system; otherwise prints the exact command
 * and returns the tools that are still missing (the caller leaves those peers out and says so).
 */
export function ensureTools(cmds: readonly string[]): string[] {
  const missing = () => cmds.filter((c) => !hasCommand(c));
  const want = missing();
  if (want.length === 0) return [];
  const pkgs = [...new Set(want.map((c) => PACKAGES[c] ?? c))];
  const install = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
  if (process.getuid?.() === 0 && hasCommand('apt-get')) {
    console.log(`installing ${pkgs.join(', ')} (Debian packages): ${install}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env, timeout: 180_000 });
    spawnSync('apt-get', ['install', '-y', '-qq', ...pkgs], { stdio: 'inherit', env, timeout: 300_000 });
  }
  const still = missing();
  if (still.length > 0) {
    console.log(`missing: ${still.join(', ')}. Install with: sudo ${install}`);
  }
  return still;
}

function firstLine(cmd: string, args: string[]): string {
  const path = commandPath(cmd);
  if (!path) return 'not installed';
  const r = spawnSync(path, args, { encoding: 'utf8', timeout: 5000 });
  return `${r.stdout}${r.stderr}`.trim().split('\n')[0] ?? '';
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGB: number;
  kernel: string;
  node: string;
  nginx: string;
  haproxy: string;
  wrk: string;
  loadavg: number[];
  /** Other heavy work seen at start (the machine is shared); figures taken while busy are flagged. */
  busy: string[];
}

export function machine(): Machine {
  const busy: string[] = [];
  const load = os.loadavg();
  if (load[0]! >= 0.5) busy.push(`load average ${load[0]!.toFixed(2)}`);
  const go = spawnSync('pgrep', ['-fa', 'go build|go test|/compile '], { encoding: 'utf8' }).stdout.trim();
  if (go) busy.push(`go toolchain running (${go.split('\n').length} processes)`);
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: firstLine('nginx', ['-v']),
    haproxy: firstLine('haproxy', ['-v']),
    wrk: firstLine('wrk', ['--version']),
    loadavg: load.map((x) => Number(x.toFixed(2))),
    busy,
  };
}
