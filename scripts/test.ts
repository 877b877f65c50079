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
const files = named.length > 0 ? named : ['proxy/test/**/*.test.ts', 'operator/test/**/*.test.ts', 'test/**/*.test.ts'];

// Expand the patterns the way the runner will, to see whether any file needs the control plane.
const resolved = files.flatMap((f) => globSync(f, { exclude: (p) => p.includes('node_modules') }));
const needsCluster = resolved.some((f) => {
  const path = relative(process.cwd(), resolve(f));
  return path.startsWith(`test${sep}`) && path.endsWith('.test.ts');
});

const args = ['--test', '--test-reporter=spec'];
if (needsCluster) args.push('--test-global-setup=test/cluster/global-setup.ts');
const result = spawnSync(process.execPath, [...args, ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
