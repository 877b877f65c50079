// The client-facing HTTP/2 server (SPEC 8): node's http2 core stream API, each stream wrapped as a request and a
// response (h2-stream.ts: not node's compatibility API, ADR 0010), so it reaches the same route/pick/forward path
// (server.ts, forward.ts) as an HTTP/1.1 request. This file holds what differs: the server's limits, the idle rule
// of a session, and reading an HTTP/2 request head.
//
// Limits against a hostile client (each is node's/nghttp2's enforcement, set here so it is stated once):
//   what                                  | limit                                   | what happens
//   --------------------------------------+-----------------------------------------+--------------------------------
//   streams open at once per connection   | MAX_CONCURRENT_STREAMS 128 (nginx: 128) | more are refused (RST_STREAM)
//   header list size (HPACK-decoded)      | 16 KiB, as the HTTP/1.1 head limit      | the stream is refused (431)
//   header pairs                          | 128                                     | the stream is refused
//   rapid reset (CVE-2023-44487)          | nghttp2's stream reset rate limit;      | the session is closed
//                                         | streams refused/invalid frames (below)  |
//   PING flood                            | 10 unacknowledged                       | the session is closed
//   SETTINGS / PING / RST floods that     | nghttp2's outbound queue limit          | the session is closed
//   queue ACKs the client does not read   |                                         |
//   memory per session                    | 10 MB (node's default)                  | new streams are refused
//   a session with no stream              | keepalive_timeout of silence            | GOAWAY, closed
//   preface, then nothing                 | the same                                | closed
// A reset stream aborts its upstream exchange like a client that hangs up (fault.ts: client side, 499): it never
// counts against a backend.
import { createServer } from 'node:http2';
import type { Http2Server, Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { HOP } from './forward.ts';
import { H2Request, H2Response } from './h2-stream.ts';
import type { Peer } from './h2-stream.ts';
import type { RequestHead } from './forward.ts';
import { isGrpc } from './grpc.ts';

export const H2_LIMITS = {
  maxConcurrentStreams: 128,
  maxHeaderListSize: 16 * 1024,
  maxHeaderListPairs: 128,
  maxOutstandingPings: 10,
  /** Invalid frames, and streams the server refused, a session may cause before it is closed. */
  maxSessionInvalidFrames: 100,
  maxSessionRejectedStreams: 100,
} as const;

/** Open streams of a session, for the idle rule (a silent session with open streams is a quiet gRPC stream). */
const OPEN = Symbol('veloflux.openStreams');
/** The client's address and transport, read once per session (h2-stream.ts Peer). */
const PEER = Symbol('veloflux.peer');
type TrackedSession = Http2Session & { [OPEN]?: number; [PEER]?: Peer };

export type H2Handler = (req: H2Request, res: H2Response) => void;

/**
 * `idleMs()` is read when a session is created and when its timer fires (it follows config reloads).
 * `sessions` receives every session while it is open (close() walks them).
 */
export function createH2Server(onRequest: H2Handler, idleMs: () => number, sessions: Set<Http2Session>): Http2Server {
  const server = createServer({
    maxHeaderListPairs: H2_LIMITS.maxHeaderListPairs,
    maxOutstandingPings: H2_LIMITS.maxOutstandingPings,
    maxSessionInvalidFrames: H2_LIMITS.maxSessionInvalidFrames,
    maxSessionRejectedStreams: H2_LIMITS.maxSessionRejectedStreams,
    settings: {
      maxConcurrentStreams: H2_LIMITS.maxConcurrentStreams,
      maxHeaderListSize: H2_LIMITS.maxHeaderListSize,
      enablePush: false,
    },
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    // Reset before its turn came (rapid reset): nobody to answer, nothing sent anywhere.
    const peer = (stream.session as TrackedSession | undefined)?.[PEER];
    if (stream.destroyed || peer === undefined) return;
    const req = new H2Request(stream, headers, rawHeaders, peer);
    onRequest(req, new H2Response(req));
  });
  server.on('session', (session: TrackedSession) => {
    sessions.add(session);
    session[OPEN] = 0;
    const socket = session.socket as { remoteAddress?: string; encrypted?: boolean } | undefined;
    session[PEER] = { remoteAddress: socket?.remoteAddress, encrypted: socket?.encrypted === true };
    // A session error (garbage after the preface, a flood, a protocol violation) ends that session only.
    session.on('error', () => session.destroy());
    session.on('close', () => sessions.delete(session));
    session.on('stream', (stream: ServerHttp2Stream) => {
      session[OPEN] = (session[OPEN] ?? 0) + 1;
      stream.on('close', () => { session[OPEN] = (session[OPEN] ?? 1) - 1; });
      stream.on('error', () => {});
    });
    session.setTimeout(idleMs(), () => {
      if ((session[OPEN] ?? 0) > 0) return;
      session.close();
      // A peer that does not answer the GOAWAY (or never finished its preface) is dropped.
      session.destroy();
    });
  });
  server.on('sessionError', () => {});
  return server;
}

/**
 * The HTTP/2 counterpart of readRequestHead (forward.ts): pseudo-headers dropped, `:authority` becomes Host when
 * the client sent no Host, cookie fields joined with "; " for an HTTP/1.1 backend (RFC 9113 8.2.3), hop-by-hop
 * fields dropped (an HTTP/2 client may not send them; node refuses most), X-Forwarded-* set.
 */
export function readH2RequestHead(req: H2Request, proto: string): RequestHead {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let host: string | undefined;
  let authority: string | undefined;
  let hostCount = 0;
  let contentLength: string | undefined;
  let cookie: string | undefined;
  let xff: string | undefined;
  let grpc = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name.charCodeAt(0) === 58 /* ":" */) {
      if (name === ':authority') authority = value;
      continue;
    }
    // HTTP/2 field names are lower case (RFC 9113 8.2.1; nghttp2 refuses others).
    switch (name) {
      case 'host': hostCount++; if (host === undefined) { host = value; out.push(name, value); } continue;
      case 'content-length': contentLength = value; break;
      case 'cookie': cookie = cookie === undefined ? value : `${cookie}; ${value}`; continue;
      case 'x-forwarded-for': xff = xff === undefined ? value : `${xff}, ${value}`; continue;
      case 'x-forwarded-proto': case 'x-forwarded-host': continue;
      case 'content-type': grpc = isGrpc(value); break;
      // TE is hop-by-hop, but over HTTP/2 it may only say `trailers` (RFC 9113 8.2.2), which gRPC requires end to end.
      case 'te': if (value.trim().toLowerCase() === 'trailers') out.push(name, 'trailers'); continue;
      default: if (HOP.has(name)) continue;
    }
    out.push(name, value);
  }
  if (host === undefined && authority !== undefined) { host = authority; out.push('host', authority); }
  if (cookie !== undefined) out.push('cookie', cookie);
  const client = req.socket.remoteAddress ?? '';
  out.push('x-forwarded-for', xff ? `${xff}, ${client}` : client, 'x-forwarded-proto', proto);
  if (host !== undefined) out.push('x-forwarded-host', host);
  // No body when the HEADERS frame ended the stream; otherwise one follows, with or without content-length.
  const hasBody = !req.stream.endAfterHeaders && contentLength !== '0';
  return { headers: out, host, hostCount, contentLength: hasBody ? contentLength : undefined, chunked: hasBody && contentLength === undefined, grpc };
}
