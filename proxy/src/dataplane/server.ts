// The data-plane HTTP server: route, pick, forward (forward.ts), WebSocket upgrades, graceful close.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { Config } from '@veloflux/config/types';
import { ERRORS, errorBody } from '../errors.ts';
import type { RoutingState } from '../routing.ts';
import { Dispatchers } from './dispatchers.ts';
import { Budget, Exchange, readRequestHead, sendError, unwatchClient, watchClient } from './forward.ts';
import type { ForwardHooks, ForwardSettings } from './forward.ts';
import { Snapshot } from './plan.ts';
import type { Target } from './plan.ts';

const IDEMPOTENT_WITH_BODY = new Set(['PUT', 'DELETE', 'OPTIONS']);

export interface DataPlaneHooks extends ForwardHooks {
  /** An upgrade (WebSocket) request was served or failed. */
  upgraded?(pool: string, target: Target | undefined, ok: boolean): void;
}

export interface DataPlaneOptions {
  readonly config: Config;
  readonly routing: RoutingState;
  readonly hooks: DataPlaneHooks;
}

export class DataPlane {
  readonly server: Server;
  readonly #dispatchers: Dispatchers;
  readonly #hooks: DataPlaneHooks;
  #snapshot: Snapshot;
  #settings: ForwardSettings;
  #budget: Budget;
  #closing = false;

