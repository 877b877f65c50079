// Every binary answers --version and --help on stdout (exit 0), refuses an unknown flag in one line (exit 2), and the
// proxy's /metrics carries veloflux_build_info and the standard process_* metrics of the process that answers the
// scrape (the main one, also with data-plane workers), all of it accepted by promtool.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { startProxyProcess } from './helpers/process.ts';

const root = (p: string): string => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const version = (ws: string): string => (JSON.parse(readFileSync(root(`${ws}/package.json`), 'utf8')) as { version: string }).version;

/** The bin each workspace declares, by name. */
const BINS: [string, string, string][] = [
  ['veloflux-proxy', 'proxy', 'bin/veloflux-proxy.js'],
  ['veloflux', 'cli', 'bin/veloflux.js'],
  ['veloflux-operator', 'operator', 'bin/veloflux-operator.js'],
];

async function run(file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString(); });
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stdout, stderr };
}

test('every binary: its bin name in package.json, --version and --help on stdout, an unknown flag in one line', async () => {
  for (const [name, ws, bin] of BINS) {
    const pkg = JSON.parse(readFileSync(root(`${ws}/package.json`), 'utf8')) as { bin?: Record<string, string> };
    assert.equal(pkg.bin?.[name], `./${bin}`, `${ws}/package.json bin ${name}`);
    const file = root(`${ws}/${bin}`);
    for (const flag of ['--version', '-V']) {
      const v = await run(file, [flag]);
      assert.deepEqual([v.code, v.stdout, v.stderr], [0, `${name} ${version(ws)}\n`, ''], `${name} ${flag}`);
    }
    const h = await run(file, ['--help']);
    assert.equal(h.code, 0, name);
    assert.equal(h.stderr, '', `${name} --help writes nothing to stderr`);
    assert.match(h.stdout, new RegExp(`^usage: ${name} `), name);
    assert.match(h.stdout, /--version/);
    const bad = await run(file, name === 'veloflux' ? ['setup', '--frobnicate'] : ['--frobnicate']);
    assert.equal(bad.code, 2, name);
    assert.equal(bad.stdout, '');
    assert.equal(bad.stderr.split('\n').filter(Boolean).length, 1, `${name}: one line, got ${bad.stderr}`);
    assert.match(bad.stderr, /--frobnicate/);
    assert.match(bad.stderr, /--help lists the (options|flags)/);
  }
});

function promtool(text: string): Promise<{ code: number; text: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, text: `${stdout}${stderr}` });
    });
    child.stdin?.end(text);
  });
}

test('--workers 2: /metrics has veloflux_build_info and the main process\'s process_* metrics; promtool accepts it', async (t) => {
  const p = await startProxyProcess('pools: []\n', ['--workers', '2']);
  t.after(async () => { if (p.child.exitCode === null) { p.child.kill('SIGTERM'); await p.exited; } });
  const text = await (await request(`http://127.0.0.1:${p.admin}/metrics`)).body.text();
  assert.ok(text.includes(`veloflux_build_info{version="${version('proxy')}"} 1`), text.slice(0, 500));
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds', 'nodejs_heap_size_used_bytes']) {
    assert.match(text, new RegExp(`^${name}(\\{[^}]*\\})? \\d`, 'm'), name);
  }
  // One process reports: the main one (the scrape target), not a sum over the workers.
  assert.equal(text.match(/^process_start_time_seconds /gm)?.length, 1);
  const ps = await new Promise<string>((resolve) => execFile('ps', ['-o', 'pid=', '--ppid', String(p.child.pid)], (_e, out) => resolve(out)));
  assert.equal(ps.trim().split(/\s+/).length, 2, 'two workers run');
  const fds = Number(/^process_open_fds (\d+)/m.exec(text)?.[1]);
  const own = (await new Promise<string>((resolve) => execFile('ls', [`/proc/${p.child.pid}/fd`], (_e, out) => resolve(out)))).trim().split('\n').length;
  assert.ok(Math.abs(fds - own) <= 5, `process_open_fds ${fds} is the main process's (${own})`);
  const check = await promtool(text);
  assert.equal(check.code, 0, check.text);
});
