// Hostile config input: bombs (nesting, aliases, size), secrets of the wrong type, and a fuzz loop of mutated configs,
// against the loader, the CLI, and a real proxy process (its CPU time and RSS read from /proc).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { loadConfigText, YAML_LIMITS } from '@veloflux/config/load';
import { channelSchema, SECRET_PATHS } from '@veloflux/config/schema';
import { runCli, startProxyProcess, writeConfig } from './helpers/process.ts';
import type { ProxyProcess } from './helpers/process.ts';
import { headLines, startTestProxy } from './helpers/proxy.ts';

const TOKEN = 'hostile-token-3b7d';
/** What startProxyProcess starts with: a PUT keeps it (changing it needs a restart, 409). */
const HEAD = 'listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0" }\n';

function laughs(levels = 10, width = 10): string {
  let s = 'a0: &a0 "lol"\n';
  for (let i = 1; i < levels; i++) s += `a${i}: &a${i} [${Array(width).fill(`*a${i - 1}`).join(', ')}]\n`;
  return s;
}

/** name, text, the message the problem starts with, its line. */
const BOMBS: [string, string, RegExp, number][] = [
  ['1M nested brackets (2 MB)', `${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}`, /^nesting deeper than 64 levels/, 1],
  ['nested flow mappings', `pools: ${'{a: '.repeat(400_000)}1${'}'.repeat(400_000)}`, /^nesting deeper than 64 levels/, 1],
  ['nested block mappings', Array.from({ length: 1500 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n'), /^nesting deeper than 64 levels/, 64],
  ['compact nested sequences', `pools:\n  ${'- '.repeat(1_000_000)}x`, /^nesting deeper than 64 levels/, 2],
  ['billion laughs', laughs(), /^aliases expand to too many values/, 0],
  ['a million aliases', `a: &x 1\nb: [${Array(1_000_000).fill('*x').join(',')}]`, /^more than 100 aliases/, 2],
  ['a 3 MB string', `region: "${'x'.repeat(3_000_000)}"`, /^a value of 3000002 characters; at most 65536/, 1],
  ['a 3 MB plain scalar', `listen: ${'y'.repeat(3_000_000)}`, /^a value of 3000000 characters/, 1],
  ['a million list items', `pools: [${'1,'.repeat(1_000_000)}1]`, /^the config is too large: more than 100000 YAML tokens/, 1],
  ['3 MB of comments', `${'# comment comment comment comment comment\n'.repeat(70_000)}pools: []\n`, /^the config is too large/, 50_001],
];

test('bombs are refused by the pre-check with a (yaml) problem and its line, before a document is built', () => {
  for (const [name, text, message, line] of BOMBS) {
    const r = loadConfigText(text);
    assert.ok(!r.ok, name);
    assert.equal(r.issues.length, 1, name);
    const [issue] = r.issues;
    assert.equal(issue?.path, '(yaml)', name);
    assert.match(issue?.message ?? '', message, name);
    if (line > 0) assert.equal(issue?.line, line, name);
  }
});

test('the limits leave real configs alone: 91 pools sharing one anchored health check (90 aliases), a 60 000-character value', () => {
  const pools = Array.from({ length: 90 }, (_, i) => `  - name: p${i}\n    backends:\n      - { address: "10.0.${i}.1:80", health_check: *hc }\n      - { address: "10.1.${i}.1:80", failover: true }\n`).join('');
  const real = `pools:\n  - name: base\n    backends: [{ address: "127.0.0.1:80", health_check: &hc { path: "/health", interval: "5s" } }]\n${pools}region: "${'r'.repeat(60_000)}"\n`;
  const r = loadConfigText(real);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues.slice(0, 3)));
  assert.equal(r.config.pools.length, 91);
  assert.equal(r.config.pools[5]?.backends[0]?.healthCheck.intervalMs, 5000);
  // 1500 pools written out (no aliases) are about 60 000 tokens: under the limit.
  const big = Array.from({ length: 1500 }, (_, i) => `  - name: q${i}\n    backends: [{ address: "10.2.${i % 250}.${1 + Math.floor(i / 250)}:80" }]\n`).join('');
  const b = loadConfigText(`pools:\n${big}`);
  assert.ok(b.ok, b.ok ? '' : JSON.stringify(b.issues.slice(0, 3)));
  assert.ok(YAML_LIMITS.depth >= 32 && YAML_LIMITS.aliases >= 90);
});

function procStat(pid: number): { cpuMs: number; rssMb: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime, in clock ticks (100 per second on Linux)
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuMs: ticks * 10, rssMb: Number(rss?.[1]) / 1024 };
}

