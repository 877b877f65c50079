// veloflux: the user's command line. Wiring only.
//   veloflux setup [flags]     guided setup (docs/setup.md)
//   veloflux --version | --help
import { readFileSync } from 'node:fs';
import { runSetup, terminalIo } from './run.ts';
import { validateKube } from './kube-validate.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const USAGE = `usage: veloflux <command> [flags]

  setup        guided setup: a proxy config.yaml or a FailoverPool (veloflux setup --help)

  --version    print the version and exit
  --help       print this help and exit`;

const [command, ...rest] = process.argv.slice(2);
if (command === '--version' || command === '-V') process.stdout.write(`veloflux ${VERSION}\n`);
else if (command === '--help' || command === '-h' || command === 'help') process.stdout.write(`${USAGE}\n`);
else if (command !== 'setup') {
  process.stderr.write(`veloflux: ${command === undefined ? 'a command is required' : `unknown command "${command}"`} (veloflux --help lists them)\n`);
  process.exitCode = 2;
} else {
  runSetup(rest, terminalIo(validateKube)).then(
    (code) => { process.exitCode = code; },
    (err: Error) => { process.stderr.write(`veloflux setup: ${err.stack ?? err.message}\n`); process.exitCode = 1; },
  );
}
