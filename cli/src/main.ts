// veloflux: the user's command line. Wiring only.
//   veloflux setup [flags]     guided setup (docs/setup.md)
import { runSetup, terminalIo } from './run.ts';
import { validateKube } from './kube-validate.ts';

const [command, ...rest] = process.argv.slice(2);
if (command !== 'setup') {
  process.stderr.write(`usage: veloflux setup [flags]   (veloflux setup --help lists them)\n`);
  process.exit(command === '--help' || command === '-h' ? 0 : 2);
}
runSetup(rest, terminalIo(validateKube)).then(
  (code) => { process.exitCode = code; },
  (err: Error) => { process.stderr.write(`veloflux setup: ${err.stack ?? err.message}\n`); process.exitCode = 1; },
);
