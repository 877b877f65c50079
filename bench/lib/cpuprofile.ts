// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, heaviest first, so a missed throughput target
// comes with where the time went.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { REPO } from './peers.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

export interface HotFunction { fn: string; where: string; selfMs: number; selfPct: number }

/** `skipMs`: ignore the first milliseconds of the profile (process start-up, module loading, warm-up). */
export function topSelf(file: string, limit = 20, skipMs = 0): { totalMs: number; top: HotFunction[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, number>();
  let total = 0;
  let elapsedUs = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const node = byId.get(p.samples[i]!);
    const dt = p.timeDeltas[i] ?? 0;
    elapsedUs += dt;
    if (!node || elapsedUs < skipMs * 1000) continue;
    total += dt;
    const f = node.callFrame;
    const url = f.url.startsWith('file://') ? relative(REPO, new URL(f.url).pathname) : f.url;
    const key = `${f.functionName || '(anonymous)'}\t${url ? `${url}:${f.lineNumber + 1}` : ''}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + dt);
  }
  const top = [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([key, us]) => {
      const [fn, where] = key.split('\t') as [string, string];
      return { fn, where, selfMs: us / 1000, selfPct: total ? (100 * us) / total : 0 };
    });
  return { totalMs: total / 1000, top };
}
