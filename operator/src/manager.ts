// The manager: informers -> keyed work queue -> reconcilers, plus leader election, /metrics and /healthz,
// and graceful shutdown. The wiring of controller-runtime's Manager, small enough to read in one sitting.
//
//   FailoverPool changed      -> pool key, and every pod key in its namespace (selectors may have changed)
//   Pod changed               -> its pod key, and the pool keys of its namespace
//   Secret / EndpointSlice    -> pod keys of their namespace (the rendered config may change)
//   proxy event (SSE)         -> status refresh, then pool keys; a hello (new connection, restarted proxy)
//                                also its pod key, so a restarted proxy gets its config back
//   resync (every resyncMs)   -> every pod and pool key: drift is repaired even without an event
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Informer, sleep } from './informer.ts';
import type { Change } from './informer.ts';
import { Kube } from './kube.ts';
import type { KubeObject } from './kube.ts';
import type { KubeConfig } from '@kubernetes/client-node';
import { LeaderElector } from './leader.ts';
import type { Logger } from './log.ts';
import { isUnauthorized } from './push.ts';
import type { PodState } from './push.ts';
import { WorkQueue } from './queue.ts';
import { Decisions, foldEvent } from './decisions.ts';
import { SECRET_LABEL, SLICE_INDEX, podKey, poolKey, reconcilePod, reconcilePool, sliceIndexKeys, sliceScopes } from './reconcile.ts';
import type { PodObject, PoolObject, SecretObject, SliceObject, World } from './reconcile.ts';
import { systemClock } from './clock.ts';
import type { Clock } from './clock.ts';
import { OPERATOR_DEFAULTS as D } from './defaults.ts';
import { listen } from '@veloflux/service/listen';

/** operator/package.json's version: `veloflux-operator --version`, veloflux_build_info{version}. */
export const OPERATOR_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface ManagerOptions {
  readonly kubeConfig: KubeConfig;
  readonly log: Logger;
  /** Namespace of the leader-election Lease. */
  readonly namespace: string;
  readonly leaseName?: string;
  readonly identity?: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  /** host:port for /metrics and /healthz. */
  readonly metricsAddress?: string;
  readonly workers?: number;
  readonly tokenSecret?: string;
  /** Label selector narrowing the pod informer (e.g. "app.kubernetes.io/name=veloflux-proxy"). */
  readonly podSelector?: string;
  readonly resyncMs?: number;
  /** The wall clock unless a test passes another. */
  readonly clock?: Clock;
  /** Watch only these namespaces (namespaced RBAC: a Role in each); default: the whole cluster. */
  readonly watchNamespaces?: readonly string[];
}

/** An informer failing (list or watch) for longer than this makes /healthz answer 503, in milliseconds. */
const INFORMER_UNHEALTHY_MS = 120_000;
/** Longest retry delay of a pod whose proxy answers 401 (token rotation), in milliseconds. */
const UNAUTHORIZED_RETRY_MS = 2_000;

export class Manager {
  readonly #o: ManagerOptions;
  readonly #log: Logger;
  readonly #kube: Kube;
  readonly #clock: Clock;
  readonly #queue: WorkQueue;
  readonly #stop = new AbortController();
  readonly #registry = new Registry();
  readonly #elector: LeaderElector;
  readonly world: World;
  readonly #decisions: Decisions;
  #server: Server | undefined;
  #workers: Promise<void>[] = [];
  #informers: Informer<never>[] = [];
  #stopping: Promise<void> | undefined;

