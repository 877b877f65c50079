// npm run lint: the rules TypeScript cannot check.
//  1. Layers: decision modules (pure core) do no I/O: no sockets, files, timers, clock or randomness;
//     they take `now` and data in and give decisions out.
//  2. Subscribers (metrics/, notify/) are imported only by the wiring (runtime/, main.ts), never by the core.
//  3. Tests are not skipped or focused.
//  4. No machine-specific paths in tracked files.
// (docs/configuration.md and docs/errors.md are generated from their sources; a test checks they are current.)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const PURE = [
  /^packages\/config\/src\/(?!load\.ts)/,
  /^proxy\/src\/health\/state\.ts$/,
  /^proxy\/src\/failover\//,
  /^proxy\/src\/balance\//,
  /^proxy\/src\/dataplane\/router\.ts$/,
  /^proxy\/src\/routing\.ts$/,
  /^cli\/src\/(answers|config|kube|questions|yaml)\.ts$/,
  /^operator\/src\/status\.ts$/,
  /^packages\/kube\/src\/(render|types)\.ts$/,
  /^proxy\/src\/notify\/(incident|format)\.ts$/,
];
const IO_IMPORT = /from\s+['"](node:(net|http|https|fs|fs\/promises|child_process|dgram|tls|cluster|timers|timers\/promises)|undici|fastify|pino)['"]/;
const IO_CALL = /\b(Date\.now|setTimeout|setInterval|Math\.random|performance\.now)\s*\(/;
const SUBSCRIBER = /from\s+['"][./]+\/(metrics|notify)\//;
const FOCUS = /\b(test|it|describe)\.(only|skip|todo)\(|\{\s*(skip|todo|only)\s*:\s*true/;
const MACHINE_PATH = /(\/work\/(main|wt-|shared)|\/root\/|\/home\/[a-z]+\/)/;

const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => f !== '' && !f.startsWith('node_modules/'));

const problems: string[] = [];

function strip(text: string): string {
  // Comments may mention anything; only code counts.
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
}

for (const file of files) {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue; // deleted in the work tree
  }
  if (file.endsWith('.ts')) {
    const code = strip(text);
    const lines = code.split('\n');
    lines.forEach((line, i) => {
      const at = `${file}:${i + 1}`;
      if (PURE.some((p) => p.test(file))) {
        if (IO_IMPORT.test(line)) problems.push(`${at}: pure module imports I/O: ${line.trim()}`);
        if (IO_CALL.test(line)) problems.push(`${at}: pure module reads a clock, timer or randomness: ${line.trim()} (take it as a parameter)`);
      }
      if (SUBSCRIBER.test(line) && !/^proxy\/src\/(runtime\/|main\.ts|admin\/|metrics\/|notify\/)/.test(file) && !file.includes('/test/')) {
        problems.push(`${at}: only the wiring may import a subscriber: ${line.trim()}`);
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

if (problems.length > 0) {
  console.error(`lint: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.join('\n')}`);
  process.exit(1);
}
console.log(`lint: ${files.length} files checked, no problems`);
