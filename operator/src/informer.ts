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
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** Time source of failingSince (the manager's clock). */
  readonly clock?: Clock;
}

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
  #abort = new AbortController();
  #stopped = false;
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  /** Restarts after errors, for metrics and tests. */
  restarts = 0;
  #loop: Promise<void> | undefined;
  /** Since when the informer has been failing without a successful list (undefined: healthy). */
  failingSince: number | undefined;

  constructor(name: string, kube: Kube, opts: InformerOptions, log: Logger) {
    this.name = name;
    this.#kube = kube;
    this.#opts = opts;
    this.#log = log.child({ informer: name });
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

  get synced(): boolean { return this.#synced; }

  /** Resolves after the first successful list. */
  waitSynced(): Promise<void> {
    return this.#synced ? Promise.resolve() : new Promise((resolve) => this.#syncWaiters.push(resolve));
  }

  start(): void { this.#loop ??= this.#run(); }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    await this.#loop;
  }

  #emit(c: Change<T>): void {
    for (const fn of this.#listeners) {
      try { fn(c); } catch (err) { this.#log.error({ err: (err as Error).message }, 'informer listener failed'); }
    }
  }

  #apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void {
    const k = key(object);
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

  async #run(): Promise<void> {
    let failures = 0;
    const base = this.#opts.backoffBaseMs ?? 500;
    const max = this.#opts.backoffMaxMs ?? 30_000;
    while (!this.#stopped) {
      try {
        const query = this.#opts.labelSelector ? `?labelSelector=${encodeURIComponent(this.#opts.labelSelector)}` : '';
        const list = await this.#kube.get<ObjectList<T>>(`${this.#opts.path}${query}`);
        const seen = new Set<string>();
        for (const item of list.items) {
          seen.add(key(item));
          const old = this.#store.get(key(item));
          if (old?.metadata.resourceVersion !== item.metadata.resourceVersion) this.#apply('MODIFIED', item);
        }
        for (const [k, old] of this.#store) if (!seen.has(k)) this.#apply('DELETED', old);
        if (!this.#synced) {
          this.#synced = true;
          for (const w of this.#syncWaiters.splice(0)) w();
        }
        failures = 0;
        this.failingSince = undefined;
        let rv = list.metadata.resourceVersion ?? '';
        let gone = false;
        while (!this.#stopped && !gone) {
          const query: Record<string, string> = { resourceVersion: rv, timeoutSeconds: String(240 + Math.floor(Math.random() * 120)) };
          if (this.#opts.labelSelector) query.labelSelector = this.#opts.labelSelector;
          await this.#kube.watch<T>(this.#opts.path, query, (e) => {
            if (e.type === 'ERROR') {
              if (e.object.code === 410) gone = true;
              else throw new Error(`watch error ${e.object.code}: ${e.object.message}`);
              return;
            }
            rv = e.object.metadata.resourceVersion ?? rv;
            if (e.type !== 'BOOKMARK') this.#apply(e.type, e.object);
          }, this.#abort.signal);
        }
        if (gone) this.#log.info('watch expired (410 Gone): relisting');
      } catch (err) {
        if (this.#stopped) break;
        const code = (err as { code?: number }).code;
        if (code === 410) { this.#log.info('resourceVersion too old (410): relisting'); continue; }
        failures++;
        this.restarts++;
        this.failingSince ??= (this.#opts.clock ?? systemClock).now();
        // Full jitter: many informers failing together (apiserver restart) do not come back in lockstep.
        const delay = Math.round(Math.random() * Math.min(max, base * 2 ** (failures - 1))) + 50;
        this.#log.warn({ err: (err as Error).message, retryInMs: delay, failures }, 'informer failed: restarting');
        await sleep(delay, this.#abort.signal);
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
