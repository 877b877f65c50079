// Talking to one proxy pod's admin API (SPEC 3): read its config and failover status, push a config, and
// follow its server-sent events with reconnects.
import type { PodOwned } from '@veloflux/config/restart';
import { DATAPLANE_YAML, podOwnedYaml } from '@veloflux/config/serialize';
import { Agent, fetch } from 'undici';
import type { Logger } from './log.ts';
import type { ProxyBase } from '@veloflux/kube/render';
import type { ProxyStatus } from '@veloflux/kube/types';
import { sleep } from './informer.ts';

/** An admin API error: HTTP status, the proxy's error code (VF_ERR_...) and message. */
export class AdminApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

/** Connections to proxies are short-lived and many; keep-alive helps the periodic reads. */
const agent = new Agent({ keepAliveTimeout: 10_000, connectTimeout: 3_000 });

/**
 * The pod-owned keys of a running proxy (listen, admin, region, dataplane), back in config.yaml form, so the
 * rendered config keeps them exactly: every restart-only field (RESTART_ONLY, packages/config/src/restart.ts)
 * is among them, so a push never asks for a restart. `view` is GET /api/v1/config's `config` (the resolved
 * config as JSON); its shape is checked before it is used.
 */
export function baseFromView(view: unknown): ProxyBase {
  const at = (path: string): unknown => path.split('.').reduce<unknown>((o, k) => (o !== null && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined), view);
  const bad = (path: string, want: string): never => { throw new Error(`the proxy's GET /api/v1/config: config.${path} is not ${want}`); };
  for (const p of ['listen', 'admin.listen']) {
    if (typeof at(`${p}.host`) !== 'string' || !Number.isInteger(at(`${p}.port`))) bad(p, 'a listen address { host, port }');
  }
  for (const p of ['admin.tokenFile', 'region']) if (at(p) !== undefined && at(p) !== null && typeof at(p) !== 'string') bad(p, 'a string');
  const tls = at('tls');
  if (tls !== undefined && tls !== null) {
    if (typeof at('tls.listen.host') !== 'string' || !Number.isInteger(at('tls.listen.port'))) bad('tls.listen', 'a listen address { host, port }');
    if (!Array.isArray(at('tls.certificates')) || !Array.isArray(at('tls.alpn'))) bad('tls', 'a TLS listener { listen, minVersion, alpn, certificates }');
  }
  for (const k of Object.keys(DATAPLANE_YAML)) {
    const v = at(`dataplane.${k}`);
    if (!(typeof v === 'number' && Number.isFinite(v) && v >= 0) && !(k === 'workers' && v === 'auto')) bad(`dataplane.${k}`, 'a number');
  }
  return podOwnedYaml(view as PodOwned) as ProxyBase;
}

export class ProxyClient {
  readonly url: string;
  readonly #token: string;

  constructor(url: string, token: string) {
    this.url = url;
    this.#token = token;
  }

  async #call<T>(method: string, path: string, body?: string, opts: { type?: string; timeoutMs?: number } = {}): Promise<T> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      dispatcher: agent,
      headers: { authorization: `Bearer ${this.#token}`, ...(body !== undefined ? { 'content-type': opts.type ?? 'application/yaml' } : {}) },
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    let json: unknown;
    try { json = JSON.parse(text); } catch { json = undefined; }
    if (res.status >= 300) {
      const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
      throw new AdminApiError(res.status, e?.code ?? 'HTTP', (e?.message ?? text.slice(0, 200)).split('\n').slice(0, 4).join(' '));
    }
    return json as T;
  }

  async config(): Promise<{ version: string; base: ProxyBase }> {
    const r = await this.#call<{ version: string; config: unknown }>('GET', '/api/v1/config');
    return { version: r.version, base: baseFromView(r.config) };
  }

  status(): Promise<ProxyStatus> { return this.#call<ProxyStatus>('GET', '/api/v1/failover/status'); }

  push(yaml: string): Promise<{ version: string; changed: boolean }> { return this.#call('PUT', '/api/v1/config', yaml); }

  /** SPEC 9: a shared decision for one pool; answers the sequence the proxy now holds. */
  decide(pool: string, d: { level: number; shares: readonly { level: number; percent: number }[]; sequence: number; ttl: string; paused?: { reason: string } }, timeoutMs: number): Promise<{ sequence: number }> {
    return this.#call('PUT', `/api/v1/pools/${encodeURIComponent(pool)}/decision`, JSON.stringify(d), { type: 'application/json', timeoutMs });
  }

  /** The sequence of the decision a proxy holds for `pool` (after it refused ours as stale), or 0. */
  async heldSequence(pool: string, timeoutMs: number): Promise<number> {
    const st = await this.#call<ProxyStatus>('GET', `/api/v1/failover/status?pool=${encodeURIComponent(pool)}`, undefined, { timeoutMs });
    const seq = st.pools[0]?.decision?.sequence;
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? seq : 0;
  }

  /**
   * Follows GET /api/v1/events until `signal` aborts, reconnecting after a jittered backoff (0.2 s .. 5 s)
   * whenever the stream ends or fails. `onConnect(false)` when a connection is lost or refused.
   */
  async follow(onEvent: (type: string, data: unknown) => void, onConnect: (up: boolean) => void, signal: AbortSignal, log: Logger): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        const res = await fetch(`${this.url}/api/v1/events`, { dispatcher: agent, headers: { authorization: `Bearer ${this.#token}`, accept: 'text/event-stream' }, signal });
        if (res.status !== 200 || !res.body) throw new AdminApiError(res.status, 'HTTP', (await res.text()).slice(0, 200));
        failures = 0;
        onConnect(true);
        let buffer = '';
        let type = 'message';
        let data = '';
        const decoder = new TextDecoder();
        for await (const chunk of res.body) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let nl: number;
          while ((nl = buffer.indexOf('\n')) >= 0) {
            const line = buffer.slice(0, nl).replace(/\r$/, '');
            buffer = buffer.slice(nl + 1);
            if (line === '') {
              if (data !== '') {
                let parsed: unknown;
                try { parsed = JSON.parse(data); } catch { parsed = data; }
                onEvent(type, parsed);
              }
              type = 'message';
              data = '';
            } else if (line.startsWith(':')) {
              // heartbeat comment
            } else if (line.startsWith('event:')) {
              type = line.slice(6).trim();
            } else if (line.startsWith('data:')) {
              data += (data ? '\n' : '') + line.slice(5).trimStart();
            }
          }
        }
        if (!signal.aborted) log.info('event stream ended: reconnecting');
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        if (failures === 1 || failures % 20 === 0) log.warn({ err: (err as Error).message, failures }, 'event stream failed: reconnecting');
      }
      onConnect(false);
      await sleep(Math.round(Math.min(5_000, 200 * 2 ** Math.min(failures, 5)) * (0.5 + Math.random() * 0.5)), signal);
    }
  }
}
