// Forwarding one request, with per-request rescue. This is the hot path: one object per request, which is also
// the upstream's dispatch handler (undici's contract, kept by H2Upstream: ADR 0011), so no stream wrappers,
// promises or closures per attempt. (Measured: undici's
// `dispatch` with a handler beats `pool.stream` and `pool.request` + `pipeline`; see bench/.)
//
// Rescue rules (SPEC 2): a failed attempt is retried on the next candidate (same level, then the next levels)
// while attempts remain and the retry budget allows. Idempotent methods are retried always (a small body is
// kept so it can be sent again); other methods only when the failure happened before the request was sent,
// which the upstream tells us: `onRequestStart` runs just before the first byte is written to the connection.
//
// gRPC (SPEC 8): a gRPC request (content-type application/grpc*) is rescued onto the next candidate only when
// nothing was sent (connect failure) or the backend refused it before answering: RST_STREAM REFUSED_STREAM, a
// GOAWAY whose last stream id leaves it unprocessed, HEADERS that could not go out after a GOAWAY. Its body
// streams through a GrpcBody that keeps the first replayBufferBytes, so a refused call can be sent again; a call
// that overflowed it, or that got any response header, is never replayed (streams are not replayed; ADR 0008).
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { DEFAULTS } from '@veloflux/config/defaults';
import { ERRORS, errorBody } from '../errors.ts';
import type { ErrorDef } from '../errors.ts';
import { CLIENT_CLOSED, ClientGone, faultOf } from './fault.ts';
import { grpcErrorHeaders, grpcStatusOf, isGrpc } from './grpc.ts';
import type { Drainable } from './drain.ts';
import type { PoolPlan, Target } from './plan.ts';
import { H2Request, H2Response, cancelStream } from './h2-stream.ts';

type Controller = Dispatcher.DispatchController;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/**
 * Aborts an upstream exchange on the next turn of the event loop, never in the turn it may have been dispatched in.
 * Node's HTTP/2 session spins forever (100% CPU, memory without bound: one empty DATA frame after another, in
 * `SendPendingData`) when undici destroys a stream it submitted before the session flushed it, which undici's abort
 * does (close, then destroy, synchronously). A client that sends a request and its RST_STREAM in one packet, or
 * closes a WebSocket at once, made the proxy do exactly that: one client wedged the whole data plane (ADR 0008).
 * By the next turn the session has written the stream out. A late abort of a finished request is a no-op.
 */
export function abortSoon(c: Controller | undefined, err: Error): void {
  if (c !== undefined) setImmediate(abortNow, c, err);
}

function abortNow(c: Controller, err: Error): void {
  c.abort(err);
}

/** Hop-by-hop headers (RFC 9110 7.6.1; http2-settings: RFC 7540 3.2.1), never forwarded; undici also refuses
 *  some of them, and node's HTTP/2 refuses to send the connection-specific ones (RFC 9113 8.2.2). */
export const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'expect', 'http2-settings']);

/** A client's request and response: node's HTTP/1.1 ones, or an HTTP/2 stream's (h2-stream.ts). */
export type ClientRequest = IncomingMessage | H2Request;
export type ClientResponse = ServerResponse | H2Response;

export interface ForwardSettings {
  readonly maxAttempts: number;
  /** dataplane.header_timeout: the upper bound of a per-try timeout (pools[].retry). */
  readonly headerTimeoutMs: number;
  /** Longest silence allowed from the client while its request body streams in or while it does not read the response. */
  readonly idleTimeoutMs: number;
}

/**
 * The client-side idle timeout. Node's `server.timeout` would keep an idle timer on every connection and refresh it
 * on every read and write; silence from the client only matters while its request body is arriving or while a
 * response waits for it to read, so the timer runs only then. Its expiry destroys the connection (node's default
 * for a socket timeout nobody handles), which closes the response and so aborts the upstream exchange.
 */
export function watchClient(res: ClientResponse, settings: ForwardSettings): void {
  if (res instanceof H2Response) watchStream(res.stream, settings.idleTimeoutMs);
  else res.socket?.setTimeout(settings.idleTimeoutMs);
}

export function unwatchClient(res: ClientResponse): void {
  if (res instanceof H2Response) res.stream?.setTimeout(0);
  else res.socket?.setTimeout(0);
}

/** An HTTP/2 stream's idle timer is the stream's own (the connection carries others): its expiry cancels the
 *  stream, which closes the response and so aborts the upstream exchange, as on HTTP/1.1. One listener each. */
const WATCHED = Symbol('veloflux.watched');
type WatchedStream = ServerHttp2Stream & { [WATCHED]?: true };
function onStreamTimeout(this: ServerHttp2Stream): void {
  cancelStream(this);
}
function watchStream(stream: WatchedStream | undefined, ms: number): void {
  if (stream === undefined || stream.destroyed) return;
  if (stream[WATCHED] === undefined) { stream[WATCHED] = true; stream.on('timeout', onStreamTimeout); }
  stream.setTimeout(ms);
}

