// Log lines as a human and jq read them: a line about a backend carries its failover level as `failover_level`,
// so pino's own `level` (the severity) is intact and pino-pretty prints WARN, not USERLVL.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { startProxyProcess } from './helpers/process.ts';

const PINO_PRETTY = join(dirname(createRequire(import.meta.url).resolve('pino-pretty/package.json')), 'bin.js');

/** Pipes text through the real pino-pretty CLI (no colours) and returns what it prints. */
async function pretty(text: string): Promise<string> {
  const child = spawn(process.execPath, [PINO_PRETTY, '--colorize', 'false'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
  child.stdin.end(text);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0);
  return out;
}

test('a backend-down line keeps pino\'s severity: failover_level carries the level, pino-pretty prints WARN', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  t.after(async () => { await primary.kill(); await backup.kill(); });
  const hc = '{ interval: "200ms", timeout: "100ms", unhealthy_threshold: 1 }';
  const p = await startProxyProcess(`pools:
  - name: app
    backends:
      - { address: "${primary.address}", health_check: ${hc} }
      - { address: "${backup.address}", failover: true, health_check: ${hc} }
routes: [{ pool: app }]
failover:
  notification:
    channels: [{ type: log, level: warning }]
`);
  t.after(() => { if (p.child.exitCode === null) p.child.kill('SIGKILL'); });
  await primary.kill();
  const find = (pred: (j: Record<string, unknown>) => boolean): string | undefined =>
    p.stdout.find((l) => { try { return pred(JSON.parse(l) as Record<string, unknown>); } catch { return false; } });
  const isDown = (j: Record<string, unknown>): boolean => j.msg === 'backend down';
  const isNotice = (j: Record<string, unknown>): boolean => j.channel === 'log' && j.event === 'backend_down';
  for (let i = 0; i < 100 && !(find(isDown) && find(isNotice)); i++) await sleep(50);
  const down = find(isDown);
  const notice = find(isNotice);
  assert.ok(down && notice, p.stdout.join('\n'));
  for (const line of [down, notice]) {
    const j = JSON.parse(line) as Record<string, unknown>;
    assert.equal(j.level, 40, `pino's severity: ${line}`);
    assert.equal(j.failover_level, 0, `the backend's failover level: ${line}`);
    assert.equal(j.backend, primary.address);
  }
  const out = await pretty(`${down}\n${notice}\n`);
  assert.match(out, /WARN.*backend down/);
  assert.match(out, /WARN.*failover notification: Backend down/);
  assert.match(out, /failover_level: 0/);
  assert.doesNotMatch(out, /USERLVL/);
});
