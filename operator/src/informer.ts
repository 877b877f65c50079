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

export interface InformerOptions {
  /** Collection path, e.g. /api/v1/pods or /apis/veloflux.io/v1alpha1/failoverpools. */
  readonly path: string;
  readonly labelSelector?: string;
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
}

export type Change<T> = { readonly type: 'added' | 'updated' | 'deleted'; readonly object: T; readonly old: T | undefined };

const key = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

export class Informer<T extends KubeObject> {
  readonly name: string;
  readonly #kube: Kube;
  readonly #opts: InformerOptions;
  readonly #log: Logger;
  readonly #store = new Map<string, T>();
  readonly #listeners: ((c: Change<T>) => void)[] = [];
  #abort = new AbortController();
  #stopped = false;
  #synced = false;
  #syncWaiters: (() => void)[] = [];
  /** Restarts after errors, for metrics and tests. */
  restarts = 0;
  #loop: Promise<void> | undefined;

  constructor(name: string, kube: Kube, opts: InformerOptions, log: Logger) {
    this.name = name;
    this.#kube = kube;
    this.#opts = opts;
    this.#log = log.child({ informer: name });
  }

  onChange(fn: (c: Change<T>) => void): void { this.#listeners.push(fn); }

  get(namespace: string, name: string): T | undefined { return this.#store.get(`${namespace}/${name}`); }

  list(namespace?: string): T[] {
    const all = [...this.#store.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
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
    if (type === 'DELETED') {
      this.#store.delete(k);
      this.#emit({ type: 'deleted', object, old });
      return;
    }
    this.#store.set(k, object);
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
