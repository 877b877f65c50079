// Level-based reconcilers. The queue carries keys, never events: each call reads the current state from the
// informer caches and the proxies, and brings the world to it. Calling one twice in a row does nothing the
// second time (no push: the proxy already reports the rendered version; no write: the status is equal).
//
//   pod/<ns>/<name>   render that pod's config from every FailoverPool selecting it; push when it differs
//   pool/<ns>/<name>  gather what the selected proxies report; write status; record failover Events
import type { Informer, Scope } from './informer.ts';
import { KubeError } from './kube.ts';
import type { Kube, KubeObject } from './kube.ts';
import type { Logger } from './log.ts';
import { pushIfChanged, PodState } from './push.ts';
import type { PushOutcome } from './push.ts';
import { effectiveOverride, render, selects } from '@veloflux/kube/render';
import type { EndpointSliceLike, ProxyBase, Refusal, Secrets } from '@veloflux/kube/render';
import { computeStatus } from './status.ts';
import { agreeing } from './consensus.ts';
import type { PoolDecisionStatus } from './decisions.ts';
import type { ProxyReport, Transition } from './status.ts';
import type { ConsensusStatus, FailoverPool, FailoverPoolStatus } from '@veloflux/kube/types';
import { OPERATOR_DEFAULTS as D } from './defaults.ts';

export interface PodObject extends KubeObject {
  metadata: KubeObject['metadata'] & { deletionTimestamp?: string };
  spec?: { containers?: { ports?: { name?: string; containerPort: number }[] }[] };
  status?: { podIP?: string; conditions?: { type: string; status: string }[] };
}
export interface SecretObject extends KubeObject { data?: Record<string, string> }
export type SliceObject = KubeObject & EndpointSliceLike;
export type PoolObject = KubeObject & FailoverPool;

export const ANNOTATION_TOKEN_SECRET = 'veloflux.io/admin-token-secret';
export const ANNOTATION_ADMIN_PORT = 'veloflux.io/admin-port';
export const TOKEN_KEY = 'token';
export const DEFAULT_ADMIN_PORT: number = D.adminPort;
/** The operator caches only Secrets with this label set to "true" (a label-selected informer). */
export const SECRET_LABEL = 'veloflux.io/secret';
/** EndpointSlice index: "<namespace>/<kubernetes.io/service-name>". */
export const SLICE_INDEX = 'service';
export const sliceIndexKeys = (s: SliceObject): string[] => {
  const svc = s.metadata.labels?.['kubernetes.io/service-name'];
  return svc === undefined ? [] : [`${s.metadata.namespace ?? ''}/${svc}`];
};

export interface World {
  readonly kube: Kube;
  readonly log: Logger;
  readonly pools: Informer<PoolObject>;
  readonly pods: Informer<PodObject>;
  readonly secrets: Informer<SecretObject>;
  readonly slices: Informer<SliceObject>;
  /** Proxy pods the operator is connected to, by "ns/name". */
  readonly proxies: Map<string, PodState>;
  /** Pods the operator cannot even address (no admin token), by "ns/name", with why. */
  readonly podErrors: Map<string, string>;
  /** The pod informer selects proxy pods only (--pod-selector): each gets a config even when no pool selects it. */
  readonly allPodsAreProxies: boolean;
  /** Default Secret (in the pod's namespace) holding the admin token under key "token". */
  readonly tokenSecret: string;
  readonly enqueue: (key: string) => void;
  readonly enqueueAfter: (key: string, ms: number) => void;
  /** Starts following a new pod's event stream. */
  readonly follow: (state: PodState) => void;
  readonly onPush: (outcome: PushOutcome, ms: number, pod: string) => void;
  readonly now: () => number;
  /** SPEC 9: the leader's shared decision of a pool, if it holds one (decisions.ts). */
  readonly decisions: { status(ns: string, name: string): PoolDecisionStatus | undefined };
}

export interface Result { readonly requeueAfterMs?: number }

export const podKey = (ns: string, name: string): string => `pod/${ns}/${name}`;
export const poolKey = (ns: string, name: string): string => `pool/${ns}/${name}`;

