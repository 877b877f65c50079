// The data-plane HTTP server: route, pick, forward (forward.ts), WebSocket upgrades, graceful close. HTTP/1.1 and
// HTTP/2 (h2.ts) arrive on one listener (listener.ts) and share everything after the request head.
import { STATUS_CODES, createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Http2Server, Http2Session } from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { Config } from '@veloflux/config/types';
import { ERRORS } from '../errors.ts';
import type { RoutingState } from '../routing.ts';
import { Dispatchers, dispatcherKey } from './dispatchers.ts';
import { CLIENT_CLOSED, ClientGone, faultOf } from './fault.ts';
import { UpstreamError } from './h2-upstream.ts';
import { Budget, Exchange, abortSoon, downstreamHeaders, readRequestHead, sendError, unwatchClient, watchClient } from './forward.ts';
import type { ClientRequest, ClientResponse, ForwardHooks, ForwardSettings, RequestHead } from './forward.ts';
import { grpcStatusOf, isGrpc, parseGrpcTimeout } from './grpc.ts';
import { createH2Server, readH2RequestHead } from './h2.ts';
import type { H2Request, H2Response } from './h2-stream.ts';
import { createSniffingServer } from './listener.ts';
import { Drainer } from './drain.ts';
import type { Drainable } from './drain.ts';
import { CertStore } from './certs.ts';
import type { CertLog } from './certs.ts';
import { Snapshot } from './plan.ts';
import { Outliers } from './outlier.ts';
import { Latencies } from './latency.ts';
import type { BackendCells } from './plan.ts';
import type { PoolPlan, Target } from './plan.ts';
import type { Dispatcher } from 'undici';
import { listen } from '@veloflux/service/listen';

const IDEMPOTENT_WITH_BODY = new Set(['PUT', 'DELETE', 'OPTIONS']);

/** Marks a connection that has not finished its first request head yet (client_header_timeout, see below). */
const AWAITING_FIRST = Symbol('veloflux.awaitingFirstRequest');
type TrackedSocket = Socket & { [AWAITING_FIRST]?: boolean };

/** `http://authority/path` (RFC 9112 3.2.2: absolute-form, which a server MUST accept). */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)$/i;

/** A WebSocket close frame, status 1001 "going away" (FIN + opcode 8, payload length 2, code 0x03e9). */
const WS_CLOSE_GOING_AWAY = Buffer.from([0x88, 0x02, 0x03, 0xe9]);

/** An `Upgrade: h2c` is an HTTP/2 offer a backend may not take: SPEC 8 serves it as the HTTP/1.1 request it also is. */
function wantsUpgrade(req: IncomingMessage): boolean {
  const u = req.headers.upgrade;
  return u !== undefined && u.trim().toLowerCase() !== 'h2c';
}

