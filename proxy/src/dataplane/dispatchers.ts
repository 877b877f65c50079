// One connection pool per backend origin and transport (protocol + TLS settings of its pool, SPEC 8), shared by
// every snapshot of this process and kept across config and health changes; pools of backends that left the
// config, or whose transport changed, are closed (in-flight requests finish).
//
// Every pool speaks the same dispatch contract the forwarding code uses (forward.ts); HTTP/2-only pools run on
// node:http2 directly (h2-upstream.ts, ADR 0011), the others on undici:
//
//   pool protocol | address    | connection                                   | dispatcher
//   --------------+------------+----------------------------------------------+-----------------------------------
//   http1         | http://    | TCP, HTTP/1.1 keep-alive, one request a time | undici Pool
//   http1         | https://   | TLS, ALPN http/1.1 only                      | undici Pool, allowH2: false
//   h2            | https://   | TLS, ALPN h2 only (a backend that picks      | H2Upstream (ALPN checked on the
//                 |            | http/1.1 fails the connection: PROTOCOL)     | handshake)
//   h2c           | http://    | TCP, HTTP/2 with prior knowledge             | H2Upstream
//   auto          | https://   | TLS, ALPN h2 preferred, else http/1.1        | undici Pool, allowH2 + preferH2
//   auto          | http://    | TCP, HTTP/1.1 (no cleartext negotiation)     | undici Pool
//
// HTTP/2 connections multiplex up to h2MaxConcurrentStreams streams (or what the backend's SETTINGS allow); the
// pool opens another connection only when those are all busy.
import type { ConnectionOptions } from 'node:tls';
import { Pool, buildConnector } from 'undici';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { BackendConfig, DataplaneConfig } from '@veloflux/config/types';
import { dispatcherKey, originOf, tlsOptions } from '../health/transport.ts';
import { H2Upstream, NoH2Error, type Upstream } from './h2-upstream.ts';

export { dispatcherKey, NoH2Error };

function create(b: BackendConfig, s: DataplaneConfig): Upstream {
  const t = b.transport;
  const common = {
    connectTimeout: s.connectTimeoutMs,
    headersTimeout: s.headerTimeoutMs,
    bodyTimeout: s.idleTimeoutMs,
    // Upstream keep-alive: reuse connections for a while, but not longer than backends usually keep them
    // (node's default server keepAliveTimeout is 5s); undici also honours the backend's Keep-Alive hint.
    keepAliveTimeout: 4000,
    keepAliveMaxTimeout: 60_000,
  };
  const origin = originOf(b);
  const h2 = { origin, connectTimeoutMs: s.connectTimeoutMs, headersTimeoutMs: s.headerTimeoutMs, bodyTimeoutMs: s.idleTimeoutMs, keepAliveMs: common.keepAliveTimeout, maxConcurrentStreams: DEFAULTS.dataplane.h2MaxConcurrentStreams };
  if (t.protocol === 'h2c') return new H2Upstream(h2);
  if (!t.secure) return new Pool(origin, { ...common, pipelining: 1, allowH2: false });
  let tls: ConnectionOptions;
  try {
    tls = tlsOptions(t);
  } catch (err) {
    // Every request to this backend fails with the reason (a 502 that names the file; not counted against it).
    return new Pool(origin, { ...common, connect: (_opts, cb) => { cb(err as Error, null); } });
  }
  if (t.protocol === 'http1') return new Pool(origin, { ...common, pipelining: 1, allowH2: false, connect: tls });
  if (t.protocol === 'h2') return new H2Upstream({ ...h2, tls });
  const connect = buildConnector({ ...tls, allowH2: true, preferH2: true, timeout: s.connectTimeoutMs } as buildConnector.BuildOptions);
  return new Pool(origin, { ...common, allowH2: true, connect, h2Options: { maxConcurrentStreams: DEFAULTS.dataplane.h2MaxConcurrentStreams } });
}

export class Dispatchers {
  readonly #pools = new Map<string, Upstream>();
  #settings: DataplaneConfig;

  constructor(settings: DataplaneConfig) {
    this.#settings = settings;
  }

  get(b: BackendConfig): Upstream {
    const key = dispatcherKey(b);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = create(b, this.#settings);
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Closes pools whose key is not in `keep`; settings apply to pools created from now on. */
  retain(keep: ReadonlySet<string>, settings: DataplaneConfig): void {
    const changed = JSON.stringify(settings) !== JSON.stringify(this.#settings);
    this.#settings = settings;
    for (const [key, pool] of this.#pools) {
      if (!keep.has(key) || changed) {
        this.#pools.delete(key);
        void pool.close().catch(() => pool.destroy());
      }
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => p.destroy())));
  }
}
