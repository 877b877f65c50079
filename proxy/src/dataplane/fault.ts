// Whose fault a failed exchange is: the one place the data plane decides it (SPEC 2, "Only backend faults count").
//
// Only what a backend did may count against its health, spend the retry budget or move a pool. Undici reports a
// client that hangs up the same way as a backend that resets (`UND_ERR_SOCKET`, `ECONNRESET`, an abort), so the
// error code alone cannot tell; the exchange knows whether its client left (the response closed early, the request
// body errored or stopped, the client went silent past idle_timeout) and says so here, and that wins:
//
//   what happened                                      | side    | status to log/count | passive | retried
//   ---------------------------------------------------+---------+---------------------+---------+--------
//   client closed, reset, aborted its upload, sent a    | client  | 499                 | no      | no
//   malformed body, or timed out (whatever undici says) |         |                     |         |
//   our own abort (ClientGone), UND_ERR_ABORTED         | client  | 499                 | no      | no
//   request undici refuses to send (invalid header...)  | request | 400                 | no      | no
//   connect refused / unreachable / DNS                 | backend | 502 CONNECT         | yes     | yes
//   connect, header or body timeout                     | backend | 504 TIMEOUT         | yes     | yes
//   reset / closed / socket error mid-exchange          | backend | 502 RESET           | yes     | yes
//   invalid HTTP from the backend (HPE_*, bad response, | backend | 502 PROTOCOL        | yes     | yes
//   content-length mismatch, upgrade it did not ask,    |         |                     |         |
//   HTTP/2 protocol error, no h2 by ALPN for protocol h2)|        |                     |         |
//   TLS: certificate not trusted or not for the name,   | backend | 502 CONNECT         | yes     | yes
//   no TLS spoken, the pool's ca_file unreadable        |         |                     |         |
//
// "retried" is subject to SPEC 2's method rules and the budget (forward.ts); a client-side ending is never retried:
// there is nobody left to answer.
import { ERRORS } from '../errors.ts';
import type { ErrorDef } from '../errors.ts';

/** The status logged and counted for a client that left before its answer (nginx's 499). */
export const CLIENT_CLOSED = 499;

/** The reason the proxy aborts an upstream exchange whose client went away. Never a backend fault. */
export class ClientGone extends Error {
  readonly code = 'VF_CLIENT_GONE';
  constructor(why = 'client closed the connection') {
    super(why);
  }
}

export type Side = 'client' | 'request' | 'backend';

export interface Fault {
  readonly side: Side;
  /** What the client is answered (when it is still there). */
  readonly error: ErrorDef;
  /** The status logged and counted. */
  readonly status: number;
}

const CLIENT: Fault = { side: 'client', error: ERRORS.BAD_REQUEST, status: CLIENT_CLOSED };
const REQUEST: Fault = { side: 'request', error: ERRORS.BAD_REQUEST, status: ERRORS.BAD_REQUEST.status };
const TIMEOUT: Fault = { side: 'backend', error: ERRORS.UPSTREAM_TIMEOUT, status: ERRORS.UPSTREAM_TIMEOUT.status };
const CONNECT: Fault = { side: 'backend', error: ERRORS.UPSTREAM_CONNECT, status: ERRORS.UPSTREAM_CONNECT.status };
const RESET: Fault = { side: 'backend', error: ERRORS.UPSTREAM_RESET, status: ERRORS.UPSTREAM_RESET.status };
const PROTOCOL: Fault = { side: 'backend', error: ERRORS.UPSTREAM_PROTOCOL, status: ERRORS.UPSTREAM_PROTOCOL.status };

/**
 * `clientGone`: the exchange saw its client leave (or its request body fail) before this error. It decides first,
 * since a client hanging up surfaces in undici as a socket error or an abort.
 */
export function faultOf(err: Error & { code?: string }, clientGone: boolean): Fault {
  if (clientGone || err instanceof ClientGone) return CLIENT;
  const code = err.code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return TIMEOUT;
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return CONNECT;
    case 'UND_ERR_ABORTED':
    case 'ABORT_ERR':
      return CLIENT;
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
    case 'ERR_INVALID_CHAR':
    case 'ERR_INVALID_HTTP_TOKEN':
      return REQUEST;
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    case 'VF_UPSTREAM_NO_H2':
    case 'ERR_HTTP2_ERROR':
    case 'ERR_HTTP2_SESSION_ERROR':
    case 'ERR_HTTP2_INVALID_HEADER_VALUE':
      return PROTOCOL;
    case 'VF_UPSTREAM_CA_FILE':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'CERT_HAS_EXPIRED':
    case 'CERT_NOT_YET_VALID':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'ERR_SSL_WRONG_VERSION_NUMBER':
    case 'ERR_SSL_PACKET_LENGTH_TOO_LONG':
      return CONNECT;
    case 'VF_UPSTREAM_RESET':
    case 'VF_UPSTREAM_REFUSED':
      return RESET;
    case 'UND_ERR_SOCKET':
      // undici's own parser verdicts on what the backend sent arrive as socket errors with these messages.
      return err.message === 'bad response' || err.message === 'bad upgrade' ? PROTOCOL : RESET;
    default:
      // undici's HTTPParserError (an invalid status line or header from the backend) carries no code of its own.
      return code.startsWith('HPE_') || err.name === 'HTTPParserError' ? PROTOCOL : RESET;
  }
}
