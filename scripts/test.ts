// Runs the test suites with node's built-in runner.
//   npm test                      every suite
//   npm test -- proxy/test/x.ts   only the files named
// When a test file under test/ is part of the run, a global setup starts one Kubernetes control
// plane (etcd + kube-apiserver, test/cluster/) for the whole run, building its binaries first if
// this machine has none yet. A run of proxy tests alone starts nothing.
import { spawnSync } from 'node:child_process';
import { globSync } from 'node:fs';
import { relative, resolve, sep } from 'node:path';

const named = process.argv.slice(2);
const files = named.length > 0 ? named : ['packages/*/test/**/*.test.ts', 'proxy/test/**/*.test.ts', 'operator/test/**/*.test.ts', 'cli/test/**/*.test.ts', 'scripts/**/*.test.ts', 'test/**/*.test.ts'];

// Expand the patterns the way the runner will, to see whether any file needs the control plane.
const resolved = files.flatMap((f) => globSync(f, { exclude: (p) => p.includes('node_modules') }));
const needsCluster = resolved.some((f) => {
  const path = relative(process.cwd(), resolve(f));
  return path.startsWith(`test${sep}`) && path.endsWith('.test.ts');
});

// The metrics test checks the /metrics output with promtool (Debian's prometheus package). On a machine
// without it, install it when we can (root with apt-get), or say exactly what is missing.
const needsPromtool = resolved.some((f) => [`proxy${sep}test${sep}admin`, `proxy${sep}test${sep}version`].some((p) => relative(process.cwd(), resolve(f)).startsWith(p)));
if (needsPromtool && spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status !== 0) {
  const root = process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!root) {
    console.error('npm test: promtool is missing (Debian: apt-get install --no-install-recommends prometheus); the metrics test needs it.');
    process.exit(1);
  }
  console.error('npm test: installing promtool (Debian package prometheus) for the metrics test ...');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const cmd of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', 'prometheus']]) {
    const r = spawnSync('apt-get', cmd, { stdio: ['ignore', 'ignore', 'inherit'], env });
    if (r.status !== 0) { console.error(`npm test: apt-get ${cmd.join(' ')} failed`); process.exit(1); }
  }
}

const args = ['--test', '--test-reporter=spec'];
if (needsCluster) args.push('--test-global-setup=test/cluster/global-setup.ts');
const result = spawnSync(process.execPath, [...args, ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
