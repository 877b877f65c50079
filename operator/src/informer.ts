// An informer: list, then watch from the list's resourceVersion, keeping a cache of the objects and calling
// `onChange` for every object that was added, changed or deleted. The reconcilers read only the cache.
//
//   watch ends normally (server timeout)   -> watch again from the last resourceVersion seen
//   410 Gone (event or status)             -> relist at once (the cache is replaced, deletions are synthesized)
//   any other error (list, watch, network) -> relist after a jittered exponential backoff (0.5 s .. 30 s)
//
// Deletions while disconnected are not lost: the relist diff reports every cached object the list no longer has.
import type { Kube, KubeObject, ObjectList } from './kube.ts';
import type { Logger } from './log.ts';
import { systemClock } from './clock.ts';
import type { Clock } from './clock.ts';

export interface InformerOptions {
  /** Collection path, e.g. /api/v1/pods or /apis/veloflux.io/v1alpha1/failoverpools. */
  readonly path: string;
  readonly labelSelector?: string;
  /** List/watch these namespaces, one loop each (namespaced RBAC), instead of the whole cluster. */
  readonly namespaces?: readonly string[];
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Time source of failingSince (the manager's clock). */
  readonly clock?: Clock;
}

/** What one list/watch loop covers: a namespace (or the cluster) and a label selector. */
export interface Scope { readonly namespace?: string; readonly labelSelector?: string }

/** The collection path of `path` (e.g. /api/v1/pods) in one namespace (/api/v1/namespaces/NS/pods). */
export function scopedPath(path: string, namespace: string | undefined): string {
  if (namespace === undefined) return path;
  const i = path.lastIndexOf('/');
  return `${path.slice(0, i)}/namespaces/${encodeURIComponent(namespace)}${path.slice(i)}`;
}

const scopeKey = (s: Scope): string => `${s.namespace ?? '*'}|${s.labelSelector ?? ''}`;

interface Loop { readonly scope: Scope; readonly abort: AbortController; synced: boolean; failingSince: number | undefined; run?: Promise<void> }

export type Change<T> = { readonly type: 'added' | 'updated' | 'deleted'; readonly object: T; readonly old: T | undefined };

const key = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class Informer<T extends KubeObject> {
  readonly name: string;
  readonly #kube: Kube;
  readonly #opts: InformerOptions;
  readonly #log: Logger;
  readonly #store = new Map<string, T>();
  /** Index by namespace: the event fan-out and every render read one namespace, never the whole cache. */
  readonly #byNamespace = new Map<string, Map<string, T>>();
  /** Secondary indexes, by name: index key -> store keys. */
  readonly #indexers = new Map<string, { fn: (o: T) => string[]; index: Map<string, Set<string>> }>();
  readonly #listeners: ((c: Change<T>) => void)[] = [];
  readonly #loops = new Map<string, Loop>();
  #started = false;
  #stopped = false;
  #syncWaiters: (() => void)[] = [];
  /** Restarts after errors, for metrics and tests. */
  restarts = 0;

  constructor(name: string, kube: Kube, opts: InformerOptions, log: Logger) {
    this.name = name;
    this.#kube = kube;
    this.#opts = opts;
    this.#log = log.child({ informer: name });
    const scopes = opts.namespaces
      ? opts.namespaces.map((namespace) => ({ namespace, ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}) }))
      : [opts.labelSelector ? { labelSelector: opts.labelSelector } : {}];
    this.setScopes(scopes);
  }

  /**
   * Replaces what the informer lists and watches (at most one scope per namespace): loops of scopes no longer
   * wanted stop and their objects leave the cache (deletions emitted); new scopes start (once started).
   */
  setScopes(scopes: readonly Scope[]): void {
    const wanted = new Map(scopes.map((sc) => [scopeKey(sc), sc]));
    for (const [k, loop] of this.#loops) {
      if (wanted.has(k)) continue;
      loop.abort.abort();
      this.#loops.delete(k);
      for (const [sk, o] of this.#store) if (this.#covers(loop.scope, o) && !this.#coveredByAny(o)) this.#apply('DELETED', o, sk);
    }
    for (const [k, scope] of wanted) {
      if (this.#loops.has(k)) continue;
      const loop: Loop = { scope, abort: new AbortController(), synced: false, failingSince: undefined };
      this.#loops.set(k, loop);
      if (this.#started && !this.#stopped) loop.run = this.#run(loop);
    }
    this.#checkSynced();
  }

  #covers(scope: Scope, o: T): boolean { return scope.namespace === undefined || scope.namespace === o.metadata.namespace; }
  #coveredByAny(o: T): boolean { for (const l of this.#loops.values()) if (this.#covers(l.scope, o)) return true; return false; }

  #checkSynced(): void {
    if (this.synced) for (const w of this.#syncWaiters.splice(0)) w();
  }

  /** Since when a loop has been failing without a successful list (undefined: healthy). */
  get failingSince(): number | undefined {
    let since: number | undefined;
    for (const l of this.#loops.values()) if (l.failingSince !== undefined) since = Math.min(since ?? Infinity, l.failingSince);
    return since;
  }

  onChange(fn: (c: Change<T>) => void): void { this.#listeners.push(fn); }

  get(namespace: string, name: string): T | undefined { return this.#store.get(`${namespace}/${name}`); }

  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.#store.values()];
    const ns = this.#byNamespace.get(namespace);
    return ns ? [...ns.values()] : [];
  }

  get size(): number { return this.#store.size; }

  /**
   * Adds an index: `fn` gives the index keys of an object (e.g. "ns/service-name"); byIndex(name, key)
   * returns the objects with that key. Add indexes before start().
   */
  addIndex(name: string, fn: (o: T) => string[]): void {
    const index = new Map<string, Set<string>>();
    for (const [k, o] of this.#store) for (const ik of fn(o)) (index.get(ik) ?? index.set(ik, new Set()).get(ik) as Set<string>).add(k);
    this.#indexers.set(name, { fn, index });
  }

  byIndex(name: string, key: string): T[] {
    const keys = this.#indexers.get(name)?.index.get(key);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) { const o = this.#store.get(k); if (o) out.push(o); }
    return out;
  }

  #unindex(k: string, o: T): void {
    const ns = o.metadata.namespace ?? '';
    const m = this.#byNamespace.get(ns);
    m?.delete(k);
    if (m?.size === 0) this.#byNamespace.delete(ns);
    for (const { fn, index } of this.#indexers.values()) {
      for (const ik of fn(o)) { const set = index.get(ik); set?.delete(k); if (set?.size === 0) index.delete(ik); }
    }
  }

  #index(k: string, o: T): void {
    const ns = o.metadata.namespace ?? '';
    (this.#byNamespace.get(ns) ?? this.#byNamespace.set(ns, new Map()).get(ns) as Map<string, T>).set(k, o);
    for (const { fn, index } of this.#indexers.values()) {
      for (const ik of fn(o)) (index.get(ik) ?? index.set(ik, new Set()).get(ik) as Set<string>).add(k);
    }
  }

  /** Every loop has listed at least once (no loop at all: nothing to wait for). */
  get synced(): boolean {
    for (const l of this.#loops.values()) if (!l.synced) return false;
    return true;
  }

  /** Resolves once every loop has listed at least once. */
  waitSynced(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    for (const l of this.#loops.values()) l.run ??= this.#run(l);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    const loops = [...this.#loops.values()];
    for (const l of loops) l.abort.abort();
    await Promise.all(loops.map((l) => l.run));
  }

  #emit(c: Change<T>): void {
    for (const fn of this.#listeners) {
      try { fn(c); } catch (err) { this.#log.error({ err: (err as Error).message }, 'informer listener failed'); }
    }
  }

  #apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T, k = key(object)): void {
    const old = this.#store.get(k);
    if (old) this.#unindex(k, old);
    if (type === 'DELETED') {
      this.#store.delete(k);
      this.#emit({ type: 'deleted', object, old });
      return;
    }
    this.#store.set(k, object);
    this.#index(k, object);
    this.#emit({ type: old ? 'updated' : 'added', object, old });
  }

  async #run(loop: Loop): Promise<void> {
    let failures = 0;
    const base = this.#opts.backoffBaseMs ?? 500;
    const max = this.#opts.backoffMaxMs ?? 30_000;
    const { scope, abort } = loop;
    const path = scopedPath(this.#opts.path, scope.namespace);
    const selector = scope.labelSelector;
    const gone = (): boolean => this.#stopped || abort.signal.aborted;
    while (!gone()) {
      try {
        const query = selector ? `?labelSelector=${encodeURIComponent(selector)}` : '';
        const list = await this.#kube.get<ObjectList<T>>(`${path}${query}`);
        if (gone()) break;
        const seen = new Set<string>();
        for (const item of list.items) {
          seen.add(key(item));
          const old = this.#store.get(key(item));
          if (old?.metadata.resourceVersion !== item.metadata.resourceVersion) this.#apply('MODIFIED', item);
        }
        for (const [k, old] of this.#store) if (!seen.has(k) && this.#covers(scope, old)) this.#apply('DELETED', old, k);
        if (!loop.synced) { loop.synced = true; this.#checkSynced(); }
        failures = 0;
        loop.failingSince = undefined;
        let rv = list.metadata.resourceVersion ?? '';
        let expired = false;
        while (!gone() && !expired) {
          const query: Record<string, string> = { resourceVersion: rv, timeoutSeconds: String(240 + Math.floor(Math.random() * 120)) };
          if (selector) query.labelSelector = selector;
          await this.#kube.watch<T>(path, query, (e) => {
            if (gone()) return;
            if (e.type === 'ERROR') {
              if (e.object.code === 410) expired = true;
              else throw new Error(`watch error ${e.object.code}: ${e.object.message}`);
              return;
            }
            rv = e.object.metadata.resourceVersion ?? rv;
            if (e.type !== 'BOOKMARK') this.#apply(e.type, e.object);
          }, abort.signal);
        }
        if (expired) this.#log.info({ namespace: scope.namespace }, 'watch expired (410 Gone): relisting');
      } catch (err) {
        if (gone()) break;
        const code = (err as { code?: number }).code;
        if (code === 410) { this.#log.info('resourceVersion too old (410): relisting'); continue; }
        failures++;
        this.restarts++;
        loop.failingSince ??= (this.#opts.clock ?? systemClock).now();
        // Full jitter: many informers failing together (apiserver restart) do not come back in lockstep.
        const delay = Math.round(Math.random() * Math.min(max, base * 2 ** (failures - 1))) + 50;
        this.#log.warn({ namespace: scope.namespace, err: (err as Error).message, retryInMs: delay, failures }, 'informer failed: restarting');
        await sleep(delay, abort.signal);
      }
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(() => { signal?.removeEventListener('abort', done); resolve(); }, ms);
    const done = (): void => { clearTimeout(t); resolve(); };
    signal?.addEventListener('abort', done, { once: true });
  });
}
