// Engine v2 (SPEC 10) end to end: a real proxy, real backends that die, come back and answer 5xx, a real webhook
// receiver, the admin API over HTTP. Hold-down against a flapping primary, the ramp gate against a backup that
// breaks under its share, and failback: manual through the admin API and through a pushed config.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { runLoad } from './helpers/load.ts';
import { startReceiver } from './helpers/notify.ts';
import { headLines, startTestProxy } from './helpers/proxy.ts';
import type { TestProxy } from './helpers/proxy.ts';

const TOKEN = 'engine-v2-token-81bd';

async function tokenFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'veloflux-engine-v2-'));
  const file = join(dir, 'token');
  await writeFile(file, `${TOKEN}\n`);
  return file;
}

async function admin(p: TestProxy, method: 'GET' | 'POST' | 'PUT', path: string, opts: { token?: string | null; body?: string } = {}): Promise<{ status: number; json: any }> {
  const token = opts.token === undefined ? TOKEN : opts.token;
  const res = await request(`${p.adminUrl}${path}`, {
    method,
    headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/yaml' } : {}) },
    ...(opts.body !== undefined ? { body: opts.body } : {}),
  });
  const text = await res.body.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.statusCode, json };
}

async function status(p: TestProxy, pool = 'app'): Promise<any> {
  return (await admin(p, 'GET', `/api/v1/failover/status?pool=${pool}`)).json.pools[0];
}

async function metric(p: TestProxy, line: RegExp): Promise<string | undefined> {
  const res = await request(`${p.adminUrl}/metrics`);
  return (await res.body.text()).split('\n').find((l) => line.test(l));
}

async function body(url: string): Promise<string> {
  const res = await request(url);
  return res.body.text();
}

const fast = (extra = ''): string => `health_check: { interval: "200ms", timeout: "100ms", healthy_threshold: 1, unhealthy_threshold: 1 }${extra}`;

