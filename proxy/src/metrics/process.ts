// veloflux_build_info and the standard process_* and nodejs_* metrics (prom-client's default collectors).
// They describe the process that answers the scrape: the main process, which probes, decides and serves the admin
// API. Data-plane workers are other processes; adding up their CPU, memory or file descriptors into process_*
// would describe no process at all (and process_start_time_seconds cannot be added up), so the workers' traffic
// comes through veloflux_requests_total and friends, and their memory through the pod's cgroup (container_*).
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * prom-client names three gauges *_total (active handles, requests, resources); `promtool check metrics` refuses a
 * gauge with a counter's suffix, so they are left out (the operator does the same).
 */
const NOT_PROMTOOL_CLEAN = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

let shared: Registry | undefined;

/** One per process (the metrics describe the process; embedding several proxies in one process shares it). */
export function processRegistry(version: string): Registry {
  if (shared) return shared;
  const registry = new Registry();
  shared = registry;
  collectDefaultMetrics({ register: registry });
  for (const name of NOT_PROMTOOL_CLEAN) registry.removeSingleMetric(name);
  new Gauge({ name: 'veloflux_build_info', help: 'Always 1; the proxy version in label version.', labelNames: ['version'], registers: [registry] }).set({ version }, 1);
  return registry;
}
