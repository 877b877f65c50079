// The proxy and operator images, built from images/*/Dockerfile (images/tools/build.sh: buildah, vfs, chroot, on
// the local node:…-bookworm-slim stand-in; cached) and run for real: each image's root filesystem, unpacked by
// buildah, runs under runc (Debian's package) with the image's own user, working directory, environment and entrypoint, read-only,
// in its own pid/mount/ipc/uts namespaces. The network namespace is the host's, so the containers reach only what
// listens on 127.0.0.1 here: a backend of this test, and the test control plane.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { installCrds, withNamespace } from '../cluster/testenv.ts';
import { CRD_YAML, freePort, operatorCredentials, until } from '../operator/env.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
// The devDependencies (the root's and every workspace's) that the lockfile marks dev-only (some, like @types/node,
// are also pulled in by a production dependency and then belong in the image).
interface LockEntry { dev?: boolean; dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> }
interface Manifest { name?: string; workspaces?: string[]; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const manifest = (dir: string): Manifest => JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as Manifest;
const workspaces = new Map((manifest('.').workspaces ?? []).map((dir) => [manifest(dir).name ?? dir, { dir, ...manifest(dir) }]));
const DEV_DEPENDENCIES = [...new Set([manifest('.'), ...workspaces.values()].flatMap((m) => Object.keys(m.devDependencies ?? {})))]
  .filter((d) => lock.packages[`node_modules/${d}`]?.dev === true);

/**
 * Direct dependencies of the workspaces an image does not run (the CLI's prompts, the other image's client
 * libraries) that nothing the image runs needs: the image's workspace, the workspaces it depends on, and everything
 * their dependencies pull in per the lockfile.
 */
function foreignDependencies(dir: string): string[] {
  const own = new Set<string>();
  const pending = [...workspaces.values()].filter((w) => w.dir === dir).map((w) => w.name ?? dir);
  const needed = new Set<string>();
  while (pending.length > 0) {
    const name = pending.pop() as string;
    const ws = workspaces.get(name);
    const deps = ws ? Object.keys(ws.dependencies ?? {}) : Object.keys({ ...lock.packages[`node_modules/${name}`]?.dependencies, ...lock.packages[`node_modules/${name}`]?.optionalDependencies });
    if (ws) own.add(name);
    for (const d of deps) if (!needed.has(d) && !own.has(d)) { needed.add(d); pending.push(d); }
  }
  return [...new Set([...workspaces.values()].filter((w) => !own.has(w.name ?? w.dir))
    .flatMap((w) => Object.keys(w.dependencies ?? {}))
    .filter((d) => !needed.has(d) && !workspaces.has(d)))];
}

let storage = '';
const buildah = (...args: string[]): string => {
  const r = spawnSync('buildah', ['--root', storage, '--runroot', join(storage, '../run'), '--storage-driver', 'vfs', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`buildah ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
};

interface ImageConfig { User?: string; WorkingDir?: string; Env?: string[]; Entrypoint?: string[]; Cmd?: string[] }
interface Unpacked { rootfs: string; config: ImageConfig; size: number }
const containers: string[] = [];

function unpack(image: string): Unpacked {
  const ref = `localhost/veloflux-${image}:dev`;
  const ctr = buildah('from', '--pull=never', ref);
  containers.push(ctr);
  const rootfs = buildah('mount', ctr);
  const config = (JSON.parse(buildah('inspect', '--type', 'image', ref)) as { OCIv1: { config: ImageConfig } }).OCIv1.config;
  const du = spawnSync('du', ['-sb', rootfs], { encoding: 'utf8' });
  const size = Number(du.stdout.split('\t')[0]);
  console.log(`# image veloflux-${image}: ${(size / 1e6).toFixed(1)} MB uncompressed (user ${config.User}, workdir ${config.WorkingDir}, entrypoint ${JSON.stringify(config.Entrypoint)})`);
  return { rootfs, config, size };
}

function walk(dir: string, visit: (path: string) => void): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory()) walk(path, visit);
    else visit(path);
  }
}

interface Run { child: ChildProcess; logs: string[]; id: string; exited: Promise<number | null> }

