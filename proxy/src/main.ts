// veloflux-proxy: wiring only (arguments, logger, signals).
//   veloflux-proxy --config config.yaml [--workers N|auto] [--check] | --version | --help
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { formatIssues, loadConfigFile } from '@veloflux/config/load';
import { startCluster } from './runtime/cluster.ts';
import { createLogger } from '@veloflux/service/log';
import { SERVICE } from './runtime/log.ts';
import { DEFAULT_GRACE_MS } from './runtime/proxy.ts';
import { PROXY_VERSION } from './runtime/version.ts';
import type { RunningProxy } from './runtime/proxy.ts';

const USAGE = `usage: veloflux-proxy --config FILE [--workers N|auto] [--check]

  --config FILE    proxy configuration (YAML); see docs/configuration.md
  --workers N      data-plane worker processes (or "auto": one per core); overrides dataplane.workers
  --check          validate the config, print the result and exit (0 valid, 2 invalid)
  --version        print the version and exit
  --help           print this help and exit`;

function die(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({ options: { config: { type: 'string', short: 'c' }, workers: { type: 'string' }, check: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' } } }).values;
  } catch (err) {
    die(2, `veloflux-proxy: ${(err as Error).message} (veloflux-proxy --help lists the options)`);
  }
  // Asked for: stdout, exit 0 (`veloflux-proxy --help | less` works); usage errors go to stderr, exit 2.
  if (args.help) { process.stdout.write(`${USAGE}\n`); return; }
  if (args.version) { process.stdout.write(`veloflux-proxy ${PROXY_VERSION}\n`); return; }
  if (!args.config) die(2, `veloflux-proxy: --config is required\n${USAGE}`);

  let workersFlag: number | 'auto' | undefined;
  if (args.workers !== undefined) {
    const n = Number(args.workers);
    if (args.workers === 'auto') workersFlag = 'auto';
    else if (Number.isInteger(n) && n >= 1 && n <= 256) workersFlag = n;
    else die(2, `veloflux-proxy: --workers must be a whole number from 1 to 256 or "auto", got "${args.workers}"`);
  }

  const loaded = await loadConfigFile(args.config);
  if (!loaded.ok) die(2, `veloflux-proxy: ${args.config} is invalid (${loaded.issues.length} problem${loaded.issues.length === 1 ? '' : 's'}):\n${formatIssues(loaded.issues, args.config)}`);
  const { config, version } = loaded;
  const backends = config.pools.reduce((n, p) => n + p.backends.length, 0);
  if (args.check) die(0, `${args.config}: valid (${config.pools.length} pool${config.pools.length === 1 ? '' : 's'}, ${backends} backend${backends === 1 ? '' : 's'}, ${config.routes.length} route${config.routes.length === 1 ? '' : 's'}; version ${version})`);

  const want = workersFlag ?? config.dataplane.workers;
  const workers = want === 'auto' ? availableParallelism() : want;
  const log = createLogger(SERVICE);
  let proxy: RunningProxy;
  try {
    // The data plane always runs in worker processes (one is the default): they carry only what forwarding needs
    // and a capped young generation, and this process keeps probing and answering the admin API however busy
    // the data plane is. (startProxy, one process, is for embedding and tests.)
    proxy = await startCluster(config, version, workers, { log });
  } catch (err) {
    const e = err as Error & { code?: string; address?: string; port?: number };
    die(1, `veloflux-proxy: cannot start: ${e.code === 'EADDRINUSE' ? `address in use (${e.address ?? ''}:${e.port ?? ''})` : e.message}`);
  }
  if (config.pools.length === 0) log.warn('no pools configured: every request answers 404 until a config with pools is applied (PUT /api/v1/config)');
  log.info({ listen: `${proxy.data.host}:${proxy.data.port}`, admin: `${proxy.admin.host}:${proxy.admin.port}`, pools: config.pools.map((p) => p.name), workers, version }, 'veloflux proxy started');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new connections, finishing requests in flight');
    proxy.stop(DEFAULT_GRACE_MS).then(
      () => { log.info('stopped'); log.flush(); process.exit(0); },
      (err: Error) => { log.error({ err: err.message }, 'error while stopping'); process.exit(1); },
    );
  };
  // SIGHUP: logrotate moved the access log file; every data-plane process opens its path again.
  process.on('SIGHUP', () => { log.info('SIGHUP: reopening the access log'); proxy.reopenLogs(); });
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: Error) => die(1, `veloflux-proxy: ${err.message}`));