  readonly #m: {
    reconciles: Counter<'kind' | 'result'>;
    pushes: Counter<'result'>;
    pushSeconds: Histogram;
    leader: Gauge;
    queueDepth: Gauge;
    informerRestarts: Gauge<'informer'>;
    proxies: Gauge;
    poolProxies: Gauge<'pool_namespace' | 'pool' | 'state'>;
    cachedSecrets: Gauge;
    decisionSteps: Counter;
    decisions: Counter;
  };

  constructor(opts: ManagerOptions) {
    this.#clock = opts.clock ?? systemClock;
    this.#queue = new WorkQueue({ baseMs: D.queueBaseMs, maxMs: D.queueMaxMs, clock: this.#clock });
    this.#o = opts;
    this.#log = opts.log;
    this.#kube = new Kube(opts.kubeConfig);
    const identity = opts.identity ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.#elector = new LeaderElector(this.#kube, {
      namespace: opts.namespace,
      name: opts.leaseName ?? D.leaseName,
      identity,
      ...(opts.leaseDurationMs ? { leaseDurationMs: opts.leaseDurationMs } : {}),
      ...(opts.renewDeadlineMs ? { renewDeadlineMs: opts.renewDeadlineMs } : {}),
      ...(opts.retryPeriodMs ? { retryPeriodMs: opts.retryPeriodMs } : {}),
      clock: this.#clock,
    }, this.#log);

    const r = this.#registry;
    // Standard process_* and nodejs_* metrics, minus the three gauges prom-client names *_total
    // (active handles/requests/resources): `promtool check metrics` refuses a gauge with a counter's suffix.
    collectDefaultMetrics({ register: r });
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) r.removeSingleMetric(name);
    new Gauge({ name: 'veloflux_build_info', help: 'Always 1; the operator version in label version.', labelNames: ['version'], registers: [r] }).set({ version: OPERATOR_VERSION }, 1);
    const informers: Informer<never>[] = [];
    this.#m = {
      reconciles: new Counter({ name: 'veloflux_operator_reconcile_total', help: 'Reconciles by kind (pod, pool) and result (success, error, requeue).', labelNames: ['kind', 'result'], registers: [r] }),
      pushes: new Counter({ name: 'veloflux_operator_config_pushes_total', help: 'Proxy config syncs by result: pushed (PUT sent), unchanged (the proxy already ran the rendered version), error.', labelNames: ['result'], registers: [r] }),
      pushSeconds: new Histogram({ name: 'veloflux_operator_push_duration_seconds', help: 'Time to read a proxy\'s config and push a new one, in seconds.', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [r] }),
      leader: new Gauge({ name: 'veloflux_operator_leader', help: '1 while this process holds the leader Lease.', registers: [r] }),
      queueDepth: new Gauge({ name: 'veloflux_operator_queue_depth', help: 'Keys waiting in the work queue.', registers: [r], collect: () => { this.#m.queueDepth.set(this.#queue.length); } }),
      informerRestarts: new Gauge({ name: 'veloflux_operator_informer_restarts', help: 'Times an informer restarted after an error.', labelNames: ['informer'], registers: [r], collect: () => { for (const i of informers) this.#m.informerRestarts.set({ informer: i.name }, i.restarts); } }),
      proxies: new Gauge({ name: 'veloflux_operator_proxies', help: 'Proxy pods the operator follows.', registers: [r], collect: () => { this.#m.proxies.set(this.world.proxies.size); } }),
      // From the pools' status (written by the leader; every replica's cache sees it): an exact out-of-sync signal.
      // The pool's namespace is `pool_namespace`, not `namespace`: Prometheus sets `namespace` to the operator's
      // own (the scrape target's) and would rename ours to exported_namespace.
      poolProxies: new Gauge({
        name: 'veloflux_operator_pool_proxies', help: 'Proxy pods of a FailoverPool as its status reports them: selected (ready pods its proxySelector picks) and synced (running its current config).',
        labelNames: ['pool_namespace', 'pool', 'state'], registers: [r],
        collect: () => {
          const g = this.#m.poolProxies;
          g.reset();
          for (const p of this.world.pools.list()) {
            const counts = p.status?.proxies;
            if (!counts) continue;
            const labels = { pool_namespace: p.metadata.namespace as string, pool: p.metadata.name };
            g.set({ ...labels, state: 'selected' }, counts.selected);
            g.set({ ...labels, state: 'synced' }, counts.synced);
          }
        },
      }),
      cachedSecrets: new Gauge({ name: 'veloflux_operator_cached_secrets', help: 'Secrets in the operator\'s cache: only those labelled veloflux.io/secret=true ever enter it.', registers: [r], collect: () => { this.#m.cachedSecrets.set(this.world.secrets.size); } }),
      decisionSteps: new Counter({ name: 'veloflux_operator_decision_steps_total', help: 'Shared decisions evaluated (SPEC 9): one per pool per batch of view changes or engine timer.', registers: [r] }),
      decisions: new Counter({ name: 'veloflux_operator_decisions_total', help: 'Shared decisions that changed a pool\'s level or shares (a new sequence sent to every proxy of the pool).', registers: [r] }),
    };

    const log = this.#log;
    const kube = this.#kube;
    // What the manager watches: one informer per row (path, namespaces and server-side filter), and which keys a
    // change enqueues. Level-based: the queue carries keys, never the change itself.
    const nss = opts.watchNamespaces?.length ? { namespaces: opts.watchNamespaces } : {};
    const watch = <T extends KubeObject>(name: string, path: string, scope: { labelSelector?: string; namespaces?: readonly string[] }): Informer<T> =>
      new Informer<T>(name, kube, { path, ...scope, clock: this.#clock }, log);
    const pools = watch<PoolObject>('failoverpools', '/apis/veloflux.io/v1alpha1/failoverpools', nss);
    const pods = watch<PodObject>('pods', '/api/v1/pods', { ...nss, ...(opts.podSelector ? { labelSelector: opts.podSelector } : {}) });
    // Only Secrets labelled veloflux.io/secret=true ever enter the cache (the apiserver filters the list and
    // watch): the admin token Secret and the notification Secrets carry the label (chart, setup, docs).
    const secrets = watch<SecretObject>('secrets', '/api/v1/secrets', { labelSelector: `${SECRET_LABEL}=true`, ...nss });
    // Only the slices of Services a FailoverPool names: one label-selected watch per namespace with such pools,
    // re-scoped whenever the pools change (ADR 0002).
    const slices = watch<SliceObject>('endpointslices', '/apis/discovery.k8s.io/v1/endpointslices', { namespaces: [] });
    slices.addIndex(SLICE_INDEX, sliceIndexKeys);

    const queue = this.#queue;
    const podsIn = (ns: string): void => { for (const p of pods.list(ns)) queue.add(podKey(ns, p.metadata.name)); };
    const poolsIn = (ns: string): void => { for (const p of pools.list(ns)) queue.add(poolKey(ns, p.metadata.name)); };
    const nsOf = (o: KubeObject): string => o.metadata.namespace as string;
    const on = <T extends KubeObject>(informer: Informer<T>, enqueue: (c: Change<T>) => void): Informer<never> => {
      informer.onChange(enqueue);
      return informer as unknown as Informer<never>;
    };
    this.#informers = [
      // A pool: the slices' scopes, its own key; a spec change (not our status writes) also every pod of its namespace.
      on(pools, (c) => {
        slices.setScopes(sliceScopes(pools.list()));
        queue.add(poolKey(nsOf(c.object), c.object.metadata.name));
        this.#decisions.touch(nsOf(c.object), c.object.metadata.name);
        if (!(c.type === 'updated' && c.old?.metadata.generation === c.object.metadata.generation)) podsIn(nsOf(c.object));
      }),
      // A pod: its own key, and the pools of its namespace (their status counts it).
      on(pods, (c) => { queue.add(podKey(nsOf(c.object), c.object.metadata.name)); poolsIn(nsOf(c.object)); this.#decisions.touchNamespace(nsOf(c.object)); }),
      // A labelled Secret: the pods of its namespace (tokens, notification secrets).
      on(secrets, (c) => {
        log.debug({ secret: `${nsOf(c.object)}/${c.object.metadata.name}`, change: c.type }, 'labelled Secret cached');
        podsIn(nsOf(c.object));
      }),
      // A slice: the pods of its namespace, only when some FailoverPool there names its Service.
      on(slices, (c) => {
        const svc = c.object.metadata.labels?.['kubernetes.io/service-name'];
        if (svc !== undefined && pools.list(nsOf(c.object)).some((p) => p.spec.backends.some((b) => b.service?.name === svc))) podsIn(nsOf(c.object));
      }),
    ];
    informers.push(...this.#informers);

    this.world = {
      kube, log, pools, pods, secrets, slices,
      proxies: new Map(),
      podErrors: new Map(),
      tokenSecret: opts.tokenSecret ?? D.tokenSecret,
      allPodsAreProxies: opts.podSelector !== undefined,
      enqueue: (k) => queue.add(k),
      enqueueAfter: (k, ms) => queue.addAfter(k, ms),
      follow: (state) => this.#follow(state),
      onPush: (outcome, ms, pod) => {
        this.#m.pushes.inc({ result: outcome });
        if (outcome === 'pushed') {
          this.#m.pushSeconds.observe(ms / 1000);
          log.info({ pod, ms: Math.round(ms) }, 'config pushed');
        }
      },
      now: () => this.#clock.now(),
      decisions: { status: (ns, name) => this.#decisions.status(ns, name) },
    };
    this.#decisions = new Decisions(this.world, { stepped: (changed) => { this.#m.decisionSteps.inc(); if (changed) this.#m.decisions.inc(); } });
  }

  /** Follows one proxy's event stream for as long as the pod's state lives. */
  #follow(state: PodState): void {
    const [, ns] = state.key.match(/^([^/]+)\//) ?? [];
    const log = this.#log.child({ pod: state.key });
    const poolsOfNs = (): void => { for (const p of this.world.pools.list(ns)) this.#queue.add(poolKey(ns as string, p.metadata.name)); };
    void state.client.follow((type, data) => {
      if (type === 'hello') {
        const d = data as { version: string; ready?: boolean; proxy?: string; pools: never[] };
        state.status = { version: d.version, ...(d.ready !== undefined ? { ready: d.ready } : {}), ...(typeof d.proxy === 'string' ? { proxy: d.proxy } : {}), pools: d.pools };
        state.version = d.version;
        state.reachable = true;
        // A (re)connected stream may be a restarted proxy: make sure it runs what we render.
        this.#queue.add(`pod/${state.key}`);
        poolsOfNs();
        this.#decisions.touchNamespace(ns as string);
        return;
      }
      // A shared pool's traffic (ramp gate): folded into the decision's gate readings, nothing else (no status read).
      if (type === 'traffic') {
        const pod = state.key.slice(state.key.indexOf('/') + 1);
        this.#decisions.traffic(ns as string, pod, data);
        return;
      }
      // A view or level change goes into the shared decision (and the status) at once, with no status read;
      // other events (a config applied, a mode changed, a ramp step) re-read the proxy's status.
      if (foldEvent(state.status, type, data)) {
        this.#decisions.touchNamespace(ns as string);
        poolsOfNs();
        return;
      }
      void state.refreshStatus(log).then(() => { poolsOfNs(); this.#decisions.touchNamespace(ns as string); });
    }, (up) => {
      state.reachable = up;
      if (!up) poolsOfNs();
    }, state.abort.signal, log);
  }

  get leading(): boolean { return this.#elector.leading; }

  /** Serves /metrics and /healthz; resolves with the bound address. */
  async listen(): Promise<{ host: string; port: number }> {
    const [host, port] = splitAddress(this.#o.metricsAddress ?? D.metricsAddress);
    const server = createServer((req, res) => {
      if (req.url === '/healthz' || req.url === '/readyz') {
        const h = req.url === '/healthz' ? this.health() : this.readiness();
        res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ...h, leader: this.#elector.leading }));
        return;
      }
      if (req.url === '/metrics') {
        this.#m.leader.set(this.#elector.leading ? 1 : 0);
        this.#registry.metrics().then(
          (body) => res.writeHead(200, { 'content-type': this.#registry.contentType }).end(body),
          (err: Error) => res.writeHead(500).end(err.message),
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found; try /metrics, /healthz or /readyz"}');
    });
    const bound = await listen(server, host, port);
    this.#server = server;
    return bound;
  }

  /**
   * Liveness: no informer has been failing for longer than INFORMER_UNHEALTHY_MS, and a leader has renewed its
   * Lease within the renew deadline (a standby that cannot reach the Lease is still alive: it only waits).
   */
  health(): { ok: boolean; status: string; reasons: string[] } {
    if (this.#stopping) return { ok: false, status: 'stopping', reasons: ['shutting down'] };
    const now = this.#clock.now();
    const reasons: string[] = [];
    for (const i of this.#informers) {
      if (i.failingSince !== undefined && now - i.failingSince > INFORMER_UNHEALTHY_MS) reasons.push(`informer ${i.name} failing for ${Math.round((now - i.failingSince) / 1000)}s`);
    }
    if (this.#elector.leading && !this.#elector.renewedWithinDeadline(now)) reasons.push('leader Lease not renewed within the renew deadline');
    return { ok: reasons.length === 0, status: reasons.length === 0 ? 'ok' : 'unhealthy', reasons };
  }

  /** Readiness: every informer cache has synced (on every replica: a standby keeps warm caches). */
  readiness(): { ok: boolean; status: string; reasons: string[] } {
    if (this.#stopping) return { ok: false, status: 'stopping', reasons: ['shutting down'] };
    const reasons = this.#informers.filter((i) => !i.synced).map((i) => `informer ${i.name} not synced`);
    return { ok: reasons.length === 0, status: reasons.length === 0 ? 'ready' : 'not ready', reasons };
  }

  /**
   * Starts the informers at once (a standby keeps warm caches, so a takeover needs no full list), then waits
   * for leadership and only then starts the workers: only the leader reconciles and writes. Runs until stop();
   * resolves 'lost' if leadership is lost (the caller exits).
   */
  async run(): Promise<'stopped' | 'lost'> {
    const signal = this.#stop.signal;
    for (const i of this.#informers) i.start();
    await Promise.race([Promise.all(this.#informers.map((i) => i.waitSynced())), new Promise((r) => signal.addEventListener('abort', r, { once: true }))]);
    if (signal.aborted) return 'stopped';
    this.#log.info({ pools: this.world.pools.size, pods: this.world.pods.size, secrets: this.world.secrets.size }, 'caches synced');
    if (!(await this.#elector.acquire(signal))) return 'stopped';
    this.#log.info('leading: starting workers');
    this.#decisions.start();
    // Everything the caches hold, once: keys queued by events while standing by are there already.
    this.#enqueueAll();
    const n = this.#o.workers ?? D.workers;
    this.#workers = Array.from({ length: n }, () => this.#work());
    void this.#resync(signal);
    const held = await this.#elector.hold(signal);
    return held;
  }

  #enqueueAll(): void {
    for (const p of this.world.pods.list()) this.#queue.add(podKey(p.metadata.namespace as string, p.metadata.name));
    for (const p of this.world.pools.list()) this.#queue.add(poolKey(p.metadata.namespace as string, p.metadata.name));
  }

  async #resync(signal: AbortSignal): Promise<void> {
    const every = this.#o.resyncMs ?? D.resyncMs;
    while (!signal.aborted) {
      await sleep(every, signal);
      if (signal.aborted) return;
      this.#enqueueAll();
    }
  }

  async #work(): Promise<void> {
    for (;;) {
      const key = await this.#queue.get();
      if (key === undefined) return;
      const [kind, ns, name] = key.split('/') as [string, string, string];
      try {
        const result = kind === 'pod' ? await reconcilePod(this.world, ns, name) : await reconcilePool(this.world, ns, name);
        this.#queue.forget(key);
        this.#m.reconciles.inc({ kind, result: 'success' });
        if (result.requeueAfterMs !== undefined) this.#queue.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        // A 401 is a token rotation under way (the proxy re-reads its token file within seconds): retry
        // often enough that edits reach the proxies soon after, instead of backing off to 30 s.
        const delay = this.#queue.addRateLimited(key, isUnauthorized(err) ? UNAUTHORIZED_RETRY_MS : undefined);
        this.#m.reconciles.inc({ kind, result: 'error' });
        if (kind === 'pod') this.#m.pushes.inc({ result: 'error' });
        // The first failures of a key are routine (a pod just became ready); log louder as they repeat.
        const level = this.#queue.failures(key) > 3 ? 'warn' : 'info';
        this.#log[level]({ key, err: (err as Error).message, retryInMs: delay }, 'reconcile failed: requeued with backoff');
        if (kind === 'pod') for (const p of this.world.pools.list(ns)) this.#queue.add(poolKey(ns, p.metadata.name));
      } finally {
        this.#queue.done(key);
      }
    }
  }

  /** Graceful: no new work, finish what is in hand (at most graceMs), close streams, release the Lease. */
  stop(graceMs: number = D.stopGraceMs): Promise<void> {
    this.#stopping ??= (async () => {
      this.#log.info('stopping');
      this.#stop.abort();
      this.#decisions.stop();
      this.#queue.shutdown();
      await Promise.race([Promise.all(this.#workers), sleep(graceMs)]);
      for (const s of this.world.proxies.values()) s.abort.abort();
      await Promise.all(this.#informers.map((i) => i.stop()));
      await this.#elector.release();
      const closed = new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
      this.#server?.closeAllConnections();
      await closed;
      this.#log.info('stopped');
    })();
    return this.#stopping;
  }
}

/**
 * --watch-namespaces: a comma-separated list of namespace names (DNS labels, no duplicates); undefined or empty
 * means the whole cluster. Returns the names, or an error message (naming what is allowed, not echoing input).
 */
export function parseNamespaces(value: string | undefined): string[] | undefined | string {
  if (value === undefined || value.trim() === '') return undefined;
  const names = value.split(',').map((n) => n.trim());
  if (names.length > 256) return 'must list at most 256 namespaces';
  for (const [i, n] of names.entries()) {
    if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n)) return `entry ${i + 1} must be a namespace name (lowercase letters, digits and "-", at most 63 characters)`;
    if (names.indexOf(n) !== i) return `lists namespace "${n}" twice`;
  }
  return names;
}

function splitAddress(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i).replace(/^\[(.*)\]$/, '$1'), Number(address.slice(i + 1))];
}
