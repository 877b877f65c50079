// Diagnostic for the RSS target: how VeloFlux's resident memory and throughput at saturation depend on V8's
// young-generation size (--max-semi-space-size, MiB), next to the minimal undici proxy at node's default.
//   node bench/semispace.ts [--sizes default,16,8,4] [--rounds 2] [--duration 4]
// Same pinning as npm run bench (proxy on core 0, backend and wrk on core 1). Prints a table; writes nothing.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { saturate } from './lib/load.ts';
import { startBackend, startPeer, type Peer } from './lib/peers.ts';
import { cpuSnapshot, foreignCores, freePort, pinSelf, sampleRss } from './lib/proc.ts';
import { textTable } from './lib/report.ts';
import { fmtNum, fmtSpread, spread } from './lib/stats.ts';

const { values: args } = parseArgs({ options: {
  sizes: { type: 'string', default: 'default,16,8,4' },
  rounds: { type: 'string', default: '2' },
  duration: { type: 'string', default: '4' },
} });
pinSelf('1');
const dir = mkdtempSync(join(tmpdir(), 'veloflux-semispace-'));
const primary = await startBackend('primary', await freePort(), { dir, cpus: '1' });
const backup = await startBackend('backup', await freePort(), { dir, cpus: '1' });
const variants: { label: string; peer: Peer }[] = [];
try {
  variants.push({ label: 'minimal undici (default)', peer: await startPeer('minimal', { dir, primary: primary.port, backup: backup.port, cpus: '0', workers: 1 }) });
  for (const size of args.sizes.split(',')) {
    const nodeFlags = size === 'default' ? [] : [`--max-semi-space-size=${size}`];
    variants.push({ label: `VeloFlux ${size === 'default' ? '(default)' : nodeFlags[0]}`,
      peer: await startPeer('veloflux', { dir, primary: primary.port, backup: backup.port, cpus: '0', workers: 1, nodeFlags }) });
  }
  const rows = new Map(variants.map((v) => [v.label, { rps: [] as number[], rss: [] as number[], heap: '', foreign: 0 }]));
  for (const v of variants) await saturate({ url: v.peer.url, connections: 64, durationS: 2, cpus: '1' });
  for (let r = 0; r < Number(args.rounds); r++) {
    for (const v of variants) {
      const rss = sampleRss([v.peer.proc!.pid]);
      const c0 = cpuSnapshot();
      const s = await saturate({ url: v.peer.url, connections: 64, durationS: Number(args.duration), cpus: '1' });
      const row = rows.get(v.label)!;
      row.foreign = Math.max(row.foreign, foreignCores(c0, cpuSnapshot()));
      row.rps.push(s.rps);
      row.rss.push(rss.stop().maxProcMB);
      console.log(`  ${v.label.padEnd(40)} ${fmtNum(s.rps)} req/s  RSS ${row.rss.at(-1)!.toFixed(0)} MB`);
    }
  }
  console.log(textTable({
    title: `RSS vs V8 young generation at saturation (wrk -c64, ${args.duration} s × ${args.rounds} rounds, one core)`,
    head: ['variant', 'req/s median (min–max)', 'peak RSS MB', 'other CPU (cores)'],
    rows: [...rows].map(([label, x]) => [label, fmtSpread(spread(x.rps)), Math.max(...x.rss).toFixed(0), x.foreign.toFixed(2)]),
  }));
} finally {
  for (const v of variants) await v.peer.stop();
  await primary.proc.stop();
  await backup.proc.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
