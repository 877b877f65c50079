// veloflux-operator: wiring only (arguments, kubeconfig, logger, signals).
//   veloflux-operator [--kubeconfig FILE] [--namespace NS] [--metrics-address HOST:PORT] ...
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { formatDuration, parseDuration } from '@veloflux/config/duration';
import { createLogger } from '@veloflux/service/log';
import { SERVICE } from './log.ts';
import { Manager, OPERATOR_VERSION, parseNamespaces } from './manager.ts';
import { OPERATOR_DEFAULTS as D } from './defaults.ts';

const USAGE = `usage: veloflux-operator [options]

  --kubeconfig FILE         credentials (default: $KUBECONFIG, else the in-cluster service account)
  --namespace NS            namespace of the leader-election Lease (default: $POD_NAMESPACE, else "default")
  --lease-name NAME         Lease name (default ${D.leaseName})
  --lease-duration D        default ${formatDuration(D.leaseDurationMs)}; --renew-deadline ${formatDuration(D.renewDeadlineMs)}, --retry-period ${formatDuration(D.retryPeriodMs)}
  --metrics-address A       /metrics and /healthz listener (default ${D.metricsAddress})
  --workers N               concurrent reconciles (default ${D.workers}; never two on one key)
  --token-secret NAME       Secret (in each proxy pod's namespace, key "token") with the proxies' admin token,
                            unless the pod names one in annotation veloflux.io/admin-token-secret
                            (default ${D.tokenSecret})
  --pod-selector SELECTOR   label selector for the pod informer (default: every pod)
  --resync D                periodic re-check of every pod and pool (default ${formatDuration(D.resyncMs)})
  --watch-namespaces A,B    watch only these namespaces (a Role in each suffices); default: the whole cluster
  --version                 print the version and exit
  --help                    print this help and exit`;

function die(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function ms(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = parseDuration(value);
  if (n === undefined) die(2, `veloflux-operator: --${name} must be a duration like "10s", got "${value}"`);
  return n;
}

async function main(): Promise<void> {
  let a;
  try {
    a = parseArgs({
      options: {
        kubeconfig: { type: 'string' }, namespace: { type: 'string' }, 'lease-name': { type: 'string' },
        'lease-duration': { type: 'string' }, 'renew-deadline': { type: 'string' }, 'retry-period': { type: 'string' },
        'metrics-address': { type: 'string' }, workers: { type: 'string' }, 'token-secret': { type: 'string' },
        'pod-selector': { type: 'string' }, resync: { type: 'string' }, 'watch-namespaces': { type: 'string' }, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' },
      },
    }).values;
  } catch (err) {
    die(2, `veloflux-operator: ${(err as Error).message} (veloflux-operator --help lists the options)`);
  }
  if (a.help) { process.stdout.write(`${USAGE}\n`); return; }
  if (a.version) { process.stdout.write(`veloflux-operator ${OPERATOR_VERSION}\n`); return; }
  const kc = new KubeConfig();
  const file = a.kubeconfig ?? process.env.KUBECONFIG;
  if (file) kc.loadFromFile(file);
  else kc.loadFromCluster();
  const workers = a.workers === undefined ? D.workers : Number(a.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) die(2, `veloflux-operator: --workers must be a whole number from 1 to 64, got "${a.workers}"`);

  const watchNamespaces = parseNamespaces(a['watch-namespaces']);
  if (typeof watchNamespaces === 'string') die(2, `veloflux-operator: --watch-namespaces ${watchNamespaces}`);

  const log = createLogger(SERVICE);
  const leaseDurationMs = ms('lease-duration', a['lease-duration']);
  const renewDeadlineMs = ms('renew-deadline', a['renew-deadline']);
  const retryPeriodMs = ms('retry-period', a['retry-period']);
  const resyncMs = ms('resync', a.resync);
  const manager = new Manager({
    kubeConfig: kc,
    log,
    namespace: a.namespace ?? process.env.POD_NAMESPACE ?? 'default',
    workers,
    ...(a['lease-name'] ? { leaseName: a['lease-name'] } : {}),
    ...(leaseDurationMs ? { leaseDurationMs } : {}),
    ...(renewDeadlineMs ? { renewDeadlineMs } : {}),
    ...(retryPeriodMs ? { retryPeriodMs } : {}),
    ...(resyncMs ? { resyncMs } : {}),
    ...(a['metrics-address'] ? { metricsAddress: a['metrics-address'] } : {}),
    ...(a['token-secret'] ? { tokenSecret: a['token-secret'] } : {}),
    ...(a['pod-selector'] ? { podSelector: a['pod-selector'] } : {}),
    ...(watchNamespaces ? { watchNamespaces } : {}),
  });
  const address = await manager.listen();
  log.info({ metrics: `${address.host}:${address.port}`, server: kc.getCurrentCluster()?.server }, 'veloflux operator started');

  const stop = (signal: string): void => {
    log.info({ signal }, 'shutting down');
    manager.stop().then(() => { log.flush(); process.exit(0); }, (err: Error) => { log.error({ err: err.message }, 'error while stopping'); process.exit(1); });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const outcome = await manager.run();
  if (outcome === 'lost') {
    // Two writers are worse than a restart: stop now, the Deployment starts a fresh candidate.
    await manager.stop(2_000);
    log.flush();
    process.exit(1);
  }
}

main().catch((err: Error) => die(1, `veloflux-operator: ${err.message}`));
