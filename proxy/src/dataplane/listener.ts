// The cleartext data-plane listener: HTTP/1.1 and HTTP/2 with prior knowledge on one port (SPEC 8).
//
// A TCP server that reads a connection's first bytes and hands the socket to one of two protocol servers: the
// HTTP/2 server when they are the client connection preface (RFC 9113 3.4, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`),
// the HTTP/1.1 server otherwise. The bytes read are pushed back (`unshift`) first; both node servers pick up
// what is already buffered on a socket they are given. The decision costs one read per connection, not per
// request, and is taken at the first byte that differs from the preface: an HTTP/1.1 request line ("GET ...")
// is decided at its first byte.
//
// `Upgrade: h2c` (RFC 7540 3.2, removed in RFC 9113) is not a preface: it goes to the HTTP/1.1 server, which
// serves it as the HTTP/1.1 request it also is.
//
//   first bytes                      | goes to
//   ---------------------------------+-----------------------------------------------
//   the 24-byte preface              | HTTP/2 server (session)
//   a prefix of it, then silence     | closed after client_header_timeout
//   anything else                    | HTTP/1.1 server (its parser answers garbage with 400)
//   nothing at all                   | closed after client_header_timeout
import { createServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';

export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** How far `bytes` agree with the preface: 'h2' (all of it), 'maybe' (a proper prefix so far), 'h1' (no). */
export function sniff(bytes: Buffer): 'h1' | 'h2' | 'maybe' {
  const n = Math.min(bytes.length, H2_PREFACE.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== H2_PREFACE[i]) return 'h1';
  return n === H2_PREFACE.length ? 'h2' : 'maybe';
}

export interface ProtocolServers {
  /** Takes an HTTP/1.1 connection (node's http.Server 'connection'). */
  h1(socket: Socket): void;
  /** Takes an HTTP/2 connection that starts with the preface. */
  h2(socket: Socket): void;
}

/** A TCP server that sniffs each connection; `timeoutMs()` is read per connection (it follows config reloads). */
export function createSniffingServer(servers: ProtocolServers, timeoutMs: () => number): NetServer {
  return createServer((socket) => {
    let seen: Buffer | undefined;
    const onTimeout = (): void => { socket.destroy(); };
    const onError = (): void => { socket.destroy(); };
    const onData = (chunk: Buffer): void => {
      const bytes = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      const verdict = sniff(bytes);
      if (verdict === 'maybe') { seen = bytes; return; }
      socket.off('data', onData);
      socket.off('timeout', onTimeout);
      socket.off('error', onError);
      socket.pause();
      socket.unshift(bytes);
      socket.setTimeout(0);
      if (verdict === 'h2') servers.h2(socket);
      else servers.h1(socket);
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('timeout', onTimeout);
    socket.setTimeout(timeoutMs());
  });
}