/** runc runs the image as configured; `mounts` are read-only binds (the chart's config volume, a kubeconfig). */
/** `argv` replaces the entrypoint too (the sandbox check below); otherwise `extraArgs` replace the image's CMD. */
function run(img: Unpacked, extraArgs: string[] | undefined, mounts: { source: string; destination: string }[], extraEnv: string[] = [], argv?: string[]): Run {
  const bundle = mkdtempSync(join(tmpdir(), 'vf-image-'));
  const id = `vf-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const [uid, gid] = (img.config.User ?? '0:0').split(':').map(Number);
  const spec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false, user: { uid, gid }, cwd: img.config.WorkingDir || '/',
      args: argv ?? [...(img.config.Entrypoint ?? []), ...(extraArgs ?? img.config.Cmd ?? [])],
      env: [...(img.config.Env ?? []), ...extraEnv],
      capabilities: { bounding: [], effective: [], permitted: [] }, noNewPrivileges: true,
    },
    root: { path: img.rootfs, readonly: true },
    hostname: 'veloflux',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k'] },
      ...mounts.map((m) => ({ destination: m.destination, type: 'bind', source: m.source, options: ['rbind', 'ro'] })),
    ],
    linux: { namespaces: [{ type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }] },
  };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  const child = spawn('runc', ['run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  child.stdout.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
  child.stderr.on('data', (c: Buffer) => logs.push(...c.toString().split('\n').filter(Boolean)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => { rmSync(bundle, { recursive: true, force: true }); r(code); }));
  after(async () => {
    if (child.exitCode === null) { spawnSync('runc', ['kill', id, 'KILL']); await exited; }
    spawnSync('runc', ['delete', '--force', id]);
  });
  return { child, logs, id, exited };
}

before(() => {
  // Cached: a warm run reuses the base and every unchanged Dockerfile step. Progress goes to stderr.
  const r = spawnSync(join(root, 'images/tools/build.sh'), [], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', timeout: 60 * 60_000 });
  assert.equal(r.status, 0, 'images/tools/build.sh failed (its output is above)');
  storage = r.stdout.trim().split('\n').pop() ?? '';
  assert.ok(existsSync(storage), `no image store at ${storage}`);
});
after(() => { for (const c of containers) spawnSync('buildah', ['--root', storage, '--runroot', join(storage, '../run'), '--storage-driver', 'vfs', 'rm', c]); });

function commonContents(img: Unpacked, workspace: string): void {
  assert.equal(img.config.User, '65532:65532');
  assert.equal(img.config.WorkingDir, '/app');
  assert.ok(img.config.Env?.includes('NODE_ENV=production'), `NODE_ENV=production in ${JSON.stringify(img.config.Env)}`);
  for (const dep of DEV_DEPENDENCIES) {
    assert.equal(existsSync(join(img.rootfs, 'app/node_modules', dep, 'package.json')), false, `devDependency ${dep} in the image`);
  }
  const foreign = foreignDependencies(workspace);
  console.log(`# ${workspace} image: none of ${DEV_DEPENDENCIES.length} devDependencies and none of ${foreign.join(', ') || '(no other workspace dependencies)'}`);
  for (const dep of foreign) {
    assert.equal(existsSync(join(img.rootfs, 'app/node_modules', dep, 'package.json')), false, `${dep} (another workspace's dependency) in the ${workspace} image`);
  }
  for (const other of [...workspaces.values()].map((w) => w.dir).filter((d) => d !== workspace && !d.startsWith('packages/'))) {
    assert.equal(existsSync(join(img.rootfs, 'app', other, 'package.json')), false, `workspace ${other} in the ${workspace} image`);
  }
  for (const cache of ['root/.npm', 'app/.npm', 'home/node/.npm', 'tmp/.npm']) {
    assert.equal(existsSync(join(img.rootfs, cache, '_cacache')), false, `npm cache /${cache} in the image`);
  }
  assert.equal(existsSync(join(img.rootfs, 'app/.git')), false, '.git in the image');
}

