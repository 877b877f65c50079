// HTTP/2 to backends (pool protocol h2c, and h2 over TLS) on node:http2 itself, behind the dispatch contract the
// forwarding code speaks (forward.ts: `dispatch(options, handler)`, a controller per request). undici's HTTP/2
// client wraps node:http2 in request objects, header conversions and listeners of its own; the same forwarding
// written on node:http2 directly serves about 7% more gRPC unary calls per core (ADR 0011).
//
// What the forwarding rules read, and where it comes from here:
//
//   handler callback   | when                                                  | forward.ts decides with it
//   -------------------+-------------------------------------------------------+---------------------------------
//   onRequestStart     | the connection is up and the stream is about to open  | sent (unsent requests may be
//                      | (never for a request whose connection failed)         | retried whatever their method)
//   onResponseStart    | the final response HEADERS (1xx are not passed on)    | the response; grpc-status
//   onResponseData     | each DATA chunk (controller.pause/resume: flow control)|
//   onResponseEnd      | END_STREAM, with the trailers if any                  |
//   onResponseError    | one error, once, with a code fault.ts classifies:     | whose fault, retry or rescue
//
//   what happened                               | error code                     | http2ErrorCode
//   --------------------------------------------+--------------------------------+----------------
//   TCP/TLS connect failed                      | the socket's (ECONNREFUSED...) |
//   no connection within connect_timeout        | UND_ERR_CONNECT_TIMEOUT        |
//   TLS agreed on something else than h2 (ALPN) | VF_UPSTREAM_NO_H2              |
//   no response HEADERS within header_timeout   | UND_ERR_HEADERS_TIMEOUT        |
//   response body silent for idle_timeout       | UND_ERR_BODY_TIMEOUT           |
//   RST_STREAM REFUSED_STREAM, or a GOAWAY that | VF_UPSTREAM_REFUSED            | 7 (refused, RFC 9113 8.7)
//   left the stream unprocessed                 |                                |
//   any other RST_STREAM                        | VF_UPSTREAM_RESET              | the frame's code
//   the connection failed or closed mid-stream  | the session's error, else      |
//                                               | UND_ERR_SOCKET                 |
//   Upgrade (WebSocket) to an HTTP/2 backend    | UND_ERR_NOT_SUPPORTED          |
//   request headers HTTP/2 cannot carry         | UND_ERR_INVALID_ARG (client's) |
//
// Connections: a request goes on the first connection with a free stream slot (min of h2MaxConcurrentStreams and
// the backend's SETTINGS_MAX_CONCURRENT_STREAMS); when all are busy, another one opens. A connection idle for
// keepAliveMs closes. A GOAWAY takes a connection out of use at once: requests still waiting for it go on another
// connection (once), streams above its last stream id fail refused.
import { connect as h2connect, constants as h2c } from 'node:http2';
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders, IncomingHttpStatusHeader } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** What a pool's backend connection does for the forwarding code: undici's Pool or an H2Upstream. */
export interface Upstream {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** The connection to an h2 backend did not agree on HTTP/2 by ALPN. A backend fault (fault.ts: PROTOCOL). */
export class NoH2Error extends Error {
  readonly code = 'VF_UPSTREAM_NO_H2';
  constructor(alpn: string | false) {
    super(`the backend did not select h2 by ALPN (got ${alpn === false || alpn === '' ? 'none' : alpn})`);
  }
}

/** An upstream HTTP/2 failure with the code fault.ts classifies it by (see the table above). */
export class UpstreamError extends Error {
  readonly code: string;
  readonly http2ErrorCode: number | undefined;
  constructor(code: string, message: string, http2ErrorCode?: number) {
    super(message);
    this.code = code;
    this.http2ErrorCode = http2ErrorCode;
  }
}

export interface H2UpstreamOptions {
  /** http://host:port (h2c, prior knowledge) or https://host:port (TLS, ALPN h2). */
  readonly origin: string;
  /** TLS settings of an https:// origin (CA, server name, verification): ALPN is set here. */
  readonly tls?: ConnectionOptions;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepAliveMs: number;
  readonly maxConcurrentStreams: number;
}

/** RST_STREAM and GOAWAY error codes by number (RFC 9113 7), for messages. */
const NAMES = ['NO_ERROR', 'PROTOCOL_ERROR', 'INTERNAL_ERROR', 'FLOW_CONTROL_ERROR', 'SETTINGS_TIMEOUT', 'STREAM_CLOSED', 'FRAME_SIZE_ERROR',
  'REFUSED_STREAM', 'CANCEL', 'COMPRESSION_ERROR', 'CONNECT_ERROR', 'ENHANCE_YOUR_CALM', 'INADEQUATE_SECURITY', 'HTTP_1_1_REQUIRED'];

const NO_CONTEXT = Object.freeze({});
const NO_TRAILERS = Object.freeze({}) as Record<string, string | string[] | undefined>;
const CALL = Symbol('veloflux.call');
type Stream = ClientHttp2Stream & { [CALL]?: Call };

/** One connection and what waits for it. */
interface Conn {
  readonly session: ClientHttp2Session;
  /** Streams open (started, not yet closed). */
  active: number;
  ready: boolean;
  /** GOAWAY received, closing or closed: no new stream goes on it. */
  gone: boolean;
  /** The last stream id a GOAWAY said the backend processed (streams above it were not). */
  goawayLast: number;
  error: Error | undefined;
  /** Requests waiting for the connection to come up. */
  readonly queue: Call[];
  connectTimer: NodeJS.Timeout | undefined;
}

/** One request: its own controller (what forward.ts pauses, resumes and aborts). */
class Call implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  readonly options: Dispatcher.DispatchOptions;
  readonly handler: Dispatcher.DispatchHandler;
  readonly up: H2Upstream;
  stream: Stream | undefined = undefined;
  conn: Conn | undefined = undefined;
  /** No callback after this one: ended, failed or aborted. */
  done = false;
  responded = false;
  /** Times it was moved to another connection before it started (a GOAWAY on the one it waited for). */
  moved = 0;
  error: Error | undefined = undefined;
  trailers: Record<string, string | string[] | undefined> | undefined = undefined;

