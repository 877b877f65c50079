// npm run build: the proxy as JavaScript (proxy/dist), which the proxy image runs without Node's type stripper.
//   proxy/dist/                                  proxy/src compiled (proxy/tsconfig.build.json)
//   proxy/dist/node_modules/@veloflux/<name>/     every workspace package the proxy imports, compiled, with a
//                                                package.json whose exports name the .js files
// Node resolves `@veloflux/config/schema` from proxy/dist/main.js to proxy/dist/node_modules first, so the build
// runs the same with or without the repository's node_modules symlinks (which point at the TypeScript sources).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const OUT = join(ROOT, 'proxy/dist');

interface Manifest { name: string; version: string; type?: string; dependencies?: Record<string, string> }
const manifest = (dir: string): Manifest => JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest;

/** Workspace folder of each @veloflux package (root package.json workspaces). */
const folders = new Map<string, string>();
// (An image build context holds only the workspaces it needs: the others are skipped.)
for (const dir of (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces) {
  if (!existsSync(join(ROOT, dir, 'package.json'))) continue;
  folders.set(manifest(dir).name, dir);
}

/** The workspace packages `dir` depends on, transitively. */
function workspaceDeps(dir: string, seen = new Set<string>()): string[] {
  for (const name of Object.keys(manifest(dir).dependencies ?? {})) {
    const folder = folders.get(name);
    if (folder === undefined || seen.has(folder)) continue;
    seen.add(folder);
    workspaceDeps(folder, seen);
  }
  return [...seen];
}

rmSync(OUT, { recursive: true, force: true });
execFileSync(process.execPath, [TSC, '-p', join(ROOT, 'proxy/tsconfig.build.json')], { stdio: 'inherit' });
for (const dir of workspaceDeps('proxy')) {
  const m = manifest(dir);
  const out = join(OUT, 'node_modules', m.name);
  execFileSync(process.execPath, [TSC, '-p', join(ROOT, dir, 'tsconfig.build.json'), '--outDir', out], { stdio: 'inherit' });
  mkdirSync(out, { recursive: true });
  const built = { name: m.name, version: m.version, private: true, type: m.type ?? 'module', exports: { './*': './*.js' }, dependencies: m.dependencies ?? {} };
  writeFileSync(join(out, 'package.json'), `${JSON.stringify(built, null, 2)}\n`);
}
