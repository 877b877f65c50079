// Notification channels against real receivers on 127.0.0.1: an SMTP server with AUTH over STARTTLS and over
// implicit TLS, and HTTP receivers for the Slack, Discord and generic formats (with the HMAC signature). Every
// test also greps the captured log lines for the secrets it configured.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { formatIssues, loadConfigText } from '@veloflux/config/load';
import type { ChannelConfig } from '@veloflux/config/types';
import { createNotifier } from '../src/notify/index.ts';
import type { Notifier } from '../src/notify/index.ts';
import type { ProxyEvent } from '../src/control/events.ts';
import { Counts, captureLog, makeCert, startReceiver, startSmtp } from './helpers/notify.ts';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const FAST = { attempts: 3, backoffMs: 20, maxBackoffMs: 100, queueLimit: 100 };

/** Channels as the config loader gives them (the real schema: defaults filled in, durations in ms). */
function channels(...raw: object[]): ChannelConfig[] {
  const loaded = loadConfigText(JSON.stringify({ pools: [{ name: 'app', backends: [{ address: '127.0.0.1:1' }] }], routes: [{ pool: 'app' }], failover: { notification: { channels: raw } } }));
  if (!loaded.ok) throw new Error(formatIssues(loaded.issues));
  return [...loaded.config.notification.channels];
}

function notifier(t: { after: (fn: () => Promise<void>) => void }, raw: object[], counts = new Counts()): { n: Notifier; lines: string[]; counts: Counts } {
  const { log, lines } = captureLog();
  const n = createNotifier({ notification: { enabled: true, channels: channels(...raw) }, log, counter: counts, clock: { now: () => T0 + 60_000 }, retry: FAST });
  t.after(() => n.close());
  return { n, lines, counts };
}

/** The events of one failover: a primary dies, traffic moves to level 1, the primary comes back. */
const down: ProxyEvent = { type: 'backend_down', pool: 'app', backend: '10.0.0.1:80', level: 0, error: 'ECONNREFUSED', by: 'probe', at: T0 };
const activated: ProxyEvent = { type: 'failover_activated', pool: 'app', from: 0, to: 1, reason: 'level 0 has no healthy backend', at: T0 + 1 };
const up: ProxyEvent = { type: 'backend_up', pool: 'app', backend: '10.0.0.1:80', level: 0, at: T0 + 50_000 };
const recovered: ProxyEvent = { type: 'failover_recovered', pool: 'app', from: 1, to: 0, durationMs: 65_000, reason: 'level 0 healthy for 10000ms', at: T0 + 65_001 };

function assertNoSecret(lines: string[], ...secrets: string[]): void {
  assert.ok(lines.length > 0, 'some log lines were captured');
  for (const s of secrets) for (const line of lines) assert.ok(!line.includes(s), `a log line contains a secret: ${line}`);
}

test('email over STARTTLS with AUTH: one incident, activation and recovery threaded, exact subjects and fields', async (t) => {
  const cert = makeCert();
  const smtp = await startSmtp({ cert, secure: false, user: 'alerts@example.com', password: 'smtp-pa55-word' });
  t.after(async () => { await smtp.close(); cert.remove(); });
  const { n, lines, counts } = notifier(t, [{
    type: 'email', smtp_server: '127.0.0.1', smtp_port: smtp.port, smtp_user: 'alerts@example.com', smtp_password: 'smtp-pa55-word',
    from: 'veloflux@example.com', recipients: ['oncall@example.com', 'lead@example.com'], tls: 'starttls', ca_file: cert.certFile, timeout: '5s',
  }]);

  for (const e of [down, activated, up, recovered]) n.publish(e);
  await smtp.waitMails(4);
  await counts.wait('email', true, 4);

  assert.deepEqual(smtp.authAttempts, Array(4).fill({ user: 'alerts@example.com', ok: true }), 'one connection per message');
  for (const m of smtp.mails) {
    assert.equal(m.secure, true, 'upgraded with STARTTLS before AUTH');
    assert.equal(m.user, 'alerts@example.com');
    assert.equal(m.from, 'veloflux@example.com');
    assert.deepEqual(m.to, ['oncall@example.com', 'lead@example.com']);
    assert.equal(m.headers.get('to'), 'oncall@example.com, lead@example.com');
  }
  const [mDown, mAct, mUp, mRec] = smtp.mails as [typeof smtp.mails[0], typeof smtp.mails[0], typeof smtp.mails[0], typeof smtp.mails[0]];
  assert.equal(mDown.headers.get('subject'), '[VeloFlux] Backend down: 10.0.0.1:80 (pool app, level 0)');
  assert.equal(mUp.headers.get('subject'), '[VeloFlux] Backend up: 10.0.0.1:80 (pool app, level 0)');

  const incident = 'app-20260102T030405Z';
  assert.equal(mAct.headers.get('subject'), '[VeloFlux] Failover activated: pool app, level 0 -> 1');
  assert.equal(mAct.headers.get('x-veloflux-event'), 'failover_activated');
  assert.equal(mAct.headers.get('x-veloflux-incident'), incident);
  assert.equal(mAct.headers.get('message-id'), `<${incident}@veloflux>`);
  assert.match(mAct.text, /^Failover activated for pool "app": new requests moved from level 0 to level 1\. Reason: level 0 has no healthy backend\.$/m);
  assert.match(mAct.text, /^Levels: 0 -> 1$/m);
  assert.match(mAct.text, new RegExp(`^Incident: ${incident} \\(open, started 2026-01-02T03:04:05.001Z\\)$`, 'm'));
  assert.match(mAct.text, /^Backends down at activation: $\n^ {2}- 10\.0\.0\.1:80 \(level 0\): ECONNREFUSED, since 2026-01-02T03:04:05\.000Z$/m);

  assert.equal(mRec.headers.get('subject'), '[VeloFlux] Failover recovered: pool app back on level 0 after 1m5s');
  assert.equal(mRec.headers.get('x-veloflux-incident'), incident, 'the recovery carries the activation\'s incident id');
  assert.equal(mRec.headers.get('in-reply-to'), `<${incident}@veloflux>`, 'threaded under the activation');
  assert.match(mRec.text, new RegExp(`It resolves incident ${incident}, activated at 2026-01-02T03:04:05.001Z \\(level 0 -> 1: level 0 has no healthy backend\\)\\.`));
  assert.match(mRec.text, /^Duration: 1m5s$/m);
  assert.match(mRec.text, /^Backends down: none$/m);

  assertNoSecret(lines, 'smtp-pa55-word');
});