  constructor(up: H2Upstream, options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
    this.up = up;
    this.options = options;
    this.handler = handler;
  }

  abort(reason: Error): void {
    if (this.done) return;
    this.aborted = true;
    this.reason = reason;
    const s = this.stream;
    if (s !== undefined && !s.closed && !s.destroyed) s.close(h2c.NGHTTP2_CANCEL);
    this.fail(reason);
  }

  pause(): void {
    this.paused = true;
    const s = this.stream;
    if (s === undefined) return;
    s.pause();
    // Silence while the client does not read is not the backend's (forward.ts watches the client meanwhile).
    s.setTimeout(0);
  }

  resume(): void {
    this.paused = false;
    const s = this.stream;
    if (s === undefined) return;
    s.setTimeout(this.up.bodyTimeoutMs);
    s.resume();
  }

  fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    const body = this.options.body;
    // As undici does: a request body nobody will read again is destroyed (forward.ts sends a fresh one on a retry).
    if (body !== null && body !== undefined && typeof (body as Readable).pipe === 'function' && !(body as Readable).readableEnded) (body as Readable).destroy();
    this.handler.onResponseError?.(this, err);
  }
}

export class H2Upstream implements Upstream {
  readonly #o: H2UpstreamOptions;
  readonly #conns: Conn[] = [];
  readonly #scheme: string;
  readonly #authority: string;
  readonly #protocol: string;
  #closed = false;
  readonly bodyTimeoutMs: number;

