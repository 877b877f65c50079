// The lint itself, on small trees under scripts/lint-fixtures/: each named rule fails its fixture with the
// expected message, and the clean tree passes (so a rule cannot pass everything, nor fail everything).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lint } from './lint.ts';
import type { Source } from './lint.ts';

const FIXTURES = fileURLToPath(new URL('./lint-fixtures/', import.meta.url));
const WORKSPACES = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { workspaces: string[] }).workspaces;

function tree(name: string): Source[] {
  const root = join(FIXTURES, name);
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => { const full = join(e.parentPath, e.name); return { path: relative(root, full).split('\\').join('/'), text: readFileSync(full, 'utf8') }; });
}

const CASES: [string, RegExp[]][] = [
  ['cross-workspace-src', [/^operator\/src\/render\.ts:2: imports another workspace's sources by path: \.\.\/\.\.\/proxy\/src\/config\/load\.ts/]],
  ['layer-back-edge', [/^proxy\/src\/control\/drill\.ts:2: layer back-edge: control \(layer 5\) imports admin \(layer 6\)/]],
  ['sideways', [/^proxy\/src\/metrics\/control\.ts:2: sideways import between siblings metrics and notify/]],
  ['control-api', [/^proxy\/src\/metrics\/control\.ts:2: metrics sees control\/ only through control\/api\.ts/]],
  ['clock', [/^operator\/src\/queue\.ts:2: reads the wall clock directly: .*Date\.now\(\)/, /^operator\/src\/queue\.ts:3: reads the wall clock directly: .*new Date\(\)/]],
  ['pure-io', [/^packages\/kube\/src\/render\.ts:2: pure module imports I\/O: @kubernetes\/client-node/]],
];

for (const [name, expected] of CASES) {
  test(`lint fails the ${name} fixture, naming file, line and rule`, () => {
    const problems = lint(tree(name), WORKSPACES);
    assert.equal(problems.length, expected.length, problems.join('\n'));
    expected.forEach((re, i) => assert.match(problems[i] ?? '', re));
  });
}

test('lint passes the clean fixture (package imports, own-workspace paths, control/api.ts, new Date(ms))', () => {
  assert.deepEqual(lint(tree('clean'), WORKSPACES), []);
});