  constructor(opts: DataPlaneOptions) {
    this.#hooks = opts.hooks;
    this.#dispatchers = new Dispatchers(opts.config.dataplane);
    this.#snapshot = new Snapshot(opts.config, opts.routing, this.#dispatchers);
    this.#settings = settingsOf(opts.config);
    this.#budget = new Budget(opts.config.dataplane.retryBudgetPercent);
    const d = opts.config.dataplane;
    // No `server.timeout`: the client idle timeout runs only while the client owes us something (watchClient).
    this.server = createServer({ keepAliveTimeout: d.keepAliveTimeoutMs, requestTimeout: 0, connectionsCheckingInterval: 1000 }, this.#onRequest);
    this.server.on('upgrade', this.#onUpgrade);
    this.server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      if (!socket.writable || err.code === 'ECONNRESET') { socket.destroy(); return; }
      const body = errorBody(ERRORS.BAD_REQUEST, 'malformed HTTP request');
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
  }

  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: host === '' ? undefined : host, port }, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port });
      });
    });
  }

  /** New routing state and/or config: a new snapshot for new requests; in-flight requests keep theirs. */
  update(config: Config, routing: RoutingState): void {
    if (config !== this.#snapshot.config) {
      this.#dispatchers.retain(new Set(config.pools.flatMap((p) => p.backends.map((b) => b.upstream.origin))), config.dataplane);
      this.#settings = settingsOf(config);
      this.#budget = new Budget(config.dataplane.retryBudgetPercent);
    }
    this.#snapshot = new Snapshot(config, routing, this.#dispatchers);
  }

  /** Stop accepting, let in-flight requests finish (up to `graceMs`), then close everything. */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    // Connections that finish their request during the grace period become idle and are closed on the next
    // sweep, so a keep-alive client does not hold the stop for keepalive_timeout.
    this.server.closeIdleConnections();
    const sweep = setInterval(() => this.server.closeIdleConnections(), 50);
    const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
    await closed;
    clearInterval(sweep);
    clearTimeout(timer);
    await this.#dispatchers.close();
  }

  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    if (this.#closing) res.setHeader('connection', 'close');
    const snap = this.#snapshot;
    const url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47 /* "/" */) {
      sendError(res, ERRORS.BAD_REQUEST, 'the request target must be a path starting with "/"');
      return;
    }
    const head = readRequestHead(req, 'http');
    const poolName = snap.router.match(head.host, url);
    const plan = poolName === undefined ? undefined : snap.pools.get(poolName);
    if (plan === undefined) {
      sendError(res, ERRORS.NO_ROUTE, `no route for host "${head.host ?? ''}" and path "${url.split('?')[0]}"`);
      this.#hooks.done('', undefined, 404, 0, performance.now());
      return;
    }
    const first = plan.first();
    if (first === undefined) {
      sendError(res, ERRORS.NO_HEALTHY_BACKEND, `no backend of pool "${plan.name}" can serve at any level`, { 'retry-after': String(DEFAULTS.retryAfterSeconds) });
      this.#hooks.done(plan.name, undefined, 503, 0, performance.now());
      return;
    }
    const headers = head.headers;
    const method = req.method ?? 'GET';
    const length = head.contentLength;
    const hasBody = (length !== undefined && length !== '0') || head.chunked;
    if (!hasBody) {
      new Exchange(req, res, plan, first, null, headers, this.#settings, this.#budget, this.#hooks).start();
      return;
    }
    // A small body of an idempotent request is kept in memory so a failed attempt can be sent again elsewhere.
    const size = length === undefined ? Infinity : Number(length);
    if (IDEMPOTENT_WITH_BODY.has(method) && size <= DEFAULTS.dataplane.replayBufferBytes) {
      const chunks: Buffer[] = [];
      watchClient(res, this.#settings);
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        unwatchClient(res);
        const body = Buffer.concat(chunks);
        // The length is re-stated from what arrived: name and value are dropped together.
        const clean: string[] = [];
        for (let i = 0; i < headers.length; i += 2) if ((headers[i] as string).toLowerCase() !== 'content-length') clean.push(headers[i] as string, headers[i + 1] as string);
        clean.push('content-length', String(body.length));
        new Exchange(req, res, plan, first, body, clean, this.#settings, this.#budget, this.#hooks).start();
      });
      req.on('error', () => res.destroy());
      return;
    }
    new Exchange(req, res, plan, first, req, headers, this.#settings, this.#budget, this.#hooks).start();
  };

  #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const snap = this.#snapshot;
    const url = req.url ?? '/';
    const reqHead = readRequestHead(req, 'http');
    const poolName = snap.router.match(reqHead.host, url);
    const plan = poolName === undefined ? undefined : snap.pools.get(poolName);
    const refuse = (status: number, text: string, code: string, message: string): void => {
      const body = JSON.stringify({ error: { code, message } });
      socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    };
    if (plan === undefined) { refuse(404, 'Not Found', ERRORS.NO_ROUTE.code, 'no route for this host and path'); return; }
    const headers = reqHead.headers;
    const protocol = String(req.headers.upgrade ?? 'websocket');
    const tried = new Set<Target>();
    let target = plan.first();
    const firstLevel = target?.backend.level ?? 0;
    const attempt = (): void => {
      if (target === undefined) {
        refuse(503, 'Service Unavailable', ERRORS.NO_HEALTHY_BACKEND.code, `no backend of pool "${plan.name}" accepted the upgrade`);
        this.#hooks.upgraded?.(plan.name, undefined, false);
        return;
      }
      const t = target;
      t.dispatcher.upgrade({ path: url, method: req.method ?? 'GET', headers, protocol }).then(
        ({ headers: upHeaders, socket: upstream }) => {
          let head101 = 'HTTP/1.1 101 Switching Protocols\r\n';
          for (const [k, v] of Object.entries(upHeaders)) {
            if (v === undefined) continue;
            for (const one of Array.isArray(v) ? v : [v]) head101 += `${k}: ${one}\r\n`;
          }
          socket.write(`${head101}\r\n`);
          if (head.length > 0) upstream.write(head);
          upstream.pipe(socket).pipe(upstream);
          const end = (): void => { upstream.destroy(); socket.destroy(); };
          upstream.on('error', end);
          socket.on('error', end);
          upstream.on('close', end);
          socket.on('close', end);
          this.#hooks.upgraded?.(plan.name, t, true);
        },
        (err: Error & { code?: string }) => {
          this.#hooks.passive(t, err.code ?? err.message);
          tried.add(t);
          target = tried.size < this.#settings.maxAttempts ? plan.next(firstLevel, tried) : undefined;
          if (target === undefined) {
            refuse(502, 'Bad Gateway', ERRORS.UPSTREAM_CONNECT.code, `upgrade failed on pool "${plan.name}"`);
            this.#hooks.upgraded?.(plan.name, t, false);
            return;
          }
          attempt();
        },
      );
    };
    attempt();
  };
}

function settingsOf(config: Config): ForwardSettings {
  const d = config.dataplane;
  // Upstream timeouts live on the connection pools (dispatchers.ts), the retry budget in Budget.
  return { maxAttempts: d.maxAttempts, idleTimeoutMs: d.idleTimeoutMs };
}
