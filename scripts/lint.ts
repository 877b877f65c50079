// npm run lint: the rules TypeScript cannot check.
//  1. Layers: decision modules (pure core) do no I/O: no sockets, files, timers, clock or randomness;
//     they take `now` and data in and give decisions out.
//  2. Clocks: outside tests, time is read only through an injected clock (`Date.now()` and an argument-less
//     `new Date()` only in the clock modules and the demo).
//  3. Workspaces: no file imports another workspace's `src/` by path; import the package by name
//     (`@veloflux/config/schema`). ADR 0003.
//  4. The proxy's layers (ADR 0003): imports go down PROXY_LAYERS or stay inside their own folder; folders on one
//     layer are siblings and do not import each other; admin/, metrics/ and notify/ see control/ only through
//     control/api.ts.
//  5. Tests are not skipped or focused.
//  6. No machine-specific paths in tracked files.
// (docs/configuration.md and docs/errors.md are generated from their sources; a test checks they are current.)
// scripts/lint.test.ts runs `lint` on the fixtures in scripts/lint-fixtures/ (each a small tree that must fail).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const PURE = [
  /^packages\/config\/src\/(?!load\.ts)/,
  /^packages\/kube\/src\/(render|rules|types)\.ts$/,
  /^proxy\/src\/health\/state\.ts$/,
  /^packages\/engine\/src\//,
  /^proxy\/src\/balance\//,
  /^proxy\/src\/dataplane\/router\.ts$/,
  /^proxy\/src\/routing\.ts$/,
  /^cli\/src\/(answers|config|format|kube|questions|yaml)\.ts$/,
  /^operator\/src\/(status|consensus)\.ts$/,
  /^proxy\/src\/notify\/(incident|format)\.ts$/,
];
const IO_MODULES = [
  'node:net', 'node:http', 'node:https', 'node:fs', 'node:fs/promises', 'node:child_process', 'node:dgram', 'node:tls',
  'node:cluster', 'node:timers', 'node:timers/promises', 'undici', 'fastify', 'pino', 'prom-client', '@kubernetes/client-node',
];
const IO_CALL = /\b(Date\.now|setTimeout|setInterval|Math\.random|performance\.now)\s*\(|\bnew\s+Date\s*\(\s*\)/;
const CLOCK_READ = /\bDate\.now\s*\(|\bnew\s+Date\s*\(\s*\)/;
/** Where a real clock may be read: the clock modules, and the demo (a program that paces itself by the wall clock). */
const CLOCK_SOURCES = [/^proxy\/src\/control\/clock\.ts$/, /^operator\/src\/clock\.ts$/, /^cli\/src\/clock\.ts$/, /^proxy\/src\/demo\//];
const FOCUS = /\b(test|it|describe)\.(only|skip|todo)\(|\{\s*(skip|todo|only)\s*:\s*true/;
const MACHINE_PATH = /(\/work\/(main|wt-|shared)|\/root\/|\/home\/[a-z]+\/)/;

/**
 * The proxy's layers, lowest first: a file may import from a lower layer or from its own folder (or file).
 * An entry is a folder or a file directly under proxy/src.
 */
export const PROXY_LAYERS: readonly (readonly string[])[] = [
  ['errors.ts'],
  ['health', 'balance'],
  ['routing.ts'],
  ['dataplane'],
  ['control'],
  ['admin', 'metrics', 'notify'],
  ['runtime', 'demo'],
  ['main.ts'],
];
/** The part of control/ its subscribers and the admin API may import. */
const CONTROL_API = 'control/api.ts';

export interface Source {
  /** Repository-relative path, "/"-separated. */
  readonly path: string;
  readonly text: string;
}

function strip(text: string): string {
  // Comments may mention anything; only code counts.
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** Module specifiers of import/export-from statements and dynamic imports on one line of code. */
function specifiers(line: string): string[] {
  return [...line.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"]([^'"]+)['"]/g)].map((m) => m[1] as string);
}

/** The workspace folder holding `path` (the longest match), or undefined. */
function workspaceOf(path: string, workspaces: readonly string[]): string | undefined {
  return workspaces.filter((w) => path.startsWith(`${w}/`)).sort((a, b) => b.length - a.length)[0];
}

function layerOf(entry: string): number {
  return PROXY_LAYERS.findIndex((l) => l.includes(entry));
}

function checkImport(file: string, spec: string, workspaces: readonly string[]): string | undefined {
  if (!spec.startsWith('.')) {
    if (PURE.some((p) => p.test(file)) && IO_MODULES.includes(spec)) return `pure module imports I/O: ${spec}`;
    return undefined;
  }
  const target = normalize(join(dirname(file), spec)).split('\\').join('/');
  const own = workspaceOf(file, workspaces);
  const theirs = workspaceOf(target, workspaces);
  if (theirs !== undefined && theirs !== own && target.startsWith(`${theirs}/src/`)) {
    return `imports another workspace's sources by path: ${spec} (import its package by name, ADR 0003)`;
  }
  if (file.startsWith('proxy/src/') && target.startsWith('proxy/src/')) {
    const from = file.slice('proxy/src/'.length).split('/')[0] as string;
    const to = target.slice('proxy/src/'.length).split('/')[0] as string;
    if (from === to) return undefined;
    const [lf, lt] = [layerOf(from), layerOf(to)];
    if (lf < 0) return `proxy/src/${from} has no layer in scripts/lint.ts PROXY_LAYERS`;
    if (lt < 0) return `proxy/src/${to} has no layer in scripts/lint.ts PROXY_LAYERS`;
    if (lt > lf) return `layer back-edge: ${from} (layer ${lf + 1}) imports ${to} (layer ${lt + 1}): ${spec}`;
    if (lt === lf) return `sideways import between siblings ${from} and ${to}: ${spec}`;
    const rest = target.slice('proxy/src/'.length);
    if (to === 'control' && ['admin', 'metrics', 'notify'].includes(from) && rest !== CONTROL_API) {
      return `${from} sees control/ only through ${CONTROL_API}: ${spec}`;
    }
  }
  return undefined;
}

/** Every problem in `sources`; `workspaces` are the workspace folders (root package.json). */
export function lint(sources: readonly Source[], workspaces: readonly string[]): string[] {
  const problems: string[] = [];
  for (const { path: file, text } of sources) {
    if (file.endsWith('.ts')) {
      const test = /(^|\/)test\//.test(file) || file.endsWith('.test.ts');
      const pure = PURE.some((p) => p.test(file));
      strip(text).split('\n').forEach((line, i) => {
        const at = `${file}:${i + 1}`;
        for (const spec of specifiers(line)) {
          const p = checkImport(file, spec, workspaces);
          if (p !== undefined) problems.push(`${at}: ${p}`);
        }
        if (pure && IO_CALL.test(line)) problems.push(`${at}: pure module reads a clock, timer or randomness: ${line.trim()} (take it as a parameter)`);
        else if (!test && /\/src\//.test(file) && CLOCK_READ.test(line) && !CLOCK_SOURCES.some((p) => p.test(file))) {
          problems.push(`${at}: reads the wall clock directly: ${line.trim()} (use the injected clock)`);
        }
        if (/\.test\.ts$/.test(file) && FOCUS.test(line)) problems.push(`${at}: skipped or focused test: ${line.trim()}`);
      });
    }
    if (file !== 'scripts/lint.ts' && !/\.(png|lock)$/.test(file) && !file.endsWith('package-lock.json')) {
      text.split('\n').forEach((line, i) => {
        if (MACHINE_PATH.test(line)) problems.push(`${file}:${i + 1}: machine-specific path: ${line.trim().slice(0, 120)}`);
      });
    }
  }
  return problems;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
    .split('\n')
    // The fixtures are trees that must fail (scripts/lint.test.ts).
    .filter((f) => f !== '' && !f.startsWith('node_modules/') && !f.startsWith('scripts/lint-fixtures/'));
  const sources: Source[] = [];
  for (const path of files) {
    try {
      sources.push({ path, text: readFileSync(path, 'utf8') });
    } catch {
      // deleted in the work tree
    }
  }
  const workspaces = (JSON.parse(readFileSync('package.json', 'utf8')) as { workspaces: string[] }).workspaces;
  const problems = lint(sources, workspaces);
  if (problems.length > 0) {
    console.error(`lint: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.join('\n')}`);
    process.exit(1);
  }
  console.log(`lint: ${files.length} files checked, no problems`);
}