export interface ForwardHooks {
  /** A backend failed in a way that says something about its health (refused, reset, timed out, invalid HTTP). */
  passive(target: Target, error: string): void;
  /** pools[].retry.hedge: a hedged try was sent for a request of this pool. */
  hedged?(pool: string): void;
  /** outlier_detection: a backend's answers tripped a detector (reason says which); the control side ejects. */
  outlier?(backendId: string, reason: string): void;
  /** A request finished: status sent to the client (499 when the client left first, 0 when the proxy had to cut
   *  the connection after a backend failed mid-response), attempts made. */
  done(pool: string, target: Target | undefined, status: number, attempts: number, startedAt: number): void;
  /** A gRPC call ended with this grpc-status (a backend's trailers or trailers-only answer, or the proxy's own). */
  grpc?(pool: string, status: string): void;
  /** The same request for the access log (access-log.ts): the client's request, body bytes sent, whether a
   *  hedged second try was made. Optional: called only where an access log is wired. */
  access?(req: ClientRequest, res: ClientResponse | undefined, pool: string, target: Target | undefined, status: number, attempts: number, startedAt: number, bytes: number, hedged: boolean): void;
}

/**
 * Shared counters for the retry budget: retries in flight <= max(min, percent of requests in flight). The budget
 * only limits retries onto the same level as the failed attempt, where a retry storm would pile onto backends
 * that share the failing one's fate. A rescue onto another level is where new requests go anyway once the level
 * is marked down, so it is never refused: when a primary stalls, every request in flight on it times out at once,
 * and each must be rescued (measured: a budget on rescues failed half of them).
 */
