// Runs the test suites with node's built-in runner.
//   npm test                      every suite
//   npm test -- proxy/test/x.ts   only the files named
import { spawnSync } from 'node:child_process';

const named = process.argv.slice(2);
const files = named.length > 0 ? named : ['proxy/test/**/*.test.ts', 'test/**/*.test.ts'];
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