describe('proxy image', () => {
  let img: Unpacked;
  before(() => { img = unpack('proxy'); });

  test('holds the compiled proxy and its production dependencies only', () => {
    commonContents(img, 'proxy');
    assert.deepEqual(img.config.Entrypoint, ['node', 'proxy/dist/main.js']);
    assert.ok(existsSync(join(img.rootfs, 'app/proxy/dist/main.js')));
    assert.equal(existsSync(join(img.rootfs, 'app/proxy/src')), false, 'TypeScript sources in the proxy image');
    const ts: string[] = [];
    walk(join(img.rootfs, 'app/proxy'), (p) => { if (/\.[cm]?ts$/.test(p) && !/\.d\.[cm]?ts$/.test(p)) ts.push(p); });
    assert.deepEqual(ts, [], 'TypeScript files where the proxy runs JavaScript');
    assert.ok(existsSync(join(img.rootfs, 'app/node_modules/undici/package.json')), 'undici (a production dependency) is missing');
  });

  test("runs as the image's user in its working directory with its environment, on a read-only root", async () => {
    // The same sandbox the run tests use, with the image's node asked what it sees; every write outside /tmp must fail.
    const probe = [
      'const fs = require("node:fs");',
      'const w = (p) => { try { fs.writeFileSync(p, "x"); return "written"; } catch (e) { return e.code; } };',
      'console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), cwd: process.cwd(), env: process.env.NODE_ENV,',
      '  app: w("/app/x"), root: w("/x"), etc: w("/etc/veloflux-x"), tmp: w("/tmp/x") }));',
    ].join('\n');
    const proc = run(img, undefined, [], [], ['node', '-e', probe]);
    assert.equal(await proc.exited, 0, `probe failed:\n${proc.logs.join('\n')}`);
    const seen = JSON.parse(proc.logs.find((l) => l.startsWith('{')) ?? '{}') as Record<string, unknown>;
    assert.deepEqual(seen, { uid: 65532, gid: 65532, cwd: '/app', env: 'production', app: 'EROFS', root: 'EROFS', etc: 'EROFS', tmp: 'written' });
  });

  test('serves traffic, answers /readyz, and drains an in-flight request on SIGTERM (exit 0)', async (t) => {
    let release: (() => void) | undefined;
    let slowArrived = false;
    const backend = createServer((req, res: ServerResponse) => {
      if (req.url === '/slow') { slowArrived = true; release = () => res.end('slow done'); return; }
      res.end(req.url === '/health' ? 'ok' : `backend saw ${req.url}`);
    });
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    t.after(() => { backend.closeAllConnections(); backend.close(); });
    const backendPort = (backend.address() as { port: number }).port;
    const [data, admin] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), 'vf-image-config-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    // A ConfigMap volume is world-readable (0755 directory, 0644 files); the image's user 65532 owns nothing here.
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'config.yaml'), [
      `listen: "127.0.0.1:${data}"`,
      `admin: { listen: "127.0.0.1:${admin}" }`,
      'pools:',
      '  - name: "app"',
      '    backends:',
      `      - address: "127.0.0.1:${backendPort}"`,
      '        health_check: { path: "/health", interval: "1s", timeout: "500ms" }',
      'routes:',
      '  - path_prefix: "/"',
      '    pool: "app"',
      '',
    ].join('\n'), { mode: 0o644 });
    // The image's CMD names /etc/veloflux/config/config.yaml: the chart's ConfigMap volume, here a read-only bind.
    const proc = run(img, undefined, [{ source: dir, destination: '/etc/veloflux/config' }]);
    await until('proxy container to answer /readyz', async () => {
      if (proc.child.exitCode !== null) throw new Error(`container exited ${proc.child.exitCode}: ${proc.logs.join('\n')}`);
      const r = await fetch(`http://127.0.0.1:${admin}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    }, 60_000, 200);
    const r = await fetch(`http://127.0.0.1:${data}/hello`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), 'backend saw /hello');

    const inFlight = fetch(`http://127.0.0.1:${data}/slow`);
    await until('the slow request to reach the backend', () => (slowArrived ? true : undefined), 30_000);
    spawnSync('runc', ['kill', proc.id, 'TERM']);
    await until('the proxy to stop accepting', async () => ((await fetch(`http://127.0.0.1:${data}/x`).then(() => false, () => true)) ? true : undefined), 30_000, 100);
    assert.equal(proc.child.exitCode, null, 'the proxy exited before its in-flight request completed');
    release?.();
    const slow = await inFlight;
    assert.equal(slow.status, 200);
    assert.equal(await slow.text(), 'slow done');
    assert.equal(await proc.exited, 0, `exit code after SIGTERM; logs:\n${proc.logs.join('\n')}`);
  });
});

describe('operator image', () => {
  let img: Unpacked;
  before(() => { img = unpack('operator'); });

  test('holds the operator sources and production dependencies only', () => {
    commonContents(img, 'operator');
    assert.deepEqual(img.config.Entrypoint, ['node', 'operator/src/main.ts']);
    assert.ok(existsSync(join(img.rootfs, 'app/operator/src/main.ts')));
    assert.ok(existsSync(join(img.rootfs, 'app/node_modules/@kubernetes/client-node/package.json')), '@kubernetes/client-node is missing');
    const tests: string[] = [];
    walk(join(img.rootfs, 'app'), (p) => { if (p.endsWith('.test.ts') && !p.includes('/node_modules/')) tests.push(p); });
    assert.deepEqual(tests, [], 'test files in the operator image');
  });

  test('starts against the test control plane and answers /healthz', async (t) => {
    const ns = await withNamespace(t, 'img');
    await installCrds(CRD_YAML);
    const kubeconfig = await operatorCredentials(ns);
    const kdir = mkdtempSync(join(tmpdir(), 'vf-image-kube-'));
    t.after(() => rmSync(kdir, { recursive: true, force: true }));
    mkdirSync(join(kdir, 'k'));
    writeFileSync(join(kdir, 'k', 'config'), readFileSync(kubeconfig), { mode: 0o644 });
    const port = await freePort();
    const proc = run(img, ['--namespace', ns, '--metrics-address', `127.0.0.1:${port}`],
      [{ source: join(kdir, 'k'), destination: '/var/run/veloflux' }], ['KUBECONFIG=/var/run/veloflux/config']);
    await until('operator container to answer /healthz', async () => {
      if (proc.child.exitCode !== null) throw new Error(`container exited ${proc.child.exitCode}: ${proc.logs.join('\n')}`);
      const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    }, 60_000, 200);
    assert.ok(proc.logs.some((l) => l.includes('veloflux operator started')), `no start line in:\n${proc.logs.join('\n')}`);
    spawnSync('runc', ['kill', proc.id, 'TERM']);
    assert.equal(await proc.exited, 0, `exit code after SIGTERM; logs:\n${proc.logs.join('\n')}`);
  });
});