  constructor(o: H2UpstreamOptions) {
    this.#o = o;
    const u = new URL(o.origin);
    this.#scheme = u.protocol === 'https:' ? 'https' : 'http';
    this.#authority = u.host;
    this.#protocol = o.tls === undefined ? 'h2c' : 'h2';
    this.bodyTimeoutMs = o.bodyTimeoutMs;
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const call = new Call(this, options, handler);
    if (this.#closed) { call.fail(new UpstreamError('UND_ERR_CLOSED', 'the backend connection pool is closed (configuration changed)')); return false; }
    if (options.upgrade) { call.fail(new UpstreamError('UND_ERR_NOT_SUPPORTED', `pool protocol ${this.#protocol} speaks HTTP/2 to its backends, where an Upgrade (WebSocket) cannot go; route it to a pool with protocol http1`)); return false; }
    this.#place(call);
    return true;
  }

  /** Puts a request on a connection with a free slot, opening one when none has. */
  #place(call: Call): void {
    for (const c of this.#conns) {
      if (c.gone || c.active + c.queue.length >= this.#limit(c)) continue;
      if (c.ready) this.#start(call, c);
      else c.queue.push(call);
      return;
    }
    const c = this.#open();
    c.queue.push(call);
  }

  #limit(c: Conn): number {
    const remote = c.ready ? c.session.remoteSettings.maxConcurrentStreams : undefined;
    return remote === undefined ? this.#o.maxConcurrentStreams : Math.min(remote, this.#o.maxConcurrentStreams);
  }

  #open(): Conn {
    const o = this.#o;
    const tls = o.tls;
    let socket: TLSSocket | undefined;
    const session = tls === undefined ? h2connect(o.origin, { settings: { enablePush: false } }) : h2connect(o.origin, {
      settings: { enablePush: false },
      createConnection: () => {
        const u = new URL(o.origin);
        socket = tlsConnect({ ...tls, host: u.hostname, port: Number(u.port || 443), ALPNProtocols: ['h2', 'http/1.1'] });
        return socket;
      },
    });
    const c: Conn = { session, active: 0, ready: false, gone: false, goawayLast: -1, error: undefined, queue: [], connectTimer: undefined };
    this.#conns.push(c);
    c.connectTimer = setTimeout(() => {
      c.connectTimer = undefined;
      if (c.ready) return;
      c.error = new UpstreamError('UND_ERR_CONNECT_TIMEOUT', `no connection to the backend within ${o.connectTimeoutMs}ms`);
      session.destroy();
    }, o.connectTimeoutMs);
    session.on('connect', () => {
      if (c.connectTimer !== undefined) { clearTimeout(c.connectTimer); c.connectTimer = undefined; }
      // A backend that picked anything but h2 fails the connection. (Checked here, once node has taken the socket:
      // destroying it on 'secureConnect', before node's own listener, crashes node's HTTP/2 setup.)
      if (socket !== undefined && socket.alpnProtocol !== 'h2') {
        c.error = new NoH2Error(socket.alpnProtocol ?? false);
        session.destroy();
        return;
      }
      c.ready = true;
      this.#drain(c);
    });
    session.on('remoteSettings', () => { this.#drain(c); });
    session.on('error', (err: Error) => { c.error ??= err; });
    session.on('goaway', (_code: number, lastStreamID: number) => {
      c.gone = true;
      c.goawayLast = lastStreamID;
      this.#retire(c);
    });
    session.on('close', () => {
      c.gone = true;
      if (c.connectTimer !== undefined) { clearTimeout(c.connectTimer); c.connectTimer = undefined; }
      this.#retire(c);
    });
    // An idle connection closes; node refreshes this timer on every frame.
    session.setTimeout(o.keepAliveMs, () => { if (c.active === 0 && c.queue.length === 0) session.close(); });
    session.unref();
    return c;
  }

  /** A connection out of use: its waiting requests go elsewhere (a GOAWAY) or fail with its error. */
  #retire(c: Conn): void {
    const i = this.#conns.indexOf(c);
    if (i >= 0) this.#conns.splice(i, 1);
    const waiting = c.queue.splice(0);
    for (const call of waiting) {
      if (call.done) continue;
      if (c.error === undefined && c.ready && call.moved === 0 && !this.#closed) { call.moved++; this.#place(call); continue; }
      call.fail(c.error ?? (c.ready
        ? new UpstreamError('VF_UPSTREAM_REFUSED', 'HTTP/2: the backend sent GOAWAY before the request was sent', h2c.NGHTTP2_REFUSED_STREAM)
        : new UpstreamError('UND_ERR_SOCKET', 'the backend closed the connection before it was ready')));
    }
  }

  /** Starts waiting requests while the connection has slots. */
  #drain(c: Conn): void {
    if (!c.ready || c.gone) return;
    const limit = this.#limit(c);
    while (c.queue.length > 0 && c.active < limit) {
      const call = c.queue.shift() as Call;
      if (!call.done) this.#start(call, c);
    }
  }

