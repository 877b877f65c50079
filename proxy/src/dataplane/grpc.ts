// What the proxy answers a gRPC client itself (SPEC 8): errors are gRPC responses, not JSON bodies, and the
// client's `grpc-timeout` bounds the exchange.
//
//   the proxy's error (errors.ts)                 | HTTP/1 status | gRPC status
//   ----------------------------------------------+---------------+---------------------------
//   VF_ERR_NO_ROUTE                               | 404           | 12 UNIMPLEMENTED
//   VF_ERR_NO_HEALTHY_BACKEND, UPSTREAM_CONNECT,  | 503, 502      | 14 UNAVAILABLE
//   UPSTREAM_RESET, UPSTREAM_PROTOCOL             |               |
//   VF_ERR_UPSTREAM_TIMEOUT, grpc-timeout expired | 504           | 4 DEADLINE_EXCEEDED
//   VF_ERR_BAD_REQUEST (incl. a bad grpc-timeout) | 400           | 13 INTERNAL (grpc-go answers a malformed timeout so)
//   anything else                                 |               | 13 INTERNAL
// The answer is HTTP 200, `content-type: application/grpc`, trailers-only: over HTTP/2 one HEADERS frame that ends
// the stream, carrying grpc-status and grpc-message (percent-encoded, gRPC's PROTOCOL-HTTP2 "Status-Message").
import type { ErrorDef } from '../errors.ts';

export const GRPC_STATUS = {
  OK: 0,
  DEADLINE_EXCEEDED: 4,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** `content-type: application/grpc`, `application/grpc+proto`, `application/grpc;...` (gRPC over HTTP/2 spec). */
export function isGrpc(contentType: string | undefined): boolean {
  if (contentType === undefined || contentType.length < 16) return false;
  if (contentType.slice(0, 16).toLowerCase() !== 'application/grpc') return false;
  const next = contentType.charCodeAt(16);
  return Number.isNaN(next) || next === 43 /* + */ || next === 59 /* ; */;
}

export function grpcStatusOf(e: ErrorDef): number {
  switch (e.status) {
    case 404: return GRPC_STATUS.UNIMPLEMENTED;
    case 502: case 503: return GRPC_STATUS.UNAVAILABLE;
    case 504: return GRPC_STATUS.DEADLINE_EXCEEDED;
    default: return GRPC_STATUS.INTERNAL;
  }
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/** The longest deadline honoured: a timer cannot run longer (2^31-1 ms, ~24.8 days). */
export const MAX_GRPC_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * `grpc-timeout` (gRPC over HTTP/2: TimeoutValue = 1*8 ASCII digits, TimeoutUnit = H|M|S|m|u|n) in milliseconds,
 * or an error message. Strict: no sign, no space, no decimal point, at most 8 digits. A positive value below 1 ms
 * is 1 ms (a timer's resolution); a value beyond what a timer can hold is capped.
 */
export function parseGrpcTimeout(value: string): number | { error: string } {
  if (!/^[0-9]{1,8}[HMSmun]$/.test(value)) return { error: `grpc-timeout must be 1 to 8 digits and a unit (H, M, S, m, u, n), got ${JSON.stringify(value.slice(0, 32))}` };
  const n = Number(value.slice(0, -1));
  const ms = n * (UNIT_MS[value.slice(-1)] as number);
  if (ms === 0) return 0;
  return Math.min(MAX_GRPC_TIMEOUT_MS, Math.max(1, Math.ceil(ms)));
}

/** grpc-message: percent-encode everything outside printable ASCII and "%" itself (gRPC PROTOCOL-HTTP2). */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The headers of a trailers-only gRPC answer. */
export function grpcErrorHeaders(status: number, message: string): Record<string, string> {
  return { 'content-type': 'application/grpc', 'grpc-status': String(status), 'grpc-message': encodeGrpcMessage(message) };
}
