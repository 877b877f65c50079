// Issue #20 end to end: a real proxy on three levels whose two better levels recover close together. The pool
// first returns to level 1 (healthy for recovery_interval first) and must then return to level 0 at level 0's
// own up time + recovery_interval, driven by the controller's timer alone: no admin call, no health change.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { startTestProxy } from './helpers/proxy.ts';

const PROBE_MS = 500;
const RECOVERY_MS = 2000;

async function body(url: string): Promise<string> {
  const res = await request(url);
  return res.body.text();
}

test('staggered recoveries: traffic is back on level 0 at its up time + recovery_interval (one probe interval of slack)', async (t) => {
  const [primary, backup, dr] = await startBackends('primary', 'backup', 'dr') as [TestBackend, TestBackend, TestBackend];
  const hc = `health_check: { interval: "${PROBE_MS}ms", timeout: "200ms", healthy_threshold: 2, unhealthy_threshold: 1 }`;
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${primary.address}", failover_level: 0, ${hc} }
      - { address: "${backup.address}", failover_level: 1, ${hc} }
      - { address: "${dr.address}", failover_level: 2, ${hc} }
routes:
  - pool: app
failover:
  strategy: immediate
  recovery_interval: "${RECOVERY_MS}ms"
`);
  t.after(async () => {
    await p.stop();
    await Promise.all([primary, backup, dr].map((b) => b.kill()));
  });
  await p.waitReady();

  await Promise.all([primary.kill(), backup.kill()]);
  await p.waitFor((e) => e.type === 'level_changed' && e.to === 2 || e.type === 'failover_activated' && e.to === 2, 10_000, 'the pool on level 2');
  assert.equal(await body(`${p.url}/`), 'dr');

  // Level 1 comes back, then level 0 about 300 ms later: inside level 1's recovery interval.
  await backup.revive();
  const up1 = await p.waitFor((e) => e.type === 'backend_up' && e.level === 1, 10_000, 'level 1 up');
  await sleep(300);
  await primary.revive();
  const up0 = await p.waitFor((e) => e.type === 'backend_up' && e.level === 0, 10_000, 'level 0 up');
  assert.ok(up0.at > up1.at && up0.at - up1.at < RECOVERY_MS, `precondition: level 0 up ${up0.at - up1.at}ms after level 1, inside its recovery interval`);

  const via1 = await p.waitFor((e) => e.type === 'level_changed' && e.from === 2 && e.to === 1, 10_000, 'failback 2 -> 1');
  const back = await p.waitFor((e) => e.type === 'failover_recovered' && e.to === 0, RECOVERY_MS + 10_000, 'failback to level 0');
  assert.ok(via1.at < back.at, 'level 1 first, then level 0');
  const late = back.at - (up0.at + RECOVERY_MS);
  assert.ok(late >= 0, `returned to level 0 ${-late}ms before its recovery interval ended`);
  assert.ok(late <= PROBE_MS, `returned to level 0 ${late}ms after its recovery interval ended (allowed: one probe interval, ${PROBE_MS}ms)`);
  assert.equal(await body(`${p.url}/`), 'primary', 'traffic is on level 0');
});