async function put(admin: number, body: string): Promise<{ status: number; json: any; text: string }> {
  const res = await request(`http://127.0.0.1:${admin}/api/v1/config`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/yaml' }, body });
  const text = await res.body.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.statusCode, json, text };
}

async function version(admin: number): Promise<string> {
  const res = await request(`http://127.0.0.1:${admin}/api/v1/config`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return ((await res.body.json()) as { version: string }).version;
}

async function startReal(t: { after: (fn: () => Promise<void>) => void }): Promise<ProxyProcess> {
  const proc = await startProxyProcess('pools: []\n', [], 20_000, { VELOFLUX_ADMIN_TOKEN: TOKEN });
  t.after(async () => { proc.child.kill('SIGKILL'); await proc.exited; });
  return proc;
}

test('a real proxy process: each bomb PUT is a 400 with its line, costs little CPU, leaves RSS where it was, keeps the config', async (t) => {
  const proc = await startReal(t);
  const pid = proc.child.pid as number;
  const before = await version(proc.admin);
  // Warm up (JIT, first parse) so the baseline is the steady state.
  assert.equal((await put(proc.admin, `${HEAD}pools: []\n`)).status, 200);
  const base = procStat(pid);
  for (const [name, text, message] of BOMBS) {
    const a = procStat(pid);
    // While the PUT is in flight, /healthz is asked every 10 ms: the longest wait for an answer shows how long the
    // proxy's event loop was blocked (measured from outside, so it includes this test process's own delays).
    let probing = true;
    let worst = 0;
    const prober = (async () => {
      while (probing) {
        const t0 = performance.now();
        const h = await request(`http://127.0.0.1:${proc.admin}/healthz`);
        await h.body.dump();
        worst = Math.max(worst, performance.now() - t0);
        await sleep(10);
      }
    })();
    const r = await put(proc.admin, text);
    probing = false;
    await prober;
    const b = procStat(pid);
    t.diagnostic(`${name}: ${b.cpuMs - a.cpuMs} ms CPU in the proxy, longest /healthz wait ${worst.toFixed(0)} ms`);
    assert.ok(worst < 2000, `${name}: /healthz waited ${worst.toFixed(0)} ms`);
    assert.equal(r.status, 400, `${name}: ${r.text.slice(0, 200)}`);
    assert.equal(r.json.error.code, 'VF_ERR_CONFIG_INVALID', name);
    assert.equal(r.json.error.issues[0].path, '(yaml)', name);
    assert.match(r.json.error.issues[0].message, message, name);
    // Generous bounds (a shared 2-core machine): before the pre-check, 1M brackets took 6-7 s of CPU and 1-3 GB.
    // The CPU includes receiving and buffering the body (up to 3 MB) over HTTP.
    assert.ok(b.cpuMs - a.cpuMs < 1500, `${name}: ${b.cpuMs - a.cpuMs} ms of CPU in the proxy`);
    assert.equal(await version(proc.admin), before, `${name}: the running config keeps serving`);
  }
  // Let the collector return the request buffers, then compare with the baseline.
  await sleep(500);
  const after = procStat(pid);
  assert.ok(after.rssMb - base.rssMb < 150, `RSS ${base.rssMb.toFixed(0)} MB -> ${after.rssMb.toFixed(0)} MB`);
  const health = await request(`http://127.0.0.1:${proc.admin}/healthz`);
  assert.equal(health.statusCode, 200);
  await health.body.dump();
  const out = proc.stdout.join('\n');
  assert.ok(!/VF_ERR_INTERNAL|\n\s+at |"stack"/.test(out), 'no internal error, no stack trace in the log');
  assert.ok(out.includes('config rejected: invalid'), 'each rejection is logged');
});

test('at start, a bomb config exits 2 naming the file, the line and the limit (run and --check)', async () => {
  for (const [name, text, message, line] of BOMBS.filter(([n]) => ['1M nested brackets (2 MB)', 'billion laughs', 'a 3 MB string', 'nested block mappings'].includes(n))) {
    const file = await writeConfig(text);
    for (const args of [['--config', file, '--check'], ['--config', file]]) {
      const r = await runCli(args, 30_000);
      assert.equal(r.code, 2, `${name} ${args.join(' ')}: ${r.stderr.slice(0, 300)}`);
      const m = new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:${line > 0 ? `${line}: ` : ' '}\\(yaml\\): `).exec(r.stderr);
      assert.ok(m, `${name}: ${r.stderr.slice(0, 300)}`);
      assert.match(r.stderr.slice((m?.index ?? 0) + (m?.[0].length ?? 0)), message, name);
      assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
    }
  }
});

// ---- secrets -------------------------------------------------------------------------------------------------

/** A valid channel of each type, to put a wrong value into. */
const CHANNEL: Record<string, Record<string, unknown>> = {
  email: { type: 'email', smtp_server: '127.0.0.1', smtp_port: 9, smtp_user: 'u@example.com', smtp_password: 'valid-pass-0000', recipients: ['ops@example.com'] },
  webhook: { type: 'webhook', url: 'http://127.0.0.1:9/valid-0000', secret: 'valid-hmac-0000' },
};

/** Wrong values for a secret, each with a marker that must never come back. */
const WRONG: [string, unknown, string][] = [
  ['a number', 918_273_645_546, '918273645546'],
  ['a float', 3.14159265, '3.14159265'],
  ['a boolean', true, 'true'],
  ['a mapping', { nested: 'leak-obj-5521' }, 'leak-obj-5521'],
  ['a list', ['leak-arr-7781'], 'leak-arr-7781'],
  ['a wrong-scheme string', 'ftp://leak-ftp-6612@example.com', 'leak-ftp-6612'],
  ['a string with spaces', 'https://leak space 3345', 'leak space 3345'],
  ['null', null, 'null-never'],
];

/** One config per secret path and wrong value, generated from the schema's SECRET_PATHS. */
function secretCases(): { path: string; kind: string; value: unknown; marker: string; text: string }[] {
  const variants = channelSchema.describe().oneOf ?? [];
  const out: { path: string; kind: string; value: unknown; marker: string; text: string }[] = [];
  for (const path of SECRET_PATHS) {
    const m = /^failover\.notification\.channels\[\]\.([a-z_]+)$/.exec(path);
    assert.ok(m, `a secret path the test does not know how to fill yet: ${path}`);
    const field = m[1] as string;
    const types = variants.filter((v) => v.properties?.[field]).map((v) => v.properties?.type?.enum?.[0] as string);
    assert.ok(types.length > 0, path);
    for (const type of types) {
      for (const [kind, value, marker] of WRONG) {
        const channel = { ...CHANNEL[type], [field]: value };
        out.push({ path, kind, value, marker, text: `${JSON.stringify({ pools: [], failover: { notification: { channels: [channel] } } })}\n` });
      }
    }
  }
  return out;
}

test('secret paths come from the schema and include every known secret', () => {
  assert.deepEqual([...SECRET_PATHS].sort(), ['failover.notification.channels[].secret', 'failover.notification.channels[].smtp_password', 'failover.notification.channels[].url']);
});

test('a wrong value at any secret path is never echoed: loader, PUT 400 body, log, --check, GET /api/v1/config', async (t) => {
  const cases = secretCases();
  assert.ok(cases.length >= SECRET_PATHS.length * WRONG.length);
  process.env.VELOFLUX_ADMIN_TOKEN = TOKEN;
  t.after(() => { delete process.env.VELOFLUX_ADMIN_TOKEN; });
  const p2 = await startTestProxy('pools: []\n');
  t.after(() => p2.stop());
  for (const c of cases) {
    const what = `${c.path} = ${c.kind}`;
    const r = loadConfigText(c.text);
    // Some fields take any string, and null is "absent" for optional ones: those configs are valid.
    if (r.ok) { assert.ok(typeof c.value === 'string' || c.value === null, `${what} was accepted`); continue; }
    const shown = JSON.stringify(r.issues);
    assert.ok(!shown.includes(c.marker), `${what}: ${shown}`);
    assert.ok(r.issues.some((i) => i.path.startsWith('failover.notification.channels[0].')), what);
    const res = await put(p2.proxy.admin.port, c.text);
    assert.equal(res.status, 400, what);
    assert.ok(!res.text.includes(c.marker), `${what}: ${res.text}`);
  }
  assert.ok(!p2.logs.some((l) => WRONG.some(([, , m]) => l.includes(m))), 'no secret in the log');
  // --check output, for one case per path (a process each).
  for (const path of SECRET_PATHS) {
    const c = cases.find((x) => x.path === path && x.kind === 'a number');
    assert.ok(c);
    const r = await runCli(['--config', await writeConfig(c.text), '--check']);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(path.replace('[]', '[0]')), r.stderr);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(c.marker), r.stderr);
  }
  // Valid secrets at every path: GET /api/v1/config shows none of them.
  const valid = `${headLines()}pools: []\nfailover: ${JSON.stringify({ notification: { channels: [CHANNEL.email, CHANNEL.webhook] } })}\n`;
  assert.equal((await put(p2.proxy.admin.port, valid)).status, 200);
  const got = await request(`http://127.0.0.1:${p2.proxy.admin.port}/api/v1/config`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const text = await got.body.text();
  for (const v of ['valid-pass-0000', 'valid-0000', 'valid-hmac-0000']) assert.ok(!text.includes(v), `${v} in ${text}`);
  assert.equal((text.match(/<redacted>/g) ?? []).length, SECRET_PATHS.length);
});

// ---- fuzz ----------------------------------------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FUZZ_BASE = `${HEAD}pools:
  - name: app
    backends:
      - address: "127.0.0.1:9"
        weight: 100
        health_check: { path: "/health", interval: "1h", timeout: "100ms", unhealthy_threshold: 2 }
      - { address: "127.0.0.1:10", failover: true, health_check: { interval: "1h" } }
    failover: { strategy: graceful }
routes:
  - { host: "app.test", path_prefix: "/", pool: app }
failover:
  recovery_interval: "10s"
  notification:
    channels:
      - { type: log, level: warning }
      - { type: webhook, url: "http://127.0.0.1:9/hook", format: generic, secret: "s3" }
dataplane: { max_attempts: 3 }
`;

const SPECIAL = ['[', ']', '{', '}', ':', '-', '?', '*a', '&a ', '!!str ', '!!binary ', '<<: ', '"', "'", '#', '|', '>', '\n', '  ', '\t', ',', '%', '@', '`', '\u0000', '\uFEFF', '~', 'null', '1e309', '-1', '0x1F', '---\n', '...\n', '\\'];

function mutate(text: string, rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  let s = text;
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rnd() * (s.length + 1));
    switch (Math.floor(rnd() * 6)) {
      case 0: s = s.slice(0, at) + pick(SPECIAL) + s.slice(at); break;
      case 1: s = s.slice(0, at) + s.slice(at + 1 + Math.floor(rnd() * 8)); break;
      case 2: { const len = Math.floor(rnd() * 40); s = s.slice(0, at) + s.slice(at, at + len).repeat(1 + Math.floor(rnd() * 50)) + s.slice(at); break; }
      case 3: { const lines = s.split('\n'); const a = Math.floor(rnd() * lines.length); const b = Math.floor(rnd() * lines.length); [lines[a], lines[b]] = [lines[b] as string, lines[a] as string]; s = lines.join('\n'); break; }
      case 4: s = s.replace(/"[^"\n]*"/, () => pick(['123', 'true', '[]', '{}', '~', '"x"', `"${'z'.repeat(300)}"`, '*a', '-5', '1.5'])); break;
      default: s = s.slice(0, at) + pick(['[', '{', '- ']).repeat(1 + Math.floor(rnd() * 200)) + s.slice(at); break;
    }
  }
  return s;
}

test('fuzz: mutated configs PUT to a real proxy process answer 200, 400 or 409, never 500; a 400 keeps the old config; bounded memory; no crash', async (t) => {
  const seed = Number(process.env.VELOFLUX_FUZZ_SEED ?? Date.now() % 1_000_000);
  const rnd = mulberry32(seed);
  const proc = await startReal(t);
  const pid = proc.child.pid as number;
  assert.equal((await put(proc.admin, FUZZ_BASE)).status, 200, `seed ${seed}`);
  let expected = await version(proc.admin);
  const rss0 = procStat(pid).rssMb;
  const counts: Record<number, number> = {};
  const deadline = Date.now() + 20_000;
  let n = 0;
  for (; n < 400 && Date.now() < deadline; n++) {
    const text = mutate(FUZZ_BASE, rnd);
    const r = await put(proc.admin, text);
    counts[r.status] = (counts[r.status] ?? 0) + 1;
    const what = `seed ${seed} (VELOFLUX_FUZZ_SEED=${seed}), case ${n}: ${r.status} ${r.text.slice(0, 200)}\n--- config:\n${text.slice(0, 500)}`;
    assert.ok([200, 400, 409].includes(r.status), what);
    if (r.status === 400) assert.equal(r.json?.error?.code, 'VF_ERR_CONFIG_INVALID', what);
    if (r.status === 200) expected = r.json.version;
    assert.equal(await version(proc.admin), expected, `${what}\nthe running config must be the last one applied`);
    // Back to the base now and then, so mutations keep starting from a config with pools.
    if (r.status === 200 && n % 5 === 0) { await put(proc.admin, FUZZ_BASE); expected = await version(proc.admin); }
  }
  assert.ok(n >= 50, `only ${n} cases ran (seed ${seed})`);
  assert.ok((counts[400] ?? 0) > 0, `some mutations are invalid: ${JSON.stringify(counts)}`);
  await sleep(300);
  const rss1 = procStat(pid).rssMb;
  assert.ok(rss1 - rss0 < 150, `seed ${seed}: RSS ${rss0.toFixed(0)} MB -> ${rss1.toFixed(0)} MB`);
  assert.equal(proc.child.exitCode, null, `seed ${seed}: the proxy is still running`);
  assert.ok(!/VF_ERR_INTERNAL|\n\s+at /.test(proc.stdout.join('\n')), `seed ${seed}: no internal error in the log`);
});
