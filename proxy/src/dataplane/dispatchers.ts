// One connection pool per backend origin and transport (protocol + TLS settings of its pool, SPEC 8), shared by
// every snapshot of this process and kept across config and health changes; pools of backends that left the
// config, or whose transport changed, are closed (in-flight requests finish).
//
// Every protocol is undici's, behind the same Dispatcher contract the forwarding code uses (forward.ts):
//
//   pool protocol | address    | connection                                   | undici
//   --------------+------------+----------------------------------------------+-----------------------------------
//   http1         | http://    | TCP, HTTP/1.1 keep-alive, one request a time | Pool
//   http1         | https://   | TLS, ALPN http/1.1 only                      | Pool, allowH2: false
//   h2            | either     | TLS, ALPN h2 only (a backend that picks      | Pool, allowH2, ALPN checked after
//                 |            | http/1.1 fails the connection: PROTOCOL)     | the handshake (connectH2Only)
//   h2c           | http://    | TCP, HTTP/2 with prior knowledge             | Pool, useH2c
//   auto          | https://   | TLS, ALPN h2 preferred, else http/1.1        | Pool, allowH2 + preferH2
//   auto          | http://    | TCP, HTTP/1.1 (no cleartext negotiation)     | Pool
//
// HTTP/2 connections multiplex up to h2MaxConcurrentStreams streams (or what the backend's SETTINGS allow); the
// pool opens another connection only when those are all busy.
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { Pool, buildConnector } from 'undici';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { BackendConfig, DataplaneConfig } from '@veloflux/config/types';
import { dispatcherKey, originOf, tlsOptions } from '../health/transport.ts';

export { dispatcherKey };

/** The connection to an h2 backend did not agree on HTTP/2 by ALPN. A backend fault (fault.ts: PROTOCOL). */
export class NoH2Error extends Error {
  readonly code = 'VF_UPSTREAM_NO_H2';
  constructor(alpn: string | false) {
    super(`the backend did not select h2 by ALPN (got ${alpn === false || alpn === '' ? 'none' : alpn})`);
  }
}

function create(b: BackendConfig, s: DataplaneConfig): Pool {
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
  if (t.protocol === 'h2c') {
    // Pool builds its connector from the top-level useH2c (it marks the socket as h2), the client reads h2Options'.
    const h2c = { ...common, allowH2: true, useH2c: true, h2Options: { useH2c: true, maxConcurrentStreams: DEFAULTS.dataplane.h2MaxConcurrentStreams } };
    return new Pool(origin, h2c as Pool.Options);
  }
  if (!t.secure) return new Pool(origin, { ...common, pipelining: 1, allowH2: false });
  let tls: ConnectionOptions;
  try {
    tls = tlsOptions(t);
  } catch (err) {
    // Every request to this backend fails with the reason (a 502 that names the file; not counted against it).
    return new Pool(origin, { ...common, connect: (_opts, cb) => { cb(err as Error, null); } });
  }
  if (t.protocol === 'http1') return new Pool(origin, { ...common, pipelining: 1, allowH2: false, connect: tls });
  const connector = buildConnector({ ...tls, allowH2: true, preferH2: true, timeout: s.connectTimeoutMs } as buildConnector.BuildOptions);
  const connect: buildConnector.connector = t.protocol === 'auto' ? connector : (opts, cb) => {
    connector(opts, (err, socket) => {
      if (err !== null) { cb(err, null); return; }
      const alpn = (socket as TLSSocket).alpnProtocol;
      if (alpn === 'h2') { cb(null, socket); return; }
      socket.destroy();
      cb(new NoH2Error(alpn ?? false), null);
    });
  };
  return new Pool(origin, { ...common, allowH2: true, connect, h2Options: { maxConcurrentStreams: DEFAULTS.dataplane.h2MaxConcurrentStreams } });
}

export class Dispatchers {
  readonly #pools = new Map<string, Pool>();
  #settings: DataplaneConfig;

  constructor(settings: DataplaneConfig) {
    this.#settings = settings;
  }

  get(b: BackendConfig): Pool {
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