  #start(call: Call, c: Conn): void {
    const session = c.session;
    if (session.closed || session.destroyed) { c.gone = true; this.#retire(c); this.#place(call); return; }
    call.conn = c;
    c.active++;
    call.handler.onRequestStart?.(call, NO_CONTEXT);
    if (call.done) { c.active--; return; }
    const o = call.options;
    const body = o.body;
    const endStream = body === null || body === undefined;
    let stream: Stream;
    try {
      stream = session.request(this.#headers(o), { endStream }) as Stream;
    } catch (err) {
      c.active--;
      const code = (err as { code?: string }).code;
      if (code === 'ERR_HTTP2_INVALID_SESSION' || code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_OUT_OF_STREAMS') {
        // The connection can take no more streams: another one may (once), else the backend's connection failed.
        c.gone = true;
        this.#retire(c);
        if (call.moved++ === 0) this.#place(call);
        else call.fail(new UpstreamError('UND_ERR_SOCKET', `the backend connection could not open a stream (${code})`));
        return;
      }
      // Anything else node refuses here is built from the client's request (two values of a single-value header
      // such as Content-Type or Authorization, a connection-specific header): the client's 400, never the
      // backend's failure. Node's messages name the header, not its value.
      call.fail(new UpstreamError('UND_ERR_INVALID_ARG', `the request cannot be sent over HTTP/2: ${(err as Error).message}`));
      return;
    }
    call.stream = stream;
    stream[CALL] = call;
    stream.on('response', onResponse);
    stream.on('data', onData);
    stream.on('trailers', onTrailers);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
    stream.on('timeout', onTimeout);
    stream.setTimeout(this.#o.headersTimeoutMs);
    if (endStream) return;
    if (typeof body === 'string' || body instanceof Uint8Array) { stream.end(body); return; }
    const readable = body as Readable;
    readable.on('error', onBodyError.bind(stream));
    readable.pipe(stream);
  }

  /** The request's HEADERS as node's raw list: pseudo-headers first, then the forwarded ones (lower-cased). */
  #headers(o: Dispatcher.DispatchOptions): string[] {
    const out = [':method', o.method, ':scheme', this.#scheme, ':path', o.path, ':authority', ''];
    let authority: string | undefined;
    const h = o.headers as string[] | null | undefined;
    if (Array.isArray(h)) {
      for (let i = 0; i < h.length; i += 2) {
        const name = (h[i] as string).toLowerCase();
        const value = h[i + 1] as string;
        if (name === 'host') { authority ??= value; continue; }
        out.push(name, value);
      }
    }
    out[7] = authority ?? this.#authority;
    return out;
  }

  /** A stream closed: its slot is free for a waiting request. */
  released(c: Conn): void {
    c.active--;
    if (c.queue.length > 0) this.#drain(c);
  }

  get headersTimeoutMs(): number {
    return this.#o.headersTimeoutMs;
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#conns.map((c) => new Promise<void>((resolve) => {
      if (c.session.closed) { resolve(); return; }
      c.session.close(() => resolve());
    })));
  }

  async destroy(): Promise<void> {
    this.#closed = true;
    for (const c of this.#conns.splice(0)) c.session.destroy();
  }
}

