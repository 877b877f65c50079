// A small raw-JSON client over client-node's KubeConfig (auth, TLS), for what the operator does: list, watch,
// get, create, update, merge-patch (status). Raw JSON keeps list and watch objects in one shape (the typed
// API turns timestamps into Dates in lists, watches give strings), and one `request` is easy to reason about.
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { HttpMethod, RequestContext } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
import { fetch } from 'undici';

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; generation?: number; labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: string; uid?: string };
}

export interface ObjectList<T> {
  metadata: { resourceVersion?: string };
  items: T[];
}

export class KubeError extends Error {
  readonly code: number;
  readonly reason: string | undefined;
  constructor(code: number, method: string, path: string, status: { message?: string; reason?: string } | undefined, text: string) {
    super(`${method} ${path}: ${code} ${status?.message ?? text.slice(0, 300)}`);
    this.code = code;
    this.reason = status?.reason;
  }
}

export type WatchEvent<T> = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: T } | { type: 'ERROR'; object: { code?: number; message?: string } };

export class Kube {
  readonly #kc: KubeConfig;
  readonly server: string;

  constructor(kc: KubeConfig) {
    this.#kc = kc;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    this.server = cluster.server.replace(/\/$/, '');
  }

  async #fetch(method: string, path: string, body: unknown, contentType: string, signal?: AbortSignal, accept = 'application/json'): Promise<Response> {
    const url = `${this.server}${path}`;
    const ctx = new RequestContext(url, method as HttpMethod);
    await this.#kc.applySecurityAuthentication(ctx);
    const headers: Record<string, string> = { ...ctx.getHeaders(), accept };
    if (body !== undefined) headers['content-type'] = contentType;
    const dispatcher = ctx.getDispatcher();
    return (await fetch(url, {
      method,
      headers,
      ...(dispatcher ? { dispatcher } : {}),
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      ...(signal ? { signal } : {}),
    })) as unknown as Response;
  }

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, body?: unknown, contentType = 'application/json', accept?: string): Promise<T> {
    const res = await this.#fetch(method, path, body, contentType, AbortSignal.timeout(30_000), accept);
    const text = await res.text();
    if (res.status >= 300) {
      let status: { message?: string; reason?: string } | undefined;
      try { status = JSON.parse(text) as typeof status; } catch { status = undefined; }
      throw new KubeError(res.status, method, path, status, text);
    }
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string): Promise<T> { return this.request<T>('GET', path); }
  create<T>(path: string, body: unknown): Promise<T> { return this.request<T>('POST', path, body); }
  update<T>(path: string, body: unknown): Promise<T> { return this.request<T>('PUT', path, body); }
  mergePatch<T>(path: string, body: unknown): Promise<T> { return this.request<T>('PATCH', path, body, 'application/merge-patch+json'); }

  /**
   * One watch stream from `resourceVersion`: `onEvent` for each event; resolves when the server ends the
   * stream (its timeoutSeconds) or `signal` aborts, rejects on a transport or HTTP error.
   */
  async watch<T>(path: string, query: Record<string, string>, onEvent: (e: WatchEvent<T>) => void, signal: AbortSignal): Promise<void> {
    const params = new URLSearchParams({ ...query, watch: 'true', allowWatchBookmarks: 'true' });
    const res = await this.#fetch('GET', `${path}?${params}`, undefined, '', signal);
    if (res.status !== 200 || !res.body) {
      const text = await res.text();
      let status: { message?: string; reason?: string } | undefined;
      try { status = JSON.parse(text) as typeof status; } catch { status = undefined; }
      throw new KubeError(res.status, 'WATCH', path, status, text);
    }
    const lines = createInterface({ input: Readable.fromWeb(res.body as never), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        onEvent(JSON.parse(line) as WatchEvent<T>);
      }
    } catch (err) {
      if (signal.aborted) return;
      throw err;
    }
  }
}