test('email over implicit TLS: a drill is marked as a test and reports the channel result', async (t) => {
  const cert = makeCert();
  const smtp = await startSmtp({ cert, secure: true, user: 'u', password: 'tls-secret-pw' });
  t.after(async () => { await smtp.close(); cert.remove(); });
  const { n, lines } = notifier(t, [
    { type: 'log', level: 'warning' },
    { type: 'email', smtp_server: '127.0.0.1', smtp_port: smtp.port, smtp_user: 'u', smtp_password: 'tls-secret-pw', recipients: ['oncall@example.com'], tls: 'tls', ca_file: cert.certFile, timeout: '5s' },
  ]);

  const results = await n.drill('app', 'level 1 healthy (2 backends), 3ms');
  assert.deepEqual(results.map((r) => ({ channel: r.channel, ok: r.ok, attempts: r.attempts })), [
    { channel: 'log', ok: true, attempts: 1 },
    { channel: 'email', ok: true, attempts: 1 },
  ]);
  const [mail] = smtp.mails;
  assert.ok(mail);
  assert.equal(mail.secure, true);
  assert.equal(mail.from, 'veloflux@localhost', 'no from and a user that is not an address');
  assert.equal(mail.headers.get('subject'), '[VeloFlux TEST] [TEST] Failover drill: pool app (test only, no failover)');
  assert.equal(mail.headers.get('x-veloflux-test'), 'true');
  assert.match(mail.text, /^THIS IS A TEST\. A failover drill was run for pool "app"; no traffic was moved by this notification\. level 1 healthy \(2 backends\), 3ms$/m);
  const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.channel === 'log');
  assert.ok(logged);
  assert.equal(logged.level, 40, 'warning is pino warn');
  assert.equal(logged.test, true);
  assert.equal(logged.msg, 'failover notification (TEST): [TEST] Failover drill: pool app (test only, no failover)');
  assertNoSecret(lines, 'tls-secret-pw');
});

test('email: a wrong password fails at once (no retry), reported and logged without the password', async (t) => {
  const cert = makeCert();
  const smtp = await startSmtp({ cert, secure: false, user: 'u', password: 'right-password' });
  t.after(async () => { await smtp.close(); cert.remove(); });
  const { n, lines, counts } = notifier(t, [
    { type: 'email', smtp_server: '127.0.0.1', smtp_port: smtp.port, smtp_user: 'u', smtp_password: 'wr0ng-pa55word', recipients: ['a@example.com'], ca_file: cert.certFile, timeout: '5s' },
  ]);
  const [r] = await n.drill('app', 'drill');
  assert.deepEqual({ ...r, ms: 0 }, { channel: 'email', ok: false, error: 'EAUTH (SMTP 535)', attempts: 1, ms: 0 });

  n.publish(down);
  await counts.wait('email', false, 2);
  assert.equal(smtp.authAttempts.length, 2, 'the notice was tried once: an auth failure is not retried');
  const failed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'failover notification failed');
  assert.deepEqual(failed.map((l) => [l.channel, l.error, l.attempts]), [['email', 'EAUTH (SMTP 535)', 1], ['email', 'EAUTH (SMTP 535)', 1]]);
  assertNoSecret(lines, 'wr0ng-pa55word', 'right-password');
});

