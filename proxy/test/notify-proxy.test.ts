// Notifications inside a running proxy: a hung SMTP server and a hung webhook must not change the data plane,
// and the log channel tells one incident from activation to recovery.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { runLoad } from './helpers/load.ts';
import { startHungSmtp, startReceiver } from './helpers/notify.ts';
import { startTestProxy } from './helpers/proxy.ts';

test('a hung SMTP server and a hung webhook: proxied requests keep completing while the deliveries are pending', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const smtp = await startHungSmtp();
  const hook = await startReceiver('/hooks/hung-token-123', ['hang']);
  const yaml = `pools:
  - name: app
    backends:
      - { address: "${primary.address}", health_check: { interval: "200ms", timeout: "100ms" } }
      - { address: "${backup.address}", failover: true, health_check: { interval: "200ms", timeout: "100ms" } }
routes:
  - pool: app
failover:
  recovery_interval: "300ms"
  notification:
    channels:
      - { type: log, level: warning }
      - { type: email, smtp_server: "127.0.0.1", smtp_port: ${smtp.port}, smtp_user: "u@example.com", smtp_password: "hung-smtp-pw", recipients: ["a@example.com"], timeout: "20s" }
      - { type: webhook, url: "${hook.url}", format: generic, secret: "hung-hmac-secret", timeout: "20s" }
`;
  const p = await startTestProxy(yaml);
  t.after(async () => {
    await p.stop(); // the notifier abandons the hung deliveries after its grace
    await Promise.all([primary.kill(), backup.kill(), smtp.close(), hook.close()]);
  });
  await p.waitReady();

  await primary.kill();
  await p.waitFor((e) => e.type === 'failover_activated', 5000, 'failover_activated');
  // Both channels are now stuck on their first notice: connected, no greeting; POSTed, no answer.
  await smtp.waitConnections(1);
  await hook.waitRequests(1);

  const load = await runLoad(p.url, { concurrency: 8, durationMs: 1500, maxRequests: 400 });
  assert.deepEqual(load.failures, []);
  assert.equal(load.ok, load.sent);
  assert.ok(load.ok >= 50, `only ${load.ok} requests in 1.5s`);
  assert.equal(load.byBackend.get('backup'), load.ok, 'served by the backup level');
  // Still pending: nothing answered, no delivery outcome logged for either channel.
  assert.equal(hook.open, 1);
  assert.equal(hook.received.length, 1);
  const outcomes = p.logs.filter((l) => /failover notification (delivered|failed)/.test(l) && /"channel":"(email|webhook:generic)"/.test(l));
  assert.deepEqual(outcomes, []);

  // The primary comes back: the log channel closes the incident it opened.
  await primary.revive();
  await p.waitFor((e) => e.type === 'failover_recovered', 5000, 'failover_recovered');
  const incidentLines = (): Array<Record<string, unknown>> => p.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.channel === 'log' && String(l.msg).startsWith('failover notification:') && (l.event === 'failover_activated' || l.event === 'failover_recovered'));
  for (let i = 0; i < 50 && incidentLines().length < 2; i++) await new Promise((resolve) => setImmediate(resolve));
  const [act, rec] = incidentLines();
  assert.ok(act && rec, JSON.stringify(incidentLines()));
  assert.equal(act.level, 40);
  assert.equal(rec.incident, act.incident, 'activation and recovery are one incident');
  assert.match(String(act.incident), /^app-\d{8}T\d{6}Z$/);
  assert.deepEqual(act.backendsDown, [primary.address]);
  assert.match(String(act.msg), /^failover notification: Failover activated: pool app, level 0 -> 1$/);
  for (const line of p.logs) {
    if (/"event":"failover_/.test(line)) assert.match(line, /failover/);
    for (const secret of ['hung-smtp-pw', 'hung-hmac-secret', 'hung-token-123']) assert.ok(!line.includes(secret), `secret in log: ${line}`);
  }
});