// Stream listeners, shared by every request (`this` is the stream; its Call hangs on it).

function onResponse(this: Stream, headers: IncomingHttpHeaders & IncomingHttpStatusHeader): void {
  const call = this[CALL];
  if (call === undefined || call.done) return;
  call.responded = true;
  this.setTimeout(call.paused ? 0 : call.up.bodyTimeoutMs);
  call.handler.onResponseStart?.(call, Number(headers[':status']), headers as Record<string, string | string[] | undefined>, '');
}

function onData(this: Stream, chunk: Buffer): void {
  const call = this[CALL];
  if (call === undefined || call.done) return;
  call.handler.onResponseData?.(call, chunk);
}

function onTrailers(this: Stream, trailers: IncomingHttpHeaders): void {
  const call = this[CALL];
  if (call !== undefined) call.trailers = trailers as Record<string, string | string[] | undefined>;
}

/**
 * The readable side ended. That is a whole response only when the backend sent END_STREAM: node also ends it when
 * the stream is reset (rstCode says by what) or destroyed with its connection, and those were cut ('close' fails
 * them with the reason).
 */
function onEnd(this: Stream): void {
  const call = this[CALL];
  if (call === undefined || call.done) return;
  if (!call.responded || call.error !== undefined || this.destroyed || this.rstCode !== h2c.NGHTTP2_NO_ERROR) return;
  call.done = true;
  call.handler.onResponseEnd?.(call, call.trailers ?? NO_TRAILERS);
}

function onError(this: Stream, err: Error): void {
  const call = this[CALL];
  if (call !== undefined) call.error ??= err;
}

function onTimeout(this: Stream): void {
  const call = this[CALL];
  if (call === undefined || call.done) return;
  const ms = call.responded ? call.up.bodyTimeoutMs : call.up.headersTimeoutMs;
  call.error = call.responded
    ? new UpstreamError('UND_ERR_BODY_TIMEOUT', `the backend's response body was silent for ${ms}ms`)
    : new UpstreamError('UND_ERR_HEADERS_TIMEOUT', `no response headers from the backend within ${ms}ms`);
  this.close(h2c.NGHTTP2_CANCEL);
}

function onBodyError(this: Stream, err: Error): void {
  const call = this[CALL];
  if (call === undefined || call.done) return;
  call.error ??= err;
  if (!this.closed) this.close(h2c.NGHTTP2_CANCEL);
}

function onClose(this: Stream): void {
  const call = this[CALL];
  if (call === undefined) return;
  this[CALL] = undefined;
  const c = call.conn as Conn;
  call.up.released(c);
  if (call.done) return;
  const code = this.rstCode ?? h2c.NGHTTP2_NO_ERROR;
  const id = this.id ?? 0;
  let err = call.error;
  if (code === h2c.NGHTTP2_REFUSED_STREAM || (c.goawayLast >= 0 && (id === 0 || id > c.goawayLast) && !call.responded)) {
    // Refused, or above the last stream a GOAWAY said was processed: the backend never saw it (RFC 9113 8.7).
    err = new UpstreamError('VF_UPSTREAM_REFUSED', `HTTP/2: the backend refused the stream (${code === h2c.NGHTTP2_REFUSED_STREAM ? 'RST_STREAM REFUSED_STREAM' : `GOAWAY, last stream ${c.goawayLast}`})`, h2c.NGHTTP2_REFUSED_STREAM);
  } else if (err === undefined || (err as { code?: string }).code === 'ERR_HTTP2_STREAM_ERROR') {
    err = code !== h2c.NGHTTP2_NO_ERROR
      ? new UpstreamError('VF_UPSTREAM_RESET', `HTTP/2: the backend reset the stream (RST_STREAM ${NAMES[code] ?? code})`, code)
      : c.error ?? new UpstreamError('UND_ERR_SOCKET', 'the backend closed the stream before the response was complete');
  }
  call.fail(err);
}