test('webhooks: Slack blocks, Discord embed and generic JSON with an HMAC-SHA256 signature of the exact body', async (t) => {
  const slackHook = await startReceiver('/services/T000/B000/slack-token-XYZ');
  const discordHook = await startReceiver('/api/webhooks/123/discord-token-XYZ');
  const genericHook = await startReceiver('/hooks/generic-token-XYZ');
  t.after(async () => { await slackHook.close(); await discordHook.close(); await genericHook.close(); });
  const { n, lines, counts } = notifier(t, [
    { type: 'webhook', url: slackHook.url, format: 'slack', timeout: '5s' },
    { type: 'webhook', url: discordHook.url, format: 'discord', timeout: '5s' },
    { type: 'webhook', url: genericHook.url, format: 'generic', secret: 'hmac-shared-secret', timeout: '5s' },
  ]);

  for (const e of [down, activated, recovered]) n.publish(e);
  await Promise.all([slackHook.waitRequests(3), discordHook.waitRequests(3), genericHook.waitRequests(3)]);
  await counts.wait('webhook:generic', true, 3);

  // Slack: text + Block Kit.
  const s = slackHook.received[1];
  assert.ok(s);
  assert.equal(s.headers['content-type'], 'application/json');
  assert.equal(s.headers['x-veloflux-event'], 'failover_activated');
  assert.equal(s.headers['x-veloflux-signature'], undefined, 'no secret, no signature');
  assert.equal(s.json.text, 'Failover activated: pool app, level 0 -&gt; 1');
  const blocks = s.json.blocks as Array<Record<string, any>>;
  assert.deepEqual(blocks.map((b) => b.type), ['header', 'section', 'section', 'context']);
  assert.deepEqual(blocks[0]?.text, { type: 'plain_text', text: 'Failover activated: pool app, level 0 -> 1' });
  assert.equal(blocks[1]?.text.text, 'Failover activated for pool "app": new requests moved from level 0 to level 1. Reason: level 0 has no healthy backend.');
  assert.deepEqual((blocks[2]?.fields as Array<{ text: string }>).map((f) => f.text), [
    '*Pool*\napp', '*Levels*\n0 -&gt; 1', '*Incident*\napp-20260102T030405Z (open)', '*Backends down at activation*\n10.0.0.1:80 (level 0): ECONNREFUSED',
  ]);

  // Discord: one embed, mentions off, red for an activation and green for the recovery.
  const d = discordHook.received[1];
  assert.ok(d);
  assert.equal(d.json.username, 'VeloFlux');
  assert.deepEqual(d.json.allowed_mentions, { parse: [] });
  const [embed] = d.json.embeds as Array<Record<string, any>>;
  assert.equal(embed?.title, 'Failover activated: pool app, level 0 -> 1');
  assert.equal(embed?.color, 0xd93f0b);
  assert.equal(embed?.timestamp, '2026-01-02T03:04:05.001Z');
  assert.deepEqual(embed?.fields[2], { name: 'Incident', value: 'app-20260102T030405Z (open)', inline: true });
  assert.equal((discordHook.received[2]?.json.embeds as Array<Record<string, any>>)[0]?.color, 0x2eb67d);

  // Generic: the notice's fields; the signature is the HMAC of the body bytes as received.
  for (const h of genericHook.received) {
    assert.equal(h.headers['x-veloflux-signature'], `sha256=${createHmac('sha256', 'hmac-shared-secret').update(h.body).digest('hex')}`);
    assert.match(String(h.headers['x-veloflux-timestamp']), /^\d{10}$/);
    assert.equal(h.headers['x-veloflux-delivery'], h.json.id);
  }
  const [gDown, gAct, gRec] = genericHook.received.map((h) => h.json) as [Record<string, any>, Record<string, any>, Record<string, any>];
  assert.deepEqual(gAct, {
    source: 'veloflux', version: 1, id: gAct.id, event: 'failover_activated', test: false, pool: 'app', at: '2026-01-02T03:04:05.001Z',
    title: 'Failover activated: pool app, level 0 -> 1',
    text: 'Failover activated for pool "app": new requests moved from level 0 to level 1. Reason: level 0 has no healthy backend.',
    incident: { id: 'app-20260102T030405Z', status: 'open', started_at: '2026-01-02T03:04:05.001Z', from_level: 0, to_level: 1, reason: 'level 0 has no healthy backend' },
    from_level: 0, to_level: 1, reason: 'level 0 has no healthy backend',
    backends_down: [{ address: '10.0.0.1:80', level: 0, error: 'ECONNREFUSED', since: '2026-01-02T03:04:05.000Z' }],
    suppressed: 0,
  });
  assert.equal(gDown.event, 'backend_down');
  assert.deepEqual(gDown.backend, { address: '10.0.0.1:80', level: 0, error: 'ECONNREFUSED', detected_by: 'probe' });
  assert.equal(gDown.incident, null, 'no failover yet when the backend went down');
  assert.equal(gRec.event, 'failover_recovered');
  assert.equal(gRec.duration_ms, 65_000);
  assert.deepEqual(gRec.incident, { ...gAct.incident, status: 'resolved' }, 'the recovery refers to the activation');
  assert.notEqual(gRec.id, gAct.id);

  assertNoSecret(lines, 'hmac-shared-secret', 'slack-token-XYZ', 'discord-token-XYZ', 'generic-token-XYZ');
});

