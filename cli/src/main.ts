// veloflux: the user's command line. Wiring only.
//   veloflux setup [flags]               guided setup (docs/setup.md)
//   veloflux status|activate|...|config  drive a running proxy through its admin API (ops.ts, docs/cli.md)
//   veloflux --version | --help
import { readFileSync } from 'node:fs';
import { OPS_COMMANDS, OPS_USAGE, runOps, terminalOps } from './ops.ts';
import type { OpsCommand } from './ops.ts';
import { runSetup, terminalIo } from './run.ts';
import { validateKube } from './kube-validate.ts';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
const USAGE = `usage: veloflux <command> [flags]

  setup        guided setup: a proxy config.yaml or a FailoverPool (veloflux setup --help)
${OPS_USAGE}

  --version    print the version and exit
  --help       print this help and exit`;

const [command, ...rest] = process.argv.slice(2);
const fail = (name: string) => (err: Error): void => { process.stderr.write(`veloflux ${name}: ${err.stack ?? err.message}\n`); process.exitCode = 1; };
if (command === '--version' || command === '-V') process.stdout.write(`veloflux ${VERSION}\n`);
else if (command === '--help' || command === '-h' || command === 'help') process.stdout.write(`${USAGE}\n`);
else if (command === 'setup') runSetup(rest, terminalIo(validateKube)).then((code) => { process.exitCode = code; }, fail('setup'));
else if ((OPS_COMMANDS as readonly string[]).includes(command ?? '')) runOps(command as OpsCommand, rest, terminalOps()).then((code) => { process.exitCode = code; process.exit(); }, fail(command as string));
else {
  process.stderr.write(`veloflux: ${command === undefined ? 'a command is required' : `unknown command "${command}"`} (veloflux --help lists them)\n`);
  process.exitCode = 2;
}