function rawResponse(status: number, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

export interface DataPlaneHooks extends ForwardHooks {
  /** An upgrade (WebSocket) request was served or failed. */
  upgraded?(pool: string, target: Target | undefined, ok: boolean): void;
  /** A certificate of the TLS listener was re-read: served from now on ('ok'), or refused and the old kept ('error'). */
  tlsReload?(certFile: string, result: 'ok' | 'error'): void;
}

export interface DataPlaneOptions {
  readonly config: Config;
  readonly routing: RoutingState;
  readonly hooks: DataPlaneHooks;
  /** Where the TLS listener says what happened to its certificates (required with a `tls:` block to be useful). */
  readonly log?: CertLog;
}

const NO_LOG: CertLog = { info: () => {}, warn: () => {} };

export class DataPlane {
  /** The HTTP/1.1 server; it listens on no port of its own: `listener` hands it connections. */
  readonly server: Server;
  /** The HTTP/2 server (h2.ts), fed the same way. */
  readonly h2: Http2Server;
  /** The cleartext port: sniffs each connection for the HTTP/2 preface (listener.ts). */
  readonly listener: NetServer;
  readonly #sessions = new Set<Http2Session>();
  readonly #drainer: Drainer;
  /** The TLS listener (SPEC 8), once listen() has loaded its certificates. */
  #tls: { server: TlsServer; certs: CertStore; bound: { host: string; port: number } } | undefined;
  readonly #tlsConfig: Config['tls'];
  readonly #log: CertLog;
  readonly #dispatchers: Dispatchers;
  readonly #hooks: DataPlaneHooks;
  readonly #cells: BackendCells;
  #snapshot: Snapshot;
  #settings: ForwardSettings;
  #budget: Budget;
  #closing = false;

  constructor(opts: DataPlaneOptions) {
    this.#hooks = opts.hooks;
    this.#tlsConfig = opts.config.tls;
    this.#drainer = new Drainer(opts.config.drainTimeoutMs);
    this.#log = opts.log ?? NO_LOG;
    this.#dispatchers = new Dispatchers(opts.config.dataplane);
    this.#cells = { outliers: new Outliers((id, reason) => this.#hooks.outlier?.(id, reason)), latencies: new Latencies(opts.config.dataplane.headerTimeoutMs) };
    this.#snapshot = new Snapshot(opts.config, opts.routing, this.#dispatchers, this.#cells);
    this.#settings = settingsOf(opts.config);
    this.#budget = new Budget(opts.config.dataplane.retryBudgetPercent);
    const d = opts.config.dataplane;
    // No `server.timeout`: the client idle timeout runs only while the client owes us something (watchClient).
    // Timeouts on the client side, nginx-like:
    // - client_header_timeout: node's headersTimeout closes a connection whose request head is incomplete after
    //   it (408), counted from its first byte; `requestTimeout: 0` keeps long uploads alive (the body has its own
    //   idle timeout). A connection that sends no byte at all is not seen by node's check, so a socket timeout runs
    //   from the connection until its first request head is in.
    // - keepalive_timeout: node's keepAliveTimeout between requests.
    // - idle_timeout: a request body or a response the client does not read (watchClient), and tunnels.
    this.server = createServer({
      keepAliveTimeout: d.keepAliveTimeoutMs,
      headersTimeout: d.clientHeaderTimeoutMs,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, Math.max(50, d.clientHeaderTimeoutMs / 4)),
      shouldUpgradeCallback: wantsUpgrade,
    }, this.#onRequest);
    this.#headerTimeoutMs = d.clientHeaderTimeoutMs;
    this.#keepAliveMs = d.keepAliveTimeoutMs;
    this.h2 = createH2Server(this.#onH2Request, () => this.#keepAliveMs, this.#sessions);
    this.listener = createSniffingServer({
      h1: (socket) => { this.server.emit('connection', socket); socket.resume(); },
      h2: (socket) => { this.h2.emit('connection', socket); },
    }, () => this.#headerTimeoutMs);
    this.server.on('connection', (socket: TrackedSocket) => {
      socket[AWAITING_FIRST] = true;
      socket.setTimeout(this.#headerTimeoutMs);
    });
    this.server.on('upgrade', this.#onUpgrade);
    this.server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      if (!socket.writable || err.code === 'ECONNRESET') { socket.destroy(); return; }
      // RFC 9110 15.6.2: a method the server does not recognise is 501. Node's parser knows a fixed set of methods.
      if (err.code === 'HPE_INVALID_METHOD') { socket.end(rawResponse(501, ERRORS.METHOD_NOT_SUPPORTED.code, 'request method not supported')); return; }
      if (err.code === 'HPE_HEADER_OVERFLOW') { socket.end(rawResponse(431, ERRORS.HEADERS_TOO_LARGE.code, 'the request line and headers are too large (at most 16 KiB)')); return; }
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') { socket.end(rawResponse(408, ERRORS.REQUEST_TIMEOUT.code, 'the request head did not arrive in time')); return; }
      socket.end(rawResponse(400, ERRORS.BAD_REQUEST.code, 'malformed HTTP request'));
    });
  }

  #headerTimeoutMs: number;
  #keepAliveMs: number;

  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** The TLS listener's bound address, when there is one. */
  get tlsAddress(): { host: string; port: number } | undefined {
    return this.#tls?.bound;
  }

  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    // Certificates first: a bad one fails the start before any port is taken.
    const certs = this.#tlsConfig === undefined ? undefined : await CertStore.open(this.#tlsConfig, this.#log, (f, r) => this.#hooks.tlsReload?.(f, r), DEFAULTS.tls.reloadPollMs);
    const bound = await listen(this.listener, host, port);
    // The HTTP/1.1 server gets its connections from the listener; 'listening' starts its connection tracking
    // (headersTimeout checks, closeIdleConnections), which node otherwise starts when it listens itself.
    this.server.emit('listening');
    if (certs !== undefined && this.#tlsConfig !== undefined) {
      const server = this.#tlsServer(this.#tlsConfig, certs);
      try {
        this.#tls = { server, certs, bound: await listen(server, this.#tlsConfig.listen.host, this.#tlsConfig.listen.port) };
      } catch (err) {
        certs.close();
        throw err;
      }
    }
    return bound;
  }

  /**
   * TLS termination: SNI picks the certificate (certs.ts), ALPN the protocol server: "h2" goes to the HTTP/2
   * server, "http/1.1" or no ALPN to the HTTP/1.1 one (so WebSocket works over TLS too). A handshake must finish
   * within client_header_timeout; one that fails (plain HTTP on this port, an old version, no common ALPN
   * protocol) closes that connection and nothing else.
   */
  #tlsServer(cfg: NonNullable<Config['tls']>, certs: CertStore): TlsServer {
    const def = certs.defaultPair;
    const server = createTlsServer({
      cert: def.cert,
      key: def.key,
      minVersion: cfg.minVersion,
      ALPNProtocols: [...cfg.alpn],
      handshakeTimeout: this.#headerTimeoutMs,
      SNICallback: (name, cb) => cb(null, certs.context(name)),
    });
    certs.onDefaultChange = (pair) => server.setSecureContext({ cert: pair.cert, key: pair.key, minVersion: cfg.minVersion });
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') this.h2.emit('connection', socket);
      else this.server.emit('connection', socket);
    });
    server.on('tlsClientError', (_err, socket) => socket.destroy());
    return server;
  }

  /** New routing state and/or config: a new snapshot for new requests; in-flight requests keep theirs. */
  update(config: Config, routing: RoutingState): void {
    if (config !== this.#snapshot.config) {
      this.#dispatchers.retain(new Set(config.pools.flatMap((p) => p.backends.map(dispatcherKey))), config.dataplane);
      const ids = new Set(config.pools.flatMap((p) => p.backends.map((b) => b.id)));
      this.#cells.outliers.retain(ids);
      this.#cells.latencies.retain(ids, config.dataplane.headerTimeoutMs);
      this.#settings = settingsOf(config);
      this.#budget = new Budget(config.dataplane.retryBudgetPercent);
      this.server.keepAliveTimeout = config.dataplane.keepAliveTimeoutMs;
      this.server.headersTimeout = config.dataplane.clientHeaderTimeoutMs;
      this.#headerTimeoutMs = config.dataplane.clientHeaderTimeoutMs;
      this.#keepAliveMs = config.dataplane.keepAliveTimeoutMs;
    }
    this.#snapshot = new Snapshot(config, routing, this.#dispatchers, this.#cells);
    this.#drainer.timeoutMs = config.drainTimeoutMs;
    this.#drainer.check(routing);
  }

  /** Stop accepting, let in-flight requests finish (up to `graceMs`), then close everything. */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    this.#drainer.close();
    // The listener's close completes when every connection it accepted (either protocol) has ended.
    const stopped = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    const tls = this.#tls;
    const tlsStopped = tls === undefined ? Promise.resolve() : new Promise<void>((resolve) => tls.server.close(() => resolve()));
    tls?.certs.close();
    // The HTTP/1.1 server never listened itself: its close() only stops its connection checks here.
    this.server.close();
    // HTTP/2: GOAWAY to every session; a session ends when its open streams have.
    for (const s of this.#sessions) s.close();
    // Connections that finish their request during the grace period become idle and are closed on the next
    // sweep, so a keep-alive client does not hold the stop for keepalive_timeout.
    this.server.closeIdleConnections();
    const sweep = setInterval(() => this.server.closeIdleConnections(), 50);
    const timer = setTimeout(() => {
      this.server.closeAllConnections();
      for (const s of this.#sessions) s.destroy();
    }, graceMs);
    await stopped;
    await tlsStopped;
    clearInterval(sweep);
    clearTimeout(timer);
    await this.#dispatchers.close();
  }

  #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket as TrackedSocket;
    if (socket[AWAITING_FIRST]) { socket[AWAITING_FIRST] = false; socket.setTimeout(0); }
    if (this.#closing) res.setHeader('connection', 'close');
    let url = req.url ?? '/';
    let authority: string | undefined;
    if (url.charCodeAt(0) !== 47 /* "/" */) {
      const m = ABSOLUTE_FORM.exec(url);
      if (m === null) {
        sendError(res, ERRORS.BAD_REQUEST, 'the request target must be a path starting with "/" or an absolute http:// URL');
        return;
      }
      // Absolute-form: the authority is the host, whatever Host says (RFC 9112 3.2.2); the backend gets origin-form.
      authority = m[1] as string;
      url = (m[2] as string) === '' ? '/' : (m[2] as string).startsWith('/') ? m[2] as string : `/${m[2] as string}`;
      req.url = url;
    }
    this.#serve(req, res, readRequestHead(req, protoOf(req.socket), authority), url);
  };

  #onH2Request = (req: H2Request, res: H2Response): void => {
    const url = req.url;
    // RFC 9113 8.3.1: :path is origin-form ("*" only for OPTIONS, which no route matches).
    if (url.charCodeAt(0) !== 47 /* "/" */) { sendError(res, ERRORS.BAD_REQUEST, 'the :path must start with "/"'); return; }
    const head = readH2RequestHead(req, protoOf(req.socket));
    // gRPC's deadline (SPEC 8); gRPC only runs over HTTP/2, and a malformed value is refused before anything is sent.
    const timeout = req.headers['grpc-timeout'];
    if (typeof timeout === 'string' && isGrpc(req.headers['content-type'])) {
      const ms = parseGrpcTimeout(timeout);
      if (typeof ms !== 'number') { sendError(res, ERRORS.BAD_REQUEST, ms.error); return; }
      this.#serve(req, res, head, url, ms, true);
      return;
    }
    this.#serve(req, res, head, url, undefined, true);
  };

  /** Route, pick, forward: the same for both protocols from here on. */
  #serve(req: ClientRequest, res: ClientResponse, head: RequestHead, url: string, deadlineMs?: number, tracked = false): void {
    const snap = this.#snapshot;
    if (head.hostCount > 1) {
      // RFC 9112 3.2: more than one Host line is a 400 (which one would the backend and the router believe?).
      sendError(res, ERRORS.BAD_REQUEST, 'the request has more than one Host header');
      return;
    }
    const poolName = snap.router.match(head.host, url);
    const plan = poolName === undefined ? undefined : snap.pools.get(poolName);
    if (plan === undefined) {
      const startedAt = performance.now();
      sendError(res, ERRORS.NO_ROUTE, `no route for host "${head.host ?? ''}" and path "${url.split('?')[0]}"`);
      if (head.grpc) this.#hooks.grpc?.('', String(grpcStatusOf(ERRORS.NO_ROUTE)));
      this.#hooks.done('', undefined, 404, 0, startedAt);
      this.#hooks.access?.(req, res, '', undefined, 404, 0, startedAt, Number(res.getHeader('content-length') ?? 0), false);
      return;
    }
    const first = plan.first();
    if (first === undefined) {
      const startedAt = performance.now();
      sendError(res, ERRORS.NO_HEALTHY_BACKEND, `no backend of pool "${plan.name}" can serve at any level`, { 'retry-after': String(DEFAULTS.retryAfterSeconds) });
      if (head.grpc) this.#hooks.grpc?.(plan.name, String(grpcStatusOf(ERRORS.NO_HEALTHY_BACKEND)));
      this.#hooks.done(plan.name, undefined, 503, 0, startedAt);
      this.#hooks.access?.(req, res, plan.name, undefined, 503, 0, startedAt, Number(res.getHeader('content-length') ?? 0), false);
      return;
    }
    if (deadlineMs === 0) {
      sendError(res, ERRORS.DEADLINE_EXCEEDED, 'the client\'s grpc-timeout is 0');
      if (head.grpc) this.#hooks.grpc?.(plan.name, String(grpcStatusOf(ERRORS.DEADLINE_EXCEEDED)));
      this.#hooks.done(plan.name, undefined, CLIENT_CLOSED, 0, performance.now()); // the client's own deadline (forward.ts)
      return;
    }
    const headers = head.headers;
    const method = req.method ?? 'GET';
    const length = head.contentLength;
    const hasBody = (length !== undefined && length !== '0') || head.chunked;
    if (!hasBody) {
      const x = new Exchange(req, res, plan, first, null, headers, this.#settings, this.#budget, this.#hooks, head.grpc);
      this.#begin(x, deadlineMs, tracked);
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
        const x = new Exchange(req, res, plan, first, body, clean, this.#settings, this.#budget, this.#hooks, head.grpc);
        this.#begin(x, deadlineMs, tracked);
      });
      // The client left or its body failed before it was complete: nothing was sent, nothing counts against a backend.
      const startedAt = performance.now();
      req.on('error', () => {
        res.destroy();
        this.#hooks.done(plan.name, undefined, CLIENT_CLOSED, 0, startedAt);
        this.#hooks.access?.(req, res, plan.name, undefined, CLIENT_CLOSED, 0, startedAt, 0, false);
      });
      return;
    }
    const x = new Exchange(req, res, plan, first, req, headers, this.#settings, this.#budget, this.#hooks, head.grpc);
    this.#begin(x, deadlineMs, tracked);
  }

  /** HTTP/2 streams join the drain set (drain.ts); HTTP/1.1 requests are short and stay out of it. */
  #begin(x: Exchange, deadlineMs: number | undefined, tracked: boolean): void {
    if (deadlineMs !== undefined) x.deadline(deadlineMs);
    if (tracked) x.track(this.#drainer.open);
    x.start();
  }

  #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // Error handling first, before anything is awaited: a client that resets while the backend thinks about its
    // 101 must not take the worker down with an unhandled 'error'.
    new Tunnel(req, socket as Socket, head, this.#snapshot, this.#settings, this.#hooks, this.#drainer.open).start();
  };
}