test('webhooks: 503 then 200 is retried with backoff; 400 ends at once; a refused connection is retried then fails; names get #n', async (t) => {
  const flaky = await startReceiver('/flaky-token', [503, 200]);
  const rejecting = await startReceiver('/rejecting-token', [400]);
  const gone = await startReceiver('/gone-token');
  await gone.close(); // nothing listens on its port any more
  t.after(async () => { await flaky.close(); await rejecting.close(); });
  const { n, lines, counts } = notifier(t, [
    { type: 'webhook', url: flaky.url, format: 'generic', timeout: '5s' },
    { type: 'webhook', url: rejecting.url, format: 'generic', timeout: '5s' },
    { type: 'webhook', url: gone.url, format: 'slack', timeout: '5s' },
  ]);
  n.publish(down);
  await counts.wait('webhook:generic#1', true, 1);
  await counts.wait('webhook:generic#2', false, 1);
  await counts.wait('webhook:slack', false, 1);
  assert.equal(flaky.received.length, 2);
  assert.equal(flaky.received[0]?.body, flaky.received[1]?.body, 'a retry sends the same bytes');
  assert.equal(rejecting.received.length, 1, 'a 400 is not retried');
  const outcomes = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.module === 'notify' && l.channel !== undefined && l.attempts !== undefined);
  const by = (c: string): Record<string, unknown> | undefined => outcomes.find((l) => l.channel === c);
  assert.deepEqual([by('webhook:generic#1')?.msg, by('webhook:generic#1')?.attempts], ['failover notification delivered', 2]);
  assert.deepEqual([by('webhook:generic#2')?.error, by('webhook:generic#2')?.attempts], ['HTTP 400', 1]);
  assert.deepEqual([by('webhook:slack')?.error, by('webhook:slack')?.attempts], ['ECONNREFUSED', 3]);
  assertNoSecret(lines, 'flaky-token', 'rejecting-token', 'gone-token', String(gone.port));
});

test('a webhook that never answers times out per attempt; the drill reports it within the timeout', async (t) => {
  const hung = await startReceiver('/hung-token', ['hang']);
  t.after(() => hung.close());
  const { n, lines } = notifier(t, [{ type: 'webhook', url: hung.url, format: 'discord', timeout: '300ms' }]);
  const started = performance.now();
  const [r] = await n.drill('app', 'drill');
  const took = performance.now() - started;
  assert.deepEqual({ ...r, ms: 0 }, { channel: 'webhook:discord', ok: false, error: 'timeout after 300ms', attempts: 1, ms: 0 });
  assert.ok(took >= 290 && took < 2000, `took ${took}ms`);
  assertNoSecret(lines, 'hung-token');
});

test('disabled notifications send nothing; configure() switches channels for new notices', async (t) => {
  const first = await startReceiver('/first');
  const second = await startReceiver('/second');
  t.after(async () => { await first.close(); await second.close(); });
  const { log } = captureLog();
  const counts = new Counts();
  const n = createNotifier({ notification: { enabled: false, channels: channels({ type: 'webhook', url: first.url }) }, log, counter: counts, retry: FAST });
  t.after(() => n.close());
  n.publish(down);
  assert.deepEqual(await n.drill('app', 'x'), []);
  n.configure({ enabled: true, channels: channels({ type: 'webhook', url: second.url }) });
  n.publish(activated);
  await second.waitRequests(1);
  assert.equal(second.received[0]?.json.event, 'failover_activated');
  assert.deepEqual((second.received[0]?.json.backends_down as unknown[]).length, 1, 'the tracker followed backend_down while disabled');
  assert.equal(first.received.length, 0);
});