export function isReady(pod: PodObject): boolean {
  return isAddressable(pod) && (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * A pod the operator pushes to: it has an IP and is not terminating, Ready or not (SPEC 6 warm-up: a proxy
 * started with `bootstrap: true` becomes Ready only once it runs a pushed config, so waiting for Ready would
 * wait forever). Status counts a proxy as selected and synced only while it is Ready.
 */
export function isAddressable(pod: PodObject): boolean {
  return !pod.metadata.deletionTimestamp && !!pod.status?.podIP;
}

function adminPort(pod: PodObject): number {
  const annotated = Number(pod.metadata.annotations?.[ANNOTATION_ADMIN_PORT]);
  if (Number.isInteger(annotated) && annotated > 0) return annotated;
  for (const c of pod.spec?.containers ?? []) for (const p of c.ports ?? []) if (p.name === 'admin') return p.containerPort;
  return DEFAULT_ADMIN_PORT;
}

/** Names of the Secrets `pools` reference (notification credentials, webhook URLs, HMAC secrets). */
export function referencedSecrets(pools: readonly FailoverPool[]): Set<string> {
  const names = new Set<string>();
  for (const p of pools) {
    for (const c of p.spec.notifications?.channels ?? []) {
      for (const ref of [c.credentialsSecretRef, c.urlSecretRef, c.hmacSecretRef]) if (ref) names.add(ref.name);
    }
  }
  return names;
}

/** Decoded data of exactly the Secrets `pools` reference, from the (label-selected) cache; no other is read. */
export function secretsOf(world: World, namespace: string, pools: readonly FailoverPool[]): Secrets {
  const out = new Map<string, Record<string, string>>();
  for (const name of referencedSecrets(pools)) {
    const s = world.secrets.get(namespace, name);
    if (!s) continue;
    out.set(name, Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')])));
  }
  return out;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * What the EndpointSlice informer watches: per namespace, the slices of exactly the Services its FailoverPools
 * name as backends (label kubernetes.io/service-name in (...)); a namespace without such a pool is not watched.
 */
export function sliceScopes(pools: readonly PoolObject[]): Scope[] {
  const byNs = new Map<string, Set<string>>();
  for (const p of pools) {
    const ns = p.metadata.namespace as string;
    for (const b of p.spec.backends ?? []) {
      const svc = b.service?.name;
      if (typeof svc !== 'string' || !DNS_LABEL.test(svc)) continue;
      (byNs.get(ns) ?? byNs.set(ns, new Set()).get(ns) as Set<string>).add(svc);
    }
  }
  return [...byNs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([namespace, svcs]) => ({ namespace, labelSelector: `kubernetes.io/service-name in (${[...svcs].sort().join(',')})` }));
}

/** EndpointSlices of the Services `pools` name as backends, from the index (not a scan of the namespace). */
function slicesOf(world: World, namespace: string, pools: readonly FailoverPool[]): SliceObject[] {
  const services = new Set<string>();
  for (const p of pools) for (const b of p.spec.backends) if (b.service) services.add(b.service.name);
  return [...services].flatMap((svc) => world.slices.byIndex(SLICE_INDEX, `${namespace}/${svc}`));
}

export function renderFor(world: World, pod: PodObject, base: ProxyBase): ReturnType<typeof render> {
  const ns = pod.metadata.namespace as string;
  const selecting = poolsSelecting(world, pod);
  return render({
    labels: pod.metadata.labels ?? {},
    pools: selecting,
    endpointSlices: slicesOf(world, ns, selecting),
    secrets: secretsOf(world, ns, selecting),
    base,
    now: world.now(),
  });
}

/** Pools in the pod's namespace whose proxySelector selects it. */
function poolsSelecting(world: World, pod: PodObject): PoolObject[] {
  return world.pools.list(pod.metadata.namespace).filter((p) => selects(p.spec.proxySelector, pod.metadata.labels ?? {}));
}

/** Milliseconds until the next override expiry among `pools`, if any. */
function nextExpiry(pools: readonly FailoverPool[], now: number): number | undefined {
  let next: number | undefined;
  for (const p of pools) {
    const at = p.spec.override?.expiresAt ? Date.parse(p.spec.override.expiresAt) : NaN;
    if ((p.spec.override?.mode ?? 'auto') !== 'auto' && at > now) next = Math.min(next ?? Infinity, at - now);
  }
  return next;
}

export async function reconcilePod(world: World, ns: string, name: string): Promise<Result> {
  const key = `${ns}/${name}`;
  // A newly referenced Service's slices are being listed: render once they are in (its adds enqueue us anyway).
  if (!world.slices.synced) return { requeueAfterMs: 200 };
  const pod = world.pods.get(ns, name);
  const selecting = pod ? poolsSelecting(world, pod) : [];
  for (const p of selecting) world.enqueue(poolKey(ns, p.metadata.name));
  const existing = world.proxies.get(key);
  // Which pods are proxies: those a FailoverPool selects, those this operator has configured (so deleting
  // the last pool empties them), and with --pod-selector every pod the informer sees.
  const managed = selecting.length > 0 || existing !== undefined || world.allPodsAreProxies;
  if (!pod || !isAddressable(pod) || !managed) {
    world.podErrors.delete(key);
    if (existing) {
      existing.abort.abort();
      world.proxies.delete(key);
      for (const p of world.pools.list(ns)) world.enqueue(poolKey(ns, p.metadata.name));
    }
    return {};
  }
  const secretName = pod.metadata.annotations?.[ANNOTATION_TOKEN_SECRET] ?? world.tokenSecret;
  const data = world.secrets.get(ns, secretName)?.data?.[TOKEN_KEY];
  if (!data) {
    // Terminal until the Secret appears: recorded in the pools' status (TokenSecretMissing) and not retried.
    // A change to a labelled Secret of this namespace requeues the pod (manager.ts), which is when it can work.
    const why = `admin token Secret "${secretName}" (key "${TOKEN_KEY}", label ${SECRET_LABEL}=true) not found in namespace ${ns}`;
    if (world.podErrors.get(key) !== why) world.log.warn({ pod: key, secret: secretName }, 'admin token Secret missing: not retrying until it appears');
    world.podErrors.set(key, why);
    if (existing) { existing.abort.abort(); world.proxies.delete(key); }
    for (const p of selecting) world.enqueue(poolKey(ns, p.metadata.name));
    return {};
  }
  world.podErrors.delete(key);
  const target = { uid: pod.metadata.uid ?? '', url: `http://${pod.status?.podIP}:${adminPort(pod)}`, token: Buffer.from(data, 'base64').toString('utf8').trim() };
  let state = existing;
  if (!state || !state.sameTarget(target)) {
    existing?.abort.abort();
    state = new PodState(key, target);
    world.proxies.set(key, state);
    world.follow(state);
  }
  const result = await pushIfChanged(state, (base) => renderFor(world, pod, base), world.log);
  world.onPush(result.outcome, result.ms, key);
  if (selecting.length === 0 && !world.allPodsAreProxies) {
    // Emptied: nothing selects it any more, so stop following it.
    state.abort.abort();
    world.proxies.delete(key);
  }
  for (const p of selecting) world.enqueue(poolKey(ns, p.metadata.name));
  const expiry = nextExpiry(selecting, world.now());
  return expiry === undefined ? {} : { requeueAfterMs: expiry + 10 };
}

function statusEqual(a: FailoverPoolStatus | undefined, b: FailoverPoolStatus): boolean {
  return JSON.stringify(a ?? {}) === JSON.stringify(b);
}

export async function reconcilePool(world: World, ns: string, name: string): Promise<Result> {
  const pool = world.pools.get(ns, name);
  if (!pool) return {};
  const now = world.now();
  const pods = world.pods.list(ns).filter((p) => isReady(p) && selects(pool.spec.proxySelector, p.metadata.labels ?? {}));
  // A pod the operator has not looked at yet (just started, or just became ready) would read as "not
  // synced, unreachable": wait for its pod reconcile, which enqueues this pool again, instead of writing a
  // status that flaps. This is what makes an operator restart leave the status untouched.
  if (pods.some((p) => !world.proxies.get(`${ns}/${p.metadata.name}`)?.checked && !world.podErrors.has(`${ns}/${p.metadata.name}`))) return {};
  let refused: Refusal | undefined;
  const reports: ProxyReport[] = pods.map((pod) => {
    const state = world.proxies.get(`${ns}/${pod.metadata.name}`);
    const rendered = state?.base ? renderFor(world, pod, state.base) : undefined;
    refused ??= rendered?.refused.get(name);
    const inConfig = rendered?.pools.includes(name) ?? false;
    // Synced only while the proxy answers: a dead process in a pod still Ready runs nothing.
    const synced = !!state && state.reachable && inConfig && state.version === rendered?.version;
    const podError = world.podErrors.get(`${ns}/${pod.metadata.name}`);
    return {
      pod: pod.metadata.name,
      synced,
      reachable: state?.reachable ?? false,
      pool: state?.status?.version === state?.version ? state?.status?.pools.find((p) => p.name === name) : undefined,
      pushError: podError ?? state?.pushError,
      errorReason: podError !== undefined ? 'TokenSecretMissing' : state?.errorReason,
    };
  });
  const override = effectiveOverride(pool, now);
  const decision = world.decisions.status(ns, name);
  const decided = (pool.spec.consensus?.mode ?? 'shared') === 'shared' ? decision : undefined;
  const computed = computeStatus({
    generation: pool.metadata.generation ?? 0,
    prev: pool.status,
    refused,
    proxies: reports,
    override: { mode: override.mode, expired: override.expired },
    failback: pool.spec.failback ? { mode: pool.spec.failback.mode ?? 'auto', approvedAt: pool.spec.failback.approve?.approvedAt } : undefined,
    holdDown: pool.spec.holdDown !== undefined,
    shared: decided === undefined ? undefined : {
      awaitingApproval: decided.awaitingApproval,
      paused: decided.paused,
      ramp: decided.ramp,
      flapping: decided.flapping === undefined ? undefined : { since: new Date(decided.flapping.since).toISOString(), failovers: decided.flapping.failovers, holdMs: decided.flapping.holdMs },
    },
    now,
  });
  const { transitions } = computed;
  const status: FailoverPoolStatus = { ...computed.status, consensus: consensusStatus(pool, decision, pods.map((p) => p.metadata.name), reports) };
  // Shared: whether a failback awaits approval is the operator's engine's to say (it holds the proxies' level).
  if (status.failback && decided !== undefined && (pool.spec.consensus?.mode ?? 'shared') === 'shared') status.failback = { ...status.failback, awaitingApproval: decided.awaitingApproval };
  if (!statusEqual(pool.status, status)) {
    try {
      // A merge patch keeps keys it does not name: null removes an episode that ended, or a failback block gone from the spec.
      await world.kube.mergePatch(`/apis/veloflux.io/v1alpha1/namespaces/${ns}/failoverpools/${name}/status`, { status: { ...status, flapping: status.flapping ?? null, failback: status.failback ?? null, ...(status.consensus ? { consensus: { ...status.consensus, paused: status.consensus.paused ?? null } } : {}) } });
    } catch (err) {
      if (err instanceof KubeError && err.code === 404) return {};
      throw err;
    }
    // Events only after the status that counts them is stored: a crash in between loses an Event, never
    // records one twice.
    for (const t of transitions) await recordEvent(world, pool, t, reports);
  }
  const expiry = nextExpiry([pool], now);
  return expiry === undefined ? {} : { requeueAfterMs: expiry + 10 };
}

/**
 * status.consensus (SPEC 9). Shared: the leader's decision, and the ready proxies that acknowledged its sequence
 * within its lease; local: the ready proxies on the most common level. The sequence of a pool the leader holds no
 * decision for (yet) stays what is stored, so it only grows.
 */
function consensusStatus(pool: PoolObject, d: PoolDecisionStatus | undefined, ready: readonly string[], reports: readonly ProxyReport[]): ConsensusStatus {
  const mode = pool.spec.consensus?.mode ?? 'shared';
  const stored = pool.status?.consensus;
  // A leader that has not yet sent its decision to every proxy (it just took over) does not know who agrees:
  // what is stored stands until it does, so a restart does not write 0/3 in between.
  if (mode === 'shared' && stored?.mode === 'shared' && (d === undefined || !d.settled)) {
    const n = Math.min(stored.agreeing, ready.length);
    const { paused: storedPaused, ...rest } = stored;
    // The pause is the engine's to say (its Events count against it), settled or not.
    const paused = d !== undefined ? d.paused : storedPaused;
    return { ...rest, sequence: Math.max(d?.sequence ?? 0, stored.sequence), agreeing: n, proxies: ready.length, agree: `${n}/${ready.length}`, ...(paused !== undefined ? { paused: { reason: paused.reason } } : {}) };
  }
  const n = mode === 'shared'
    ? (d?.agreeing(ready) ?? 0)
    : agreeing('local', undefined, reports.map((r) => ({ level: r.pool?.activeLevel, source: undefined, sequence: undefined })));
  const level = d?.level ?? stored?.level;
  const shares = d?.shares ?? stored?.shares;
  const paused = mode === 'shared' ? (d !== undefined ? d.paused : stored?.paused) : undefined;
  return {
    mode,
    source: mode === 'shared' && d !== undefined ? 'shared' : 'local',
    sequence: Math.max(d?.sequence ?? 0, stored?.sequence ?? 0),
    ...(level !== undefined ? { level } : {}),
    ...(shares !== undefined ? { shares: shares.map((x) => ({ level: x.level, percent: x.percent })) } : {}),
    agreeing: n,
    proxies: ready.length,
    agree: `${n}/${ready.length}`,
    ...(paused !== undefined ? { paused: { reason: paused.reason } } : {}),
  };
}

const EVENT_TEXT: Record<Transition['type'], (t: Transition) => string> = {
  FailoverActivated: (t) => `failover activated: traffic moved from level ${t.from} to level ${t.to}`,
  LevelChanged: (t) => `failover level changed from ${t.from} to ${t.to}`,
  FailoverRecovered: (t) => `failover recovered: traffic back from level ${t.from} to level ${t.to}`,
  FlappingStarted: (t) => (t.type === 'FlappingStarted' ? `failover flapping: ${t.failovers} failovers; failback held until the earlier level is healthy for ${t.holdMs}ms without a break` : ''),
  FlappingEnded: () => 'failover flapping ended: no failover within the flap window',
  RampPaused: (t) => (t.type === 'RampPaused' ? `failover ramp paused at ${t.percent}% on level ${t.to}: ${t.reason}` : ''),
  RampResumed: (t) => (t.type === 'RampResumed' ? `failover ramp resumed: level ${t.to} is within the ramp gate again (${t.percent}%)` : ''),
};

async function recordEvent(world: World, pool: PoolObject, t: Transition, reports: readonly ProxyReport[]): Promise<void> {
  const ns = pool.metadata.namespace as string;
  const at = new Date(world.now()).toISOString();
  // Counted among the proxies that report this pool for their current config; the others have not answered
  // since their last push (their level is unknown, not different).
  const reporting = reports.filter((r) => r.pool !== undefined);
  const onLevel = reporting.filter((r) => r.pool?.activeLevel === t.to).length;
  const message = `${EVENT_TEXT[t.type](t)} (${onLevel} of ${reporting.length} reporting ${reporting.length === 1 ? 'proxy' : 'proxies'} on level ${t.to}; ${reports.length} selected)`;
  world.log.warn({ pool: `${ns}/${pool.metadata.name}`, from: t.from, to: t.to, reason: t.type }, message);
  try {
    await world.kube.create(`/api/v1/namespaces/${ns}/events`, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${pool.metadata.name}.`, namespace: ns },
      involvedObject: { apiVersion: 'veloflux.io/v1alpha1', kind: 'FailoverPool', name: pool.metadata.name, namespace: ns, uid: pool.metadata.uid, resourceVersion: pool.metadata.resourceVersion },
      reason: t.type,
      message,
      type: t.type === 'FailoverRecovered' || t.type === 'FlappingEnded' || t.type === 'RampResumed' ? 'Normal' : 'Warning',
      source: { component: 'veloflux-operator' },
      reportingComponent: 'veloflux.io/operator',
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    });
  } catch (err) {
    world.log.warn({ err: (err as Error).message }, 'could not record event');
  }
}
