// A client's HTTP/2 stream as the request and response the forwarding path reads and writes (forward.ts), over
// node's core stream API instead of its compatibility API (ADR 0010). The compatibility layer builds a Readable and
// a Stream object per request with a dozen listeners each, copies every header into its own object, and asks for
// trailers on every response, so each answer ends with an extra empty DATA frame. Without it the same build
// serves 1.18x (h2c) and 1.30x (TLS) the requests per core (BENCHMARKS.md). These two classes carry only what the
// proxy uses.
//
// Trailers: a response asks the stream for them (waitForTrailers) only when some can come: a gRPC call, a gRPC
// answer, or a backend that announced them with a Trailer header (RFC 9110 6.6.2). Trailers that a backend sends
// without announcing them, on a response that is neither, are dropped (nginx drops all of them).
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { PassThrough, addAbortSignal } from 'node:stream';
import type { Readable } from 'node:stream';

/** What the stream's own on() takes (its last, untyped overload). */
type Listener = Parameters<ServerHttp2Stream['on']>[1];

/**
 * RST_STREAM(CANCEL) on a response that may be half sent. `stream.close(CANCEL)` ends the writable side first, so a
 * stream that waits for no trailers sends END_STREAM before the reset and the client takes a cut body for a whole
 * one; node resets with CANCEL a stream destroyed by an AbortError, which addAbortSignal gives.
 */
export function cancelStream(stream: ServerHttp2Stream): void {
  if (stream.destroyed) return;
  const ac = new AbortController();
  addAbortSignal(ac.signal, stream);
  ac.abort();
}

/**
 * The client's end of a session, read once when the session opens. node's `session.socket` is a proxy that throws
 * once the session is destroyed, and the access log and X-Forwarded-For read it when an exchange ends, which can
 * be after the client's connection is gone.
 */
export interface Peer {
  readonly remoteAddress: string | undefined;
  readonly encrypted: boolean;
}

/** The request half: the stream's head, and its body events (data, end, error, aborted) passed through. */
export class H2Request {
  readonly stream: ServerHttp2Stream;
  /** Where the request came from (the session's peer: see Peer). */
  readonly socket: Peer;
  /** As node decoded them, pseudo-headers included (what `Http2ServerRequest.headers` was). */
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly method: string;
  readonly url: string;
  readonly httpVersion = '2.0';

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], peer: Peer) {
    this.stream = stream;
    this.socket = peer;
    this.headers = headers;
    this.rawHeaders = rawHeaders;
    this.method = headers[':method'] as string;
    this.url = (headers[':path'] as string | undefined) ?? '';
  }

  /**
   * The body as a Readable of its own, for undici: undici destroys a body it has read to the end (the stream is not
   * auto-destroyed), and this stream still has the response to carry. A client that resets its stream fails it.
   */
  body(): Readable {
    const stream = this.stream;
    const out = new PassThrough();
    // undici destroys a body it gives up on; nobody else reads its error.
    out.on('error', () => {});
    const cut = (): void => { out.destroy(new Error('the client reset its request stream')); };
    stream.once('aborted', cut);
    stream.once('error', cut);
    stream.pipe(out);
    return out;
  }

  on(event: string, fn: Listener): this {
    this.stream.on(event, fn);
    return this;
  }

  once(event: string, fn: Listener): this {
    this.stream.once(event, fn);
    return this;
  }

  off(event: string, fn: Listener): this {
    this.stream.off(event, fn);
    return this;
  }

  pause(): this {
    this.stream.pause();
    return this;
  }

  resume(): this {
    this.stream.resume();
    return this;
  }
}

/** The response half: a head, body writes with backpressure, trailers, and the stream's close. */
export class H2Response {
  readonly stream: ServerHttp2Stream;
  readonly req: H2Request;
  statusCode = 200;
  #sent: OutgoingHttpHeaders | undefined;
  #wantTrailers = false;
  #trailers: Record<string, string> | undefined;

  constructor(req: H2Request) {
    this.req = req;
    this.stream = req.stream;
  }

  get headersSent(): boolean {
    return this.stream.headersSent;
  }

  get socket(): Peer {
    return this.req.socket;
  }

  getHeader(name: string): string | number | string[] | undefined {
    return this.#sent?.[name];
  }

  /** Trailers may follow (gRPC, or a backend's Trailer header): the stream waits for them after the last DATA frame. */
  expectTrailers(): void {
    this.#wantTrailers = true;
  }

  /** `headers`: an object, or name/value pairs flat (downstreamHeaders), lower-case names. */
  writeHead(status: number, headers?: OutgoingHttpHeaders | readonly (string | string[])[]): this {
    const stream = this.stream;
    if (stream.headersSent || stream.destroyed) return this;
    this.statusCode = status;
    const out: OutgoingHttpHeaders = {};
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) out[headers[i] as string] = headers[i + 1];
    } else if (headers !== undefined) {
      for (const name in headers as OutgoingHttpHeaders) out[name] = (headers as OutgoingHttpHeaders)[name];
    }
    this.#sent = out;
    out[':status'] = status;
    // node ends the stream itself after the head of a HEAD request and of a 204 or 304: no trailers there.
    const bodiless = this.req.method === 'HEAD' || status === 204 || status === 304;
    const waitForTrailers = this.#wantTrailers && !bodiless;
    try {
      stream.respond(out, { waitForTrailers });
    } catch {
      // A field node refuses to put on the wire: the client gets a reset, not a half-written answer.
      this.destroy();
      return this;
    }
    if (waitForTrailers) stream.once('wantTrailers', () => this.#sendTrailers());
    return this;
  }

  write(chunk: Buffer): boolean {
    if (!this.stream.headersSent) this.writeHead(this.statusCode);
    return this.stream.write(chunk);
  }

  addTrailers(trailers: Record<string, string>): void {
    this.#trailers = this.#trailers === undefined ? { ...trailers } : Object.assign(this.#trailers, trailers);
  }

  end(chunk?: Buffer | string): this {
    const stream = this.stream;
    if (stream.destroyed) return this;
    if (!stream.headersSent) this.writeHead(this.statusCode);
    if (chunk === undefined) stream.end();
    else stream.end(chunk);
    return this;
  }

  /**
   * Cuts the stream: RST_STREAM(INTERNAL_ERROR), which no client reads as a whole answer (the backend failed
   * mid-response, or nobody can be answered). node's own destroy() without an error resets with NO_ERROR.
   */
  destroy(err: Error = new Error('response cut')): void {
    this.stream.destroy(err);
  }

  /** 'close' and 'drain' are the stream's; a listener is called with the response as `this`. */
  on(event: string, fn: (this: H2Response) => void): this {
    this.stream.on(event, fn.bind(this));
    return this;
  }

  once(event: string, fn: (this: H2Response) => void): this {
    this.stream.once(event, fn.bind(this));
    return this;
  }

  #sendTrailers(): void {
    const stream = this.stream;
    if (stream.destroyed || stream.closed) return;
    try {
      stream.sendTrailers(this.#trailers ?? {});
    } catch {
      stream.close();
    }
  }
}