export class Budget {
  inflight = 0;
  retrying = 0;
  readonly #percent: number;
  /** Hedges the budget refused, waiting for a retry to end (first come, first served). */
  readonly #waiting = new Set<BudgetWaiter>();
  #waking = false;
  constructor(percent: number) {
    this.#percent = percent;
  }
  allows(): boolean {
    return this.retrying < Math.max(DEFAULTS.dataplane.retryBudgetMinConcurrent, (this.inflight * this.#percent) / 100);
  }

  /**
   * A hedge (pools[].retry) the budget refused waits for a slot instead of giving up: when a primary stalls,
   * every request on it reaches its per-try timeout within a few milliseconds, more than the budget's slots, and
   * a refused hedge would otherwise wait the whole header_timeout. The bound holds: a waiter starts only when a
   * retry has ended and allows() says yes.
   */
  wait(w: BudgetWaiter): void {
    this.#waiting.add(w);
  }

  unwait(w: BudgetWaiter): void {
    this.#waiting.delete(w);
  }

  /** A retry ended. Waiters are woken on the next turn, not inside the callback of the exchange that ended. */
  release(): void {
    this.retrying--;
    if (this.#waiting.size === 0 || this.#waking) return;
    this.#waking = true;
    setImmediate(Budget.#wake, this);
  }

  static #wake(this: void, b: Budget): void {
    b.#waking = false;
    for (const w of b.#waiting) {
      if (!b.allows()) return;
      b.#waiting.delete(w);
      w.budgetFreed();
    }
  }
}

/** An exchange whose hedge waits for the retry budget. */
export interface BudgetWaiter {
  budgetFreed(): void;
}

/**
 * The proxy's own answer. A gRPC client (content-type application/grpc*) gets a gRPC one (grpc.ts); `res.req` is
 * read only here, so the request's header object is only built on this path.
 */
export function sendError(res: ClientResponse, e: ErrorDef, message: string, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (isGrpc(res.req?.headers['content-type'] as string | undefined)) {
    sendGrpcError(res, grpcStatusOf(e), `${e.code}: ${message}`);
    return;
  }
  const body = errorBody(e, message);
  writeHead(res, e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

/**
 * A trailers-only gRPC answer: over HTTP/2 one HEADERS frame with END_STREAM (what grpc clients read as
 * trailers-only); over HTTP/1.1 (gRPC-Web) the same fields as headers of an empty 200. Once the response headers
 * are out, the status goes in the trailers instead.
 */
export function sendGrpcError(res: ClientResponse, status: number, message: string): void {
  const fields = grpcErrorHeaders(status, message);
  if (res instanceof H2Response) {
    const stream = res.stream;
    if (stream === undefined || stream.destroyed || stream.closed) return;
    if (!stream.headersSent) { stream.respond({ ':status': 200, ...fields }, { endStream: true }); return; }
    res.addTrailers({ 'grpc-status': fields['grpc-status'] as string, 'grpc-message': fields['grpc-message'] as string });
    res.end();
    return;
  }
  if (res.headersSent) { res.destroy(); return; }
  res.writeHead(200, { ...fields, 'content-length': 0 });
  res.end();
}

/** writeHead on either protocol's response (HTTP/2 has no reason phrase: `statusMessage` is for HTTP/1.1). */
function writeHead(res: ClientResponse, status: number, headers: OutgoingHttpHeaders | (string | string[])[], statusMessage?: string): void {
  if (res instanceof H2Response) res.writeHead(status, headers);
  else if (statusMessage) res.writeHead(status, statusMessage, headers as OutgoingHttpHeaders);
  else res.writeHead(status, headers as OutgoingHttpHeaders);
}

export interface RequestHead {
  /** Headers for the backend, name/value pairs flat: hop-by-hop removed, X-Forwarded-* set, Host kept. */
  readonly headers: string[];
  readonly host: string | undefined;
  /** Host header lines seen (more than one is a 400, RFC 9112 3.2). */
  readonly hostCount: number;
  readonly contentLength: string | undefined;
  readonly chunked: boolean;
  /** content-type application/grpc* (HTTP/2 requests only): the gRPC rescue rule applies (SPEC 8). */
  readonly grpc?: boolean;
}

/**
 * One pass over the raw request headers: what the backend gets, and what routing and body handling need. Reading
 * `rawHeaders` instead of `req.headers` spares node building the lower-cased header object on every request;
 * names are only lower-cased when their length is that of a header we look for.
 */
export function readRequestHead(req: IncomingMessage, proto: string, authority?: string): RequestHead {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let host: string | undefined;
  let hostCount = 0;
  let contentLength: string | undefined;
  let chunked = false;
  let xff: string | undefined;
  let extra: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const n = name.length;
    // Lengths of: te(2) host(4) expect(6) trailer/upgrade(7) connection/keep-alive(10) content-length(14)
    // x-forwarded-for(15) proxy-connection/x-forwarded-host(16) transfer-encoding/x-forwarded-proto(17)
    // proxy-authenticate(18) proxy-authorization(19).
    if (n === 2 || n === 4 || n === 6 || n === 7 || n === 10 || (n >= 14 && n <= 19)) {
      const lower = name.toLowerCase();
      if (lower === 'host') {
        hostCount++;
        if (host !== undefined) continue;
        host = value;
        // Absolute-form: the target's authority is the Host the backend gets (RFC 9112 3.2.2).
        if (authority !== undefined) { out.push(name, authority); continue; }
      }
      else if (lower === 'content-length') contentLength = value;
      else if (lower === 'transfer-encoding') { chunked = true; continue; }
      else if (lower === 'x-forwarded-for') { xff = xff === undefined ? value : `${xff}, ${value}`; continue; }
      else if (lower === 'x-forwarded-proto' || lower === 'x-forwarded-host') continue;
      else if (lower === 'connection') {
        // Headers named in Connection are hop-by-hop too (rare: only when it lists more than the usual).
        const v = value.toLowerCase();
        if (v !== 'keep-alive' && v !== 'close') for (const t of v.split(',')) (extra ??= new Set()).add(t.trim());
        continue;
      } else if (HOP.has(lower)) continue;
    }
    out.push(name, value);
  }
  if (extra !== undefined) {
    const kept: string[] = [];
    for (let i = 0; i < out.length; i += 2) if (!extra.has((out[i] as string).toLowerCase())) kept.push(out[i] as string, out[i + 1] as string);
    out.length = 0;
    out.push(...kept);
  }
  if (authority !== undefined) {
    if (host === undefined) out.push('host', authority);
    host = authority;
  }
  const client = req.socket.remoteAddress ?? '';
  out.push('x-forwarded-for', xff ? `${xff}, ${client}` : client, 'x-forwarded-proto', proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  return { headers: out, host, hostCount, contentLength, chunked };
}

/**
 * Response headers for the client, as the flat name/value list `writeHead` takes: hop-by-hop removed (node sets its
 * own framing and keep-alive), and an HTTP/2 backend's pseudo-headers (':status', as node:http2 reports them).
 */
export function downstreamHeaders(headers: Record<string, string | string[] | undefined>): (string | string[])[] {
  const out: (string | string[])[] = [];
  const conn = headers.connection;
  const extra = typeof conn === 'string' && conn !== 'keep-alive' && conn !== 'close'
    ? new Set(conn.toLowerCase().split(',').map((t) => t.trim())) : undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP.has(name) || extra?.has(name) || name.charCodeAt(0) === 58 /* : */) continue;
    out.push(name, value);
  }
  return out;
}

/**
 * The backend refused the request before processing it, so it may be sent elsewhere whatever its method
 * (RFC 9113 8.7): RST_STREAM REFUSED_STREAM, a GOAWAY that left it unprocessed, or HEADERS nghttp2 could not send
 * after a GOAWAY. H2Upstream (h2, h2c pools) says so with http2ErrorCode 7; undici (auto pools) fails such
 * requests with the GOAWAY's or the frame error's message, matched here.
 */
export function refused(err: Error & { code?: string; http2ErrorCode?: number }): boolean {
  if (err.http2ErrorCode === 7 /* REFUSED_STREAM */) return true;
  const m = err.message;
  return m.startsWith('HTTP/2: "GOAWAY" frame received') || m.startsWith('HTTP/2: "frameError" received - type 1,');
}

/**
 * The body of a gRPC request, as the upstream reads it: a stream of what came so far and the rest, or, on a replay of a
 * body that has all arrived, one Buffer. The first replayBufferBytes are kept, so a refused call can be sent again
 * with what already went out, followed by whatever is still to come.
 *
 * The first attempt waits for the body's end or one event-loop turn (Exchange.start), so a unary call, whose
 * message arrives with its HEADERS, goes upstream as one Buffer: no stream pipeline per call (ADR 0008).
 */
export class GrpcBody {
  readonly #req: ClientRequest;
  /** Everything received while no stream exists; afterwards, only the copy kept for a replay. */
  #chunks: Buffer[] = [];
  #size = 0;
  /** Everything sent so far is still kept (within replayBufferBytes), and no response header has arrived. */
  #replayable = true;
  #ended = false;
  #out: PassThrough | undefined;
  #waiting: { bodyEnded(): void } | undefined;

  constructor(req: ClientRequest) {
    this.#req = req;
    req.on('data', this.#onData);
    req.on('end', this.#onEnd);
  }

  #onData = (chunk: Buffer): void => {
    this.#size += chunk.length;
    if (this.#size > DEFAULTS.dataplane.replayBufferBytes) this.#replayable = false;
    const out = this.#out;
    if (out === undefined) { this.#chunks.push(chunk); return; }
    if (this.#replayable) this.#chunks.push(chunk);
    else if (this.#chunks.length > 0) this.#chunks = [];
    if (!out.destroyed && !out.write(chunk)) {
      this.#req.pause();
      out.once('drain', () => { if (out === this.#out) this.#req.resume(); });
    }
  };

  #onEnd = (): void => {
    this.#ended = true;
    this.#out?.end();
    const waiting = this.#waiting;
    if (waiting !== undefined) { this.#waiting = undefined; waiting.bodyEnded(); }
  };

  /** Tells `x` when the whole body has arrived (once). */
  onEnd(x: { bodyEnded(): void }): void {
    this.#waiting = x;
  }

  /** The whole body has arrived. */
  get ended(): boolean {
    return this.#ended;
  }

  /** What to send: the whole body when it has arrived, else a stream of what came so far and the rest. */
  body(): Buffer | PassThrough {
    if (this.#ended && this.#out === undefined) return this.#chunks.length === 1 ? this.#chunks[0] as Buffer : Buffer.concat(this.#chunks);
    const out = new PassThrough();
    // undici destroys a body it gives up on; nobody else reads its error.
    out.on('error', () => {});
    this.#out = out;
    for (const c of this.#chunks) out.write(c);
    if (!this.#replayable) this.#chunks = [];
    if (this.#ended) out.end();
    this.#req.resume();
    return out;
  }

  /** The backend answered: the call can no longer be replayed, so what was kept is let go (long streams). */
  answered(): void {
    this.#replayable = false;
    if (this.#out !== undefined) this.#chunks = [];
  }

  /** The exchange is over: the request stream no longer reaches this body (its listeners go, what was kept too). */
  release(): void {
    this.#req.off('data', this.#onData);
    this.#req.off('end', this.#onEnd);
    this.#chunks = [];
    this.#waiting = undefined;
  }

  /** The body again for another backend, or undefined when it cannot be (too much went out, or an answer came). */
  replay(): Buffer | PassThrough | undefined {
    if (!this.#replayable) return undefined;
    if (this.#ended) { this.#out = undefined; return this.body(); }
    return this.body();
  }
}

/** The exchange a response belongs to, for the one shared 'close' listener (no closure per request). */
const EXCHANGE = Symbol('veloflux.exchange');
/** What the 'close' listener hangs on: an HTTP/1.1 response, or an HTTP/2 response's stream itself. */
type TrackedEmitter = NodeJS.EventEmitter & { [EXCHANGE]?: Exchange };
type TrackedBody = Readable & { [EXCHANGE]?: Exchange };

/**
 * A try after the first one of a hedged or per-try-timed exchange (pools[].retry): its own dispatch handler, so
 * the exchange tells the callbacks of concurrent or abandoned tries apart. Allocated only when such a try starts;
 * the first try of every request is the exchange itself.
 */
interface Try {
  readonly target: Target;
  controller: Controller | undefined;
  sent: boolean;
  readonly startedAt: number;
  /** Still wanted: not failed, not cancelled (lost the race, cut by its per-try timeout, client gone). */
  live: boolean;
}

export class Exchange implements Dispatcher.DispatchHandler, Drainable, BudgetWaiter {
  readonly #req: ClientRequest;
  readonly #res: ClientResponse;
  readonly #plan: PoolPlan;
  readonly #settings: ForwardSettings;
  readonly #budget: Budget;
  readonly #hooks: ForwardHooks;
  #options: Dispatcher.DispatchOptions;
  readonly #startedAt: number;
  /** A gRPC request: rescued only when unsent or refused; its grpc-status is counted. */
  readonly #grpc: boolean;
  readonly #grpcBody: GrpcBody | undefined;
  /** grpc-status of a trailers-only answer (in the response headers). */
  #grpcStatus: string | undefined;
  readonly #firstLevel: number;
  /** Whether the request body can be sent again (none, or kept in memory). */
  readonly #replayable: boolean;
  #target: Target;
  #tried: Set<Target> | undefined;
  #attempts = 0;
  /** Response body bytes sent to the client (the access log's `bytes`). */
  #bytes = 0;
  #sent = false;
  #controller: Controller | undefined;
  /** The client is not reading: the upstream is paused until the response drains. */
  #stalled = false;
  #retrying = false;
  #finished = false;
  /** The client left, or its request body failed: whatever fails from here on is not the backend's doing. */
  #clientGone = false;
  // pools[].retry. The exchange itself is the handler of the first try ("main"); later tries are Try objects.
  #timer: NodeJS.Timeout | undefined;
  #tries: Try[] | undefined;
  /** The main try still counts (not failed, not cancelled). */
  #mainLive = true;
  /** Whose response goes to the client: undefined until a head arrives, null for main, else that try. */
  #owner: Try | null | undefined;
  #hedged = false;
  /** A gRPC call's first attempt waited one turn for its body (start). */
  #deferred = false;
  /** A hedge the retry budget refused waits in Budget.wait. */
  #waitingBudget = false;
  /** The target of main once later tries exist (#target then follows whichever try owns or failed last). */
  #mainTarget!: Target;
  /** Times the exchange itself dispatched (main): the first one started at #startedAt. */
  #mainStarts = 0;

  /** The client's gRPC deadline (grpc-timeout), when it set one. */
  #deadline: NodeJS.Timeout | undefined;
  /** The set of open exchanges a drain walks (drain.ts), for HTTP/2 streams; HTTP/1.1 requests are not tracked. */
  #tracker: Set<Drainable> | undefined;

  /** `body`: none, a replayable one in memory, or the request itself, whose body streams. */
  constructor(req: ClientRequest, res: ClientResponse, plan: PoolPlan, first: Target, body: Buffer | ClientRequest | null, headers: string[], settings: ForwardSettings, budget: Budget, hooks: ForwardHooks, grpc = false) {
    this.#req = req;
    this.#grpc = grpc;
    this.#res = res;
    this.#plan = plan;
    this.#settings = settings;
    this.#budget = budget;
    this.#hooks = hooks;
    this.#target = first;
    this.#firstLevel = first.backend.level;
    this.#startedAt = performance.now();
    this.#replayable = body === null || Buffer.isBuffer(body);
    this.#grpcBody = grpc && body !== null && !this.#replayable ? new GrpcBody(req) : undefined;
    this.#options = {
      path: req.url as string,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      // gRPC: set when the first attempt starts. An HTTP/2 stream's body goes to undici through a Readable of its
      // own (H2Request.body): undici destroys the body it read, and the stream carries the response too.
      body: this.#grpcBody !== undefined ? null : body instanceof H2Request ? body.body() : body,
      // header_timeout and idle_timeout are the pools' own defaults (dispatchers.ts): not repeated per request.
    };
    budget.inflight++;
    // On the stream itself for HTTP/2 (H2Response.on would bind the listener to the response): #detach can then
    // cut the one link from the client's side to this exchange.
    const closer = Exchange.#closer(res);
    closer[EXCHANGE] = this;
    closer.on('close', Exchange.#onResponseClose);
    // A streamed request body: the client must keep sending (a replayable body has arrived already). Its failure
    // (reset, a malformed chunk, an abandoned upload) is the client's: note it before undici, which reads the same
    // stream, reports it as an upstream error. Listeners added here run before undici's.
    if (body !== null && !this.#replayable) {
      const stream: Readable = req instanceof H2Request ? req.stream : req;
      (stream as TrackedBody)[EXCHANGE] = this;
      stream.on('error', Exchange.#onRequestError);
      stream.on('aborted', Exchange.#onRequestError);
      watchClient(res, settings);
      req.once('end', () => { if (!this.#stalled) unwatchClient(res); });
    }
  }

  /** Shared by every streamed request body: the client's upload failed. */
  static #onRequestError = function (this: TrackedBody): void {
    const exchange = this[EXCHANGE];
    if (exchange !== undefined) exchange.#clientGone = true;
  };

  /** Shared by every response: 'close' before the exchange finished means the client went away. */
  static #onResponseClose = function (this: TrackedEmitter): void {
    const exchange = this[EXCHANGE];
    if (exchange !== undefined) exchange.#onClientClose();
  };

  /**
   * The client's grpc-timeout: when it expires before the response is complete, the client is answered
   * DEADLINE_EXCEEDED (in the trailers when the response has started) and the upstream exchange is aborted. The
   * client chose the deadline, so its expiry counts against nobody (SPEC 2) and is not retried.
   */
  deadline(ms: number): this {
    this.#deadline = setTimeout(() => {
      if (this.#finished) return;
      const message = `${ERRORS.DEADLINE_EXCEEDED.code}: the client's grpc-timeout expired after ${ms}ms (pool "${this.#plan.name}")`;
      sendGrpcError(this.#res, grpcStatusOf(ERRORS.DEADLINE_EXCEEDED), message);
      this.#hooks.grpc?.(this.#plan.name, String(grpcStatusOf(ERRORS.DEADLINE_EXCEEDED)));
      // Counted and logged as 499, a client that stopped waiting: the client chose the deadline, so its expiry
      // must not read as the backend's 5xx to the ramp gate (failover.ramp_gate) or to anyone else.
      this.#finish(CLIENT_CLOSED);
      this.#abortAll('grpc-timeout expired');
    }, ms);
    return this;
  }

  /** Joins the open exchanges a failover drain may close (drain.ts); leaves the set when finished. */
  track(set: Set<Drainable>): this {
    this.#tracker = set;
    set.add(this);
    return this;
  }

  get poolName(): string {
    return this.#plan.name;
  }

  get level(): number {
    return this.#target.backend.level;
  }

  /** failover.drain_timeout passed since this stream's level lost its traffic: close it, at nobody's fault. */
  drain(): void {
    if (this.#finished) return;
    const res = this.#res;
    const message = `${ERRORS.DRAINED.code}: level ${this.level} of pool "${this.#plan.name}" no longer takes traffic; reconnect`;
    if (isGrpc(res.req?.headers['content-type'] as string | undefined)) sendGrpcError(res, grpcStatusOf(ERRORS.DRAINED), message);
    else if (res instanceof H2Response) cancelStream(res.stream);
    else res.destroy();
    this.#finish(ERRORS.DRAINED.status);
    this.#abortAll('drained');
  }

  /** The proxy ended the exchange itself (deadline, drain): every try still running is aborted, at nobody's fault. */
  #abortAll(why: string): void {
    abortSoon(this.#controller, new ClientGone(why));
    if (this.#tries !== undefined) this.#cancelOthers(undefined);
  }

  /** An idempotent request whose body (if any) is kept: it may be sent again, after it was sent once (never a gRPC call: SPEC 8). */
  get #mayRetry(): boolean {
    return this.#replayable && !this.#grpc && IDEMPOTENT.has(this.#req.method ?? '');
  }

  start(): void {
    if (this.#grpcBody !== undefined && this.#attempts === 0) {
      // A unary call's message usually arrives with its HEADERS, in the same read: the attempt waits for the end of
      // the body (which then goes to undici as one Buffer: no stream pipeline per call) or one turn of the event
      // loop (then it streams), whichever comes first (ADR 0008).
      if (!this.#deferred && !this.#grpcBody.ended) {
        this.#deferred = true;
        this.#grpcBody.onEnd(this);
        setImmediate(Exchange.#startDeferred, this);
        return;
      }
      this.#options = { ...this.#options, body: this.#grpcBody.body() };
    }
    this.#attempts++;
    this.#mainStarts++;
    this.#sent = false;
    this.#controller = undefined;
    this.#armPerTry();
    try {
      this.#target.dispatcher.dispatch(this.#options, this);
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  /**
   * pools[].retry: after per_try_timeout without a response head, the next try starts on the next candidate
   * (hedge: the first one keeps running and the first answer wins; else the first one is cut). Once per request,
   * idempotent replayable requests only, within the retry budget.
   */
  #armPerTry(): void {
    const retry = this.#plan.retry;
    if (retry === undefined || this.#hedged || !this.#mayRetry) return;
    const ms = retry.perTryTimeoutMs === 'auto' ? (this.#target.latency?.timeoutMs ?? this.#settings.headerTimeoutMs) : retry.perTryTimeoutMs;
    if (ms >= this.#settings.headerTimeoutMs) return; // header_timeout comes first: rescue handles it.
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(Exchange.#onPerTry, ms, this);
  }

  /** The first attempt of a gRPC call whose body had not all arrived: its end came, or a turn passed (start). */
  static #startDeferred(this: void, ex: Exchange): void {
    if (!ex.#finished && ex.#attempts === 0) ex.start();
  }

  /** GrpcBody: the whole body arrived while the first attempt waited for it. */
  bodyEnded(): void {
    Exchange.#startDeferred(this);
  }

  static #onPerTry(this: void, ex: Exchange): void {
    ex.#timer = undefined;
    ex.#perTryExpired();
  }

  #perTryExpired(): void {
    if (this.#finished || this.#owner !== undefined || this.#hedged) return;
    const retry = this.#plan.retry;
    if (retry === undefined) return;
    // No response head within the per-try timeout: a gateway error for outlier detection (Envoy counts a per-try
    // timeout the same way), so a backend that stalls is ejected after a few requests rather than when header
    // timeouts or probes catch up. A client cannot cause it: a client that left has finished the exchange.
    this.#target.outlier?.failed('no response within per_try_timeout');
    this.#hedge();
  }

  /** The budget has a slot again for the hedge it refused (Budget.wait). */
  budgetFreed(): void {
    this.#waitingBudget = false;
    if (this.#finished || this.#owner !== undefined || this.#hedged || !this.#mainLive) return;
    this.#hedge();
  }

  /** The next try after a per-try timeout, when there is a candidate and the retry budget allows (else it waits). */
  #hedge(): void {
    const retry = this.#plan.retry;
    if (retry === undefined) return;
    const tried = (this.#tried ??= new Set());
    tried.add(this.#target);
    for (const t of this.#tries ?? []) tried.add(t.target);
    const next = this.#plan.next(this.#firstLevel, tried);
    if (next === undefined) return;
    // A hedge is a retry: the budget bounds it even across levels, so a slow pool cannot double its own load.
    if (!this.#budget.allows()) {
      this.#waitingBudget = true;
      this.#budget.wait(this);
      return;
    }
    this.#hedged = true;
    if (!this.#retrying) { this.#retrying = true; this.#budget.retrying++; }
    if (retry.hedge) this.#hooks.hedged?.(this.#plan.name);
    else this.#cancelOthers(undefined);
    this.#startTry(next);
  }

  /** A try after main (hedge, per-try retry, or any retry once such a try exists). */
  #startTry(target: Target): void {
    if (this.#tries === undefined) this.#mainTarget = this.#target;
    this.#attempts++;
    const t: Try = { target, controller: undefined, sent: false, startedAt: performance.now(), live: true };
    (this.#tries ??= []).push(t);
    const ex = this;
    // The handler of one try: plain functions over the exchange (created only for these tries).
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) { ex.#tryRequestStart(t, c); },
      onResponseStart(c, status, headers, message) { ex.#tryResponseStart(t, c, status, headers, message); },
      onResponseData(c, chunk) { if (ex.#owner === t && !ex.#finished) ex.#data(c, chunk); },
      onResponseEnd(_c, trailers) { if (ex.#owner === t) ex.#endOwned(trailers); },
      onResponseError(_c, err) { ex.#tryError(t, err); },
    };
    try {
      target.dispatcher.dispatch(this.#options, handler);
    } catch (err) {
      this.#tryError(t, err as Error);
    }
  }

  #tryRequestStart(t: Try, c: Controller): void {
    t.sent = true;
    t.controller = c;
    if (this.#finished || !t.live || (this.#owner !== undefined && this.#owner !== t)) c.abort(new ClientGone('try no longer wanted'));
  }

  #tryResponseStart(t: Try, c: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    t.target.outlier?.answered(statusCode);
    t.target.latency?.observe(performance.now() - t.startedAt);
    if (this.#finished || !t.live || this.#owner !== undefined) { c.abort(new ClientGone('try lost')); return; }
    this.#owner = t;
    this.#target = t.target;
    this.#cancelOthers(t);
    this.#head(c, statusCode, headers, statusMessage);
  }

  #tryError(t: Try, err: Error): void {
    if (!t.live || this.#finished) return; // cancelled by us: its abort says nothing about the backend
    if (this.#owner === t) { this.#fail(err, t.sent); return; }
    t.live = false;
    this.#failedTry(t.target, err, t.sent);
  }

  /** Cancels every try except `keep` (undefined: all of them, main included). */
  #cancelOthers(keep: Try | null | undefined): void {
    if (this.#timer !== undefined) { clearTimeout(this.#timer); this.#timer = undefined; }
    if (keep !== null && this.#mainLive) {
      this.#mainLive = false;
      abortSoon(this.#controller, new ClientGone('try cancelled'));
    }
    for (const t of this.#tries ?? []) {
      if (t === keep || !t.live) continue;
      t.live = false;
      abortSoon(t.controller, new ClientGone('try cancelled'));
    }
  }

  #anyLive(): boolean {
    if (this.#mainLive) return true;
    for (const t of this.#tries ?? []) if (t.live) return true;
    return false;
  }

  /**
   * A try that does not own the response failed. While another try runs, its failure only counts against its
   * backend; when it was the last one, the usual rescue decides (fault, retry rules, answer).
   */
  #failedTry(target: Target, err: Error, sent: boolean): void {
    const fault = faultOf(err as Error & { code?: string }, this.#clientGone);
    if (fault.side === 'backend' && this.#anyLive()) {
      const code = (err as { code?: string }).code ?? err.message;
      this.#hooks.passive(target, code);
      target.outlier?.failed(code);
      return;
    }
    this.#target = target;
    this.#fail(err, sent);
  }

  #onClientClose(): void {
    if (this.#finished) return;
    // The client went away before the response was complete: stop the upstream exchange too. Marked first, so
    // the abort's own error (delivered synchronously) is taken for what it is.
    this.#clientGone = true;
    this.#finish(CLIENT_CLOSED);
    abortSoon(this.#controller, new ClientGone());
    if (this.#tries !== undefined) this.#cancelOthers(undefined);
  }

  onRequestStart(controller: Controller): void {
    this.#sent = true;
    this.#controller = controller;
    if (this.#finished || !this.#mainLive) controller.abort(new ClientGone());
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    // What the backend answered counts for outlier detection whether or not the client is still there to read it,
    // and per_try_timeout auto learns from it (the first dispatch's start is the request's).
    const main = this.#tries === undefined ? this.#target : this.#mainTarget;
    main.outlier?.answered(statusCode);
    if (this.#mainStarts === 1) main.latency?.observe(performance.now() - this.#startedAt);
    if (this.#finished) return;
    if (this.#timer !== undefined || this.#tries !== undefined) {
      if (!this.#mainLive || this.#owner !== undefined) { controller.abort(new ClientGone('try lost')); return; }
      this.#owner = null;
      this.#target = main;
      this.#cancelOthers(null);
    }
    this.#head(controller, statusCode, headers, statusMessage);
  }

  #head(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    const res = this.#res;
    if (this.#grpc) { const g = headers['grpc-status']; if (typeof g === 'string') this.#grpcStatus = g; this.#grpcBody?.answered(); }
    // Over HTTP/2 the stream waits for trailers only when some can come (h2-stream.ts).
    if (res instanceof H2Response && (this.#grpc || headers.trailer !== undefined || isGrpc(headers['content-type'] as string | undefined))) res.expectTrailers();
    writeHead(res, statusCode, downstreamHeaders(headers), statusMessage);
    this.#controller = controller;
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#finished || !this.#mainLive) return;
    this.#data(controller, chunk);
  }

  #data(controller: Controller, chunk: Buffer): void {
    const res = this.#res;
    this.#bytes += chunk.length;
    if (!(res as ServerResponse).write(chunk)) { // (either protocol's write(Buffer): the union's overloads do not unify)
      controller.pause();
      this.#stalled = true;
      watchClient(res, this.#settings);
      res.once('drain', () => {
        this.#stalled = false;
        unwatchClient(res);
        controller.resume();
      });
    }
  }

  onResponseEnd(_controller: Controller, trailers: Record<string, string | string[] | undefined>): void {
    if (this.#finished || !this.#mainLive) return;
    this.#endOwned(trailers);
  }

  /** The response of the try that owns it ended (main or a later try). */
  #endOwned(trailers: Record<string, string | string[] | undefined>): void {
    if (this.#finished) return;
    // The backend's trailers (gRPC's grpc-status, grpc-message) go on as trailers: on HTTP/2 a trailing HEADERS
    // frame, on HTTP/1.1 the chunked trailer section (node drops them from a response with a content-length).
    for (const _ in trailers) { this.#res.addTrailers(trailers as Record<string, string>); break; }
    if (this.#grpc) {
      const g = trailers['grpc-status'];
      const status = typeof g === 'string' ? g : this.#grpcStatus;
      if (status !== undefined) this.#hooks.grpc?.(this.#plan.name, status);
    }
    this.#res.end();
    this.#finish(this.#res.statusCode);
    this.#release();
  }

  /**
   * The upstream exchange is complete: let go of the controller (it holds undici's request and the backend's raw
   * header buffers). What the client's side still references is cut in #finish.
   */
  #release(): void {
    this.#controller = undefined;
  }

  /**
   * A finished exchange is cut from the client's request and response. They stay reachable until the client's
   * connection has taken its last bytes, and a closed HTTP/2 stream stays reachable even longer: node's native stream
   * handle keeps it through every young-generation GC until the next full one. Whatever hangs on it is therefore
   * promoted to the old generation. (Heap snapshots showed a gRPC call's request head and body kept that way through
   * GrpcBody's listeners; cutting them changed the promoted share per call only a little.)
   */
  #detach(): void {
    const closer = Exchange.#closer(this.#res);
    closer[EXCHANGE] = undefined;
    const req = this.#req;
    const body = (req instanceof H2Request ? req.stream : req) as TrackedBody;
    if (body !== closer) body[EXCHANGE] = undefined;
    this.#grpcBody?.release();
  }

  static #closer(res: ClientResponse): TrackedEmitter {
    return res instanceof H2Response ? res.stream : res;
  }

  onResponseError(_controller: Controller, err: Error): void {
    if (!this.#mainLive) return; // cancelled (lost a race, cut by its per-try timeout): not the backend's doing
    if (this.#tries !== undefined && this.#owner === undefined) {
      this.#mainLive = false;
      this.#failedTry(this.#mainTarget, err, this.#sent);
      return;
    }
    this.#fail(err, this.#sent);
  }

  #fail(err: Error, sent = this.#sent): void {
    if (this.#finished) return;
    // The rescue below decides what comes next; a hedge still waiting for the budget is no longer wanted.
    if (this.#waitingBudget) { this.#waitingBudget = false; this.#budget.unwait(this); }
    const fault = faultOf(err as Error & { code?: string }, this.#clientGone);
    const res = this.#res;
    if (fault.side === 'client') {
      // Nobody is left to answer; nothing counts against the backend, nothing is retried.
      res.destroy();
      this.#finish(CLIENT_CLOSED);
      return;
    }
    const passive = fault.side === 'backend';
    if (passive) {
      const code = (err as { code?: string }).code ?? err.message;
      this.#hooks.passive(this.#target, code);
      this.#target.outlier?.failed(code);
    }
    if (res.headersSent) {
      // Part of the response is out: the only honest thing left is to cut the client connection.
      res.destroy();
      this.#finish(0);
      return;
    }
    const canTry = passive && this.#attempts < this.#settings.maxAttempts;
    let again = !sent || this.#mayRetry;
    if (canTry && !again && this.#grpc && refused(err)) {
      // Refused before any answer (RFC 9113 8.7): safe to send elsewhere, with the body so far (GrpcBody).
      if (this.#grpcBody === undefined) again = true;
      else {
        const body = this.#grpcBody.replay();
        if (body !== undefined) { this.#options = { ...this.#options, body }; again = true; }
      }
    }
    if (canTry && again) {
      const tried = (this.#tried ??= new Set());
      tried.add(this.#target);
      for (const t of this.#tries ?? []) tried.add(t.target);
      const next = this.#plan.next(this.#firstLevel, tried);
      if (next !== undefined && (next.backend.level !== this.#target.backend.level || this.#budget.allows())) {
        if (!this.#retrying) { this.#retrying = true; this.#budget.retrying++; }
        this.#target = next;
        // Once later tries exist, the exchange is no longer a free handler: a retry is a try of its own.
        if (this.#tries !== undefined) { this.#owner = undefined; this.#startTry(next); } else this.start();
        return;
      }
    }
    sendError(res, fault.error, `${fault.error.summary} (pool "${this.#plan.name}", ${this.#attempts} attempt${this.#attempts === 1 ? '' : 's'})`);
    if (this.#grpc) this.#hooks.grpc?.(this.#plan.name, String(grpcStatusOf(fault.error)));
    this.#finish(fault.status);
  }

  #finish(status: number): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#timer !== undefined) { clearTimeout(this.#timer); this.#timer = undefined; }
    if (this.#deadline !== undefined) clearTimeout(this.#deadline);
    if (this.#tries !== undefined) this.#cancelOthers(this.#owner);
    this.#tracker?.delete(this);
    this.#detach();
    if (this.#waitingBudget) { this.#waitingBudget = false; this.#budget.unwait(this); }
    this.#budget.inflight--;
    if (this.#retrying) this.#budget.release();
    // The 'close' listener stays: the response is done with, and #finished makes a late call a no-op.
    this.#hooks.done(this.#plan.name, this.#target, status, this.#attempts, this.#startedAt);
    // An error the proxy answered itself (sendError) has no upstream body: its bytes are its content-length.
    // hedged: a second try was sent while the first kept running (pools[].retry.hedge), as counted in
    // veloflux_hedged_requests_total; a per-try timeout without hedge cuts the first try, which is not a hedge.
    this.#hooks.access?.(this.#req, this.#res, this.#plan.name, this.#target, status, this.#attempts, this.#startedAt, this.#bytes > 0 || status === CLIENT_CLOSED ? this.#bytes : Number(this.#res.getHeader('content-length') ?? 0), this.#hedged && this.#plan.retry?.hedge === true);
  }
}