/**
 * One upgrade (WebSocket): route, ask a backend with undici's dispatch (rescue onto the next candidate while
 * nothing was sent), then either splice the two sockets after a 101, or relay a non-101 answer to the client as a
 * normal response and close. Faults are classified like every other exchange (fault.ts): a client that leaves
 * before the 101 aborts the upstream attempt and counts against nobody.
 */
class Tunnel implements Dispatcher.DispatchHandler, Drainable {
  readonly #req: IncomingMessage;
  readonly #socket: Socket;
  readonly #head: Buffer;
  readonly #settings: ForwardSettings;
  readonly #hooks: DataPlaneHooks;
  readonly #snap: Snapshot;
  readonly #startedAt = performance.now();
  #plan: PoolPlan | undefined;
  #target: Target | undefined;
  #firstLevel = 0;
  #tried = new Set<Target>();
  #attempts = 0;
  #sent = false;
  #clientGone = false;
  #done = false;
  #controller: Dispatcher.DispatchController | undefined;
  #headers: string[] = [];
  #protocol = 'websocket';
  /** Status of a non-101 answer being relayed (0 until one starts). */
  #status = 0;

  readonly #drainSet: Set<Drainable>;
  #upstream: Duplex | undefined;

  constructor(req: IncomingMessage, socket: Socket, head: Buffer, snap: Snapshot, settings: ForwardSettings, hooks: DataPlaneHooks, drainSet: Set<Drainable>) {
    this.#drainSet = drainSet;
    this.#req = req;
    this.#socket = socket;
    this.#head = head;
    this.#snap = snap;
    this.#settings = settings;
    this.#hooks = hooks;
    socket.on('error', () => this.#clientLeft());
    socket.on('close', () => this.#clientLeft());
    // The head is in: client_header_timeout no longer applies (the tunnel gets idle_timeout once it is up).
    (socket as TrackedSocket)[AWAITING_FIRST] = false;
    socket.setTimeout(0);
  }

  get poolName(): string {
    return this.#plan?.name ?? '';
  }

  get level(): number {
    return this.#target?.backend.level ?? 0;
  }

  /**
   * failover.drain_timeout passed since this tunnel's level lost its traffic. A WebSocket client gets a close
   * frame with 1001 (going away, RFC 6455 7.4.1: unmasked, from the server side) and the backend's side is cut;
   * the backend's bytes stop first, so the close frame is not written into the middle of one of its frames
   * (a frame split across reads of the backend's socket can still be cut short: the client then sees the close).
   */
  drain(): void {
    this.#drainSet.delete(this);
    const client = this.#socket;
    const upstream = this.#upstream;
    upstream?.unpipe(client);
    upstream?.destroy();
    if (this.#protocol.toLowerCase() === 'websocket' && client.writable) client.end(WS_CLOSE_GOING_AWAY);
    else client.destroy();
    // The client may not answer the close: it is cut after a short grace.
    setTimeout(() => client.destroy(), 1000).unref();
  }

  start(): void {
    const req = this.#req;
    const url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47) { this.#refuse(400, ERRORS.BAD_REQUEST.code, 'the request target must be a path starting with "/"', ''); return; }
    const reqHead = readRequestHead(req, 'http');
    if (reqHead.hostCount > 1) { this.#refuse(400, ERRORS.BAD_REQUEST.code, 'the request has more than one Host header', ''); return; }
    const poolName = this.#snap.router.match(reqHead.host, url);
    const plan = poolName === undefined ? undefined : this.#snap.pools.get(poolName);
    if (plan === undefined) { this.#refuse(404, ERRORS.NO_ROUTE.code, 'no route for this host and path', ''); return; }
    this.#plan = plan;
    this.#headers = reqHead.headers;
    this.#protocol = String(req.headers.upgrade ?? 'websocket');
    this.#target = plan.first();
    this.#firstLevel = this.#target?.backend.level ?? 0;
    this.#attempt();
  }

  #attempt(): void {
    const plan = this.#plan as PoolPlan;
    const t = this.#target;
    if (t === undefined) {
      this.#refuse(503, ERRORS.NO_HEALTHY_BACKEND.code, `no backend of pool "${plan.name}" accepted the upgrade`, plan.name);
      return;
    }
    this.#attempts++;
    this.#sent = false;
    this.#controller = undefined;
    try {
      t.dispatcher.dispatch({ path: this.#req.url ?? '/', method: (this.#req.method ?? 'GET') as Dispatcher.HttpMethod, headers: this.#headers, upgrade: this.#protocol, body: null }, this);
    } catch (err) {
      this.onResponseError(undefined, err as Error);
    }
  }

  #clientLeft(): void {
    if (this.#done) return;
    this.#clientGone = true;
    this.#finish(CLIENT_CLOSED);
    abortSoon(this.#controller, new ClientGone()); // (forward.ts: never in the turn it was dispatched)
  }

  #refuse(status: number, code: string, message: string, pool: string): void {
    if (this.#socket.writable) this.#socket.end(rawResponse(status, code, message));
    else this.#socket.destroy();
    if (pool !== '') this.#finish(status);
    else this.#done = true;
  }

  #finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    const plan = this.#plan;
    if (plan === undefined) return;
    this.#hooks.done(plan.name, this.#target, status, this.#attempts, this.#startedAt);
    this.#hooks.access?.(this.#req, undefined, plan.name, this.#target, status, this.#attempts, this.#startedAt, 0, false);
    this.#hooks.upgraded?.(plan.name, this.#target, status === 101);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#sent = true;
    this.#controller = controller;
    if (this.#done) controller.abort(new ClientGone());
  }

  onRequestUpgrade(_controller: Dispatcher.DispatchController, _status: number, headers: Record<string, string | string[] | undefined>, upstream: Duplex): void {
    const client = this.#socket;
    if (this.#done) { upstream.destroy(); return; }
    let head101 = 'HTTP/1.1 101 Switching Protocols\r\n';
    for (const [k, v] of Object.entries(headers)) {
      if (v === undefined) continue;
      for (const one of Array.isArray(v) ? v : [v]) head101 += `${k}: ${one}\r\n`;
    }
    client.write(`${head101}\r\n`);
    if (this.#head.length > 0) upstream.write(this.#head);
    // From here the tunnel is the client's and the backend's: its ending is nobody's fault. Silence in both
    // directions for idle_timeout closes it (activity either way refreshes the client socket's timer).
    const end = (): void => { this.#drainSet.delete(this); upstream.destroy(); client.destroy(); };
    this.#upstream = upstream;
    this.#drainSet.add(this);
    upstream.on('error', end);
    upstream.on('close', end);
    client.on('close', end);
    client.on('timeout', end);
    client.setTimeout(this.#settings.idleTimeoutMs);
    upstream.pipe(client).pipe(upstream);
    this.#finish(101);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    // The backend answered without upgrading: relay that answer as a normal response, then close.
    this.#controller = controller;
    if (this.#done) return;
    let text = `HTTP/1.1 ${statusCode} ${statusMessage || STATUS_CODES[statusCode] || ''}\r\n`;
    const flat = downstreamHeaders(headers);
    for (let i = 0; i < flat.length; i += 2) {
      const v = flat[i + 1] as string | string[];
      for (const one of Array.isArray(v) ? v : [v]) text += `${flat[i] as string}: ${one}\r\n`;
    }
    this.#socket.write(`${text}connection: close\r\n\r\n`);
    this.#status = statusCode;
  }


  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#done) this.#socket.write(chunk);
  }

  onResponseEnd(): void {
    if (this.#done) return;
    this.#socket.end();
    this.#finish(this.#status);
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#done) return;
    const plan = this.#plan as PoolPlan;
    const t = this.#target as Target;
    const fault = faultOf(err as Error & { code?: string }, this.#clientGone);
    if (fault.side === 'client') { this.#socket.destroy(); this.#finish(CLIENT_CLOSED); return; }
    if (fault.side === 'backend') this.#hooks.passive(t, (err as { code?: string }).code ?? err.message);
    if (this.#status !== 0) { this.#socket.destroy(); this.#finish(0); return; } // a relayed answer was cut
    // An upgrade request has no body: a retry is safe while nothing was sent, or when the backend refused it.
    if (fault.side === 'backend' && this.#attempts < this.#settings.maxAttempts) {
      this.#tried.add(t);
      const next = plan.next(this.#firstLevel, this.#tried);
      if (next !== undefined) { this.#target = next; this.#attempt(); return; }
    }
    // The HTTP/2 upstream's own refusal names the reason (an Upgrade cannot go to an HTTP/2 backend).
    const why = err instanceof UpstreamError && fault.side === 'request' ? err.message : fault.error.summary;
    this.#refuse(fault.error.status, fault.error.code, `upgrade failed on pool "${plan.name}": ${why}`, plan.name);
  }
}

/** X-Forwarded-Proto: what the client spoke to us (a TLS socket, or node's HTTP/2 session proxy of one, says encrypted). */
function protoOf(socket: object): string {
  return (socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http';
}

function settingsOf(config: Config): ForwardSettings {
  const d = config.dataplane;
  // Upstream timeouts live on the connection pools (dispatchers.ts), the retry budget in Budget.
  return { maxAttempts: d.maxAttempts, idleTimeoutMs: d.idleTimeoutMs, headerTimeoutMs: d.headerTimeoutMs };
}