test('hold-down: a primary down/up every 2 s for 60 s gives at most 3 failovers and exactly one flapping notification', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const hook = await startReceiver('/hook');
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${primary.address}", ${fast()} }
      - { address: "${backup.address}", failover_level: 1, ${fast()} }
routes:
  - pool: app
failover:
  strategy: immediate
  recovery_interval: "1s"
  hold_down: { min_dwell: "5s", flap_threshold: 3, flap_window: "2m", max_hold: "2m" }
  notification:
    channels:
      - { type: webhook, url: "${hook.url}", format: generic, timeout: "1s" }
`, {}, { tokenFile: await tokenFile() });
  t.after(async () => { await p.stop(); await primary.kill(); await backup.kill(); await hook.close(); });
  await p.waitReady();

  // 15 cycles of 2 s down, 2 s up: 60 s. Bounded by the cycle count, whatever the machine's speed.
  for (let cycle = 0; cycle < 15; cycle++) {
    await primary.kill();
    await sleep(2000);
    await primary.revive();
    await sleep(2000);
  }
  const failovers = p.events.filter((e) => e.type === 'failover_activated').length;
  assert.ok(failovers >= 1 && failovers <= 3, `${failovers} failovers in 60 s of flapping (at most 3)`);
  const flaps = p.events.filter((e) => e.type === 'flapping');
  assert.equal(flaps.length, 1, 'one flapping episode');
  const st = await status(p);
  assert.equal(st.activeLevel, 1, 'traffic held on the backup while the primary flaps');
  assert.equal(st.flapping.failovers, failovers);
  assert.equal(typeof st.flapping.since, 'string');
  assert.equal(st.flapping.holdMs, 10_000, '2 x min_dwell at the third failover');
  assert.equal(await metric(p, /^veloflux_failover_flapping\{pool="app"\}/), 'veloflux_failover_flapping{pool="app"} 1');

  // The webhook got exactly one flapping notice, linked to the open incident.
  await hook.waitRequests(1, 5000);
  await sleep(500);
  const notices = hook.received.map((h) => h.json);
  const flapping = notices.filter((n) => n.event === 'flapping');
  assert.equal(flapping.length, 1, `flapping notices: ${JSON.stringify(notices.map((n) => n.event))}`);
  const incident = flapping[0]?.incident as { id: string; status: string } | null;
  assert.equal(incident?.status, 'open');
  assert.ok(notices.some((n) => n.event === 'failover_activated' && (n.incident as { id: string }).id === incident?.id), 'the flapping notice names the incident of a failover notice');
  assert.deepEqual(flapping[0]?.flapping, { failovers: 3, hold_ms: 10_000, window_ms: 120_000 });
});

test('ramp gate: a backup that answers 5xx at 30% of the traffic pauses the ramp; it resumes when the backup recovers', async (t) => {
  const backends = await startBackends('p1', 'p2', 'p3', 'backup') as TestBackend[];
  const [p1, p2, p3, backup] = backends as [TestBackend, TestBackend, TestBackend, TestBackend];
  let broken = false;
  backup.handler = (_req, res) => {
    if (!broken) return false;
    res.writeHead(500).end('backup broken');
    return true;
  };
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${p1.address}", ${fast()} }
      - { address: "${p2.address}", ${fast()} }
      - { address: "${p3.address}", ${fast()} }
      - { address: "${backup.address}", failover_level: 1, ${fast()} }
routes:
  - pool: app
failover:
  strategy: graceful
  step_percent: 10
  step_interval: "1s"
  recovery_interval: "1m"
  ramp_gate: { max_error_percent: 5, max_p99: "2s" }
`, {}, { tokenFile: await tokenFile() });
  let stop = false;
  // The event stream, as an operator or a dashboard follows it.
  const sse = await request(`${p.adminUrl}/api/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
  let stream = '';
  sse.body.on('data', (c: Buffer) => { stream += c.toString(); });
  t.after(async () => { stop = true; sse.body.destroy(); await p.stop(); await Promise.all(backends.map((b) => b.kill())); });
  await p.waitReady();
  const load = runLoad(p.url, { concurrency: 4, durationMs: 60_000, maxRequests: 200_000, stop: () => stop });

  // Two of three primaries die: level 0 is below half its capacity, the ramp to level 1 starts at 10%.
  await Promise.all([p1.kill(), p2.kill()]);
  await p.waitFor((e) => e.type === 'failover_activated' && e.to === 1, 10_000, 'the graceful failover');
  await p.waitFor((e) => e.type === 'ramp_step' && e.percent === 30, 15_000, 'the ramp at 30%');
  broken = true;
  const paused = await p.waitFor((e) => e.type === 'ramp_paused', 10_000, 'the ramp paused');
  assert.equal(paused.type === 'ramp_paused' && paused.percent, 30, 'paused where the backup broke');
  assert.match(paused.type === 'ramp_paused' ? paused.reason : '', /level 1 answered .*% errors/);
  const st = await status(p);
  assert.equal(st.ramp.percent, 30);
  assert.match(st.ramp.paused.reason, /max_error_percent 5/);
  assert.equal(await metric(p, /^veloflux_ramp_paused\{pool="app"\}/), 'veloflux_ramp_paused{pool="app"} 1');
  // Still paused two steps later: no ramp_step beyond 30% while the backup errs.
  await sleep(2500);
  assert.equal((await status(p)).ramp.percent, 30);

  const pausedOnStream = /event: ramp_paused\nid: \d+\ndata: (.*)\n/.exec(stream);
  assert.ok(pausedOnStream, 'ramp_paused on the event stream');
  assert.match(JSON.parse(pausedOnStream[1] as string).reason, /max_error_percent 5/);

  broken = false;
  await p.waitFor((e) => e.type === 'ramp_resumed', 10_000, 'the ramp resumed');
  await p.waitFor((e) => e.type === 'ramp_step' && e.percent === 100, 15_000, 'the ramp at 100%');
  assert.equal((await status(p)).ramp, null);
  assert.equal(await metric(p, /^veloflux_ramp_paused\{pool="app"\}/), 'veloflux_ramp_paused{pool="app"} 0');
  stop = true;
  const r = await load;
  assert.ok(r.sent > 0);
});

test('failback manual: traffic waits on the backup until POST /api/v1/failover/failback, which answers 401/404/409 where it must', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const hook = await startReceiver('/hook');
  const p = await startTestProxy(`pools:
  - name: app
    backends:
      - { address: "${primary.address}", ${fast()} }
      - { address: "${backup.address}", failover_level: 1, ${fast()} }
routes:
  - pool: app
failover:
  recovery_interval: "500ms"
  failback: manual
  notification:
    channels:
      - { type: webhook, url: "${hook.url}", format: generic, timeout: "1s" }
`, {}, { tokenFile: await tokenFile() });
  t.after(async () => { await p.stop(); await primary.kill(); await backup.kill(); await hook.close(); });
  await p.waitReady();

  // Nothing awaits yet: 409, and the refusals around it.
  const early = await admin(p, 'POST', '/api/v1/failover/failback?pool=app');
  assert.equal(early.status, 409);
  assert.equal(early.json.error.code, 'VF_ERR_NO_FAILBACK_AWAITING');
  assert.match(early.json.error.message, /pool "app" awaits no failback approval: it is not failed over/);
  assert.equal((await admin(p, 'POST', '/api/v1/failover/failback?pool=app', { token: null })).status, 401);
  assert.equal((await admin(p, 'POST', '/api/v1/failover/failback?pool=app', { token: 'wrong' })).status, 401);
  const unknown = await admin(p, 'POST', '/api/v1/failover/failback?pool=nope');
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json.error.code, 'VF_ERR_UNKNOWN_POOL');
  assert.equal((await admin(p, 'POST', '/api/v1/failover/failback')).status, 400);
  assert.equal((await admin(p, 'POST', '/api/v1/failover/failback?pool=app&pool=app')).status, 400);
  assert.equal((await admin(p, 'GET', '/api/v1/failover/failback?pool=app')).status >= 400, true);

  await primary.kill();
  await p.waitFor((e) => e.type === 'failover_activated', 10_000, 'failover');
  await primary.revive();
  const waiting = await p.waitFor((e) => e.type === 'failback_awaiting_approval', 10_000, 'awaiting approval');
  assert.equal(waiting.type === 'failback_awaiting_approval' && waiting.to, 0);
  // Well past recovery_interval: still on the backup.
  await sleep(1500);
  const st = await status(p);
  assert.equal(st.activeLevel, 1);
  assert.deepEqual({ mode: st.failback.mode, awaitingApproval: st.failback.awaitingApproval, to: st.failback.to }, { mode: 'manual', awaitingApproval: true, to: 0 });
  assert.match(st.failback.message, /^awaiting failback approval/);
  assert.equal(await body(`${p.url}/`), 'backup');

  const ok = await admin(p, 'POST', '/api/v1/failover/failback?pool=app');
  assert.equal(ok.status, 200);
  assert.equal(ok.json.activeLevel, 0);
  assert.equal(ok.json.failback.awaitingApproval, false);
  assert.equal(await body(`${p.url}/`), 'primary');
  // Approving again: nothing awaits.
  assert.equal((await admin(p, 'POST', '/api/v1/failover/failback?pool=app')).status, 409);

  await hook.waitRequests(3, 5000);
  const notices = hook.received.map((h) => h.json);
  const awaiting = notices.filter((n) => n.event === 'failback_awaiting_approval');
  assert.equal(awaiting.length, 1);
  assert.equal((awaiting[0]?.incident as { status: string }).status, 'open');
  assert.match(String(awaiting[0]?.text), /POST \/api\/v1\/failover\/failback\?pool=app/);
});

test('failback manual: a new override.failback_approval in a pushed config approves the awaited failback; the same token again does nothing', async (t) => {
  const [primary, backup] = await startBackends('primary', 'backup') as [TestBackend, TestBackend];
  const config = (approval?: string): string => `pools:
  - name: app
    backends:
      - { address: "${primary.address}", ${fast()} }
      - { address: "${backup.address}", failover_level: 1, ${fast()} }
    override: { mode: auto${approval ? `, failback_approval: "${approval}"` : ''} }
routes:
  - pool: app
failover:
  recovery_interval: "500ms"
  failback: manual
`;
  const file = await tokenFile();
  const p = await startTestProxy(config('2026-01-01T00:00:00Z'), {}, { tokenFile: file });
  t.after(async () => { await p.stop(); await primary.kill(); await backup.kill(); });
  await p.waitReady();
  const push = async (approval: string): Promise<void> => {
    const r = await admin(p, 'PUT', '/api/v1/config', { body: `${headLines(file)}${config(approval)}` });
    assert.equal(r.status, 200, JSON.stringify(r.json));
  };

  await primary.kill();
  await p.waitFor((e) => e.type === 'failover_activated', 10_000, 'failover');
  await primary.revive();
  await p.waitFor((e) => e.type === 'failback_awaiting_approval', 10_000, 'awaiting approval');
  // The token the proxy started with approves nothing (it was not new); a config push that keeps it neither.
  await push('2026-01-01T00:00:00Z');
  await sleep(300);
  assert.equal((await status(p)).activeLevel, 1);

  await push('2026-01-01T00:05:00Z');
  await p.waitFor((e) => e.type === 'failover_recovered', 5000, 'failback on the new token');
  assert.equal((await status(p)).activeLevel, 0);

  // A second episode: the token already seen approves nothing; a new one does.
  await primary.kill();
  await p.waitFor((e) => e.type === 'failover_activated' && e.at > Date.now() - 5000 && p.events.filter((x) => x.type === 'failover_activated').length === 2, 10_000, 'second failover');
  await primary.revive();
  await p.waitFor((e) => e.type === 'failback_awaiting_approval' && p.events.filter((x) => x.type === 'failback_awaiting_approval').length === 2, 10_000, 'second wait');
  await sleep(300);
  assert.equal((await status(p)).activeLevel, 1);
  await push('2026-01-01T00:10:00Z');
  await p.waitFor((e) => e.type === 'failover_recovered' && p.events.filter((x) => x.type === 'failover_recovered').length === 2, 5000, 'second failback');
});
