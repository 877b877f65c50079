// The proxy's error table: one code per thing that can go wrong for a client or an operator.
// docs/errors.md lists every code (a test checks it); messages name what was wrong and what is allowed.
import { RESTART_ONLY_PATHS } from '@veloflux/config/restart';

export interface ErrorDef {
  readonly code: string;
  readonly status: number;
  readonly summary: string;
}

function def(code: string, status: number, summary: string): ErrorDef {
  return { code, status, summary };
}

export const ERRORS = {
  NO_ROUTE: def('VF_ERR_NO_ROUTE', 404, 'No route matches the request\'s host and path.'),
  NO_HEALTHY_BACKEND: def('VF_ERR_NO_HEALTHY_BACKEND', 503, 'No backend of the pool can serve at any level; Retry-After says when to try again.'),
  UPSTREAM_CONNECT: def('VF_ERR_UPSTREAM_CONNECT', 502, 'Every backend tried refused or failed the connection.'),
  UPSTREAM_RESET: def('VF_ERR_UPSTREAM_RESET', 502, 'The backend closed or reset the connection before answering.'),
  UPSTREAM_TIMEOUT: def('VF_ERR_UPSTREAM_TIMEOUT', 504, 'The backend did not connect or answer in time (connect_timeout, header_timeout).'),
  DEADLINE_EXCEEDED: def('VF_ERR_DEADLINE_EXCEEDED', 504, 'A gRPC client\'s grpc-timeout expired before the answer was complete; the client gets DEADLINE_EXCEEDED and nothing counts against the backend (logged and counted as 499, a client that stopped waiting).'),
  DRAINED: def('VF_ERR_DRAINED', 503, 'A WebSocket or HTTP/2 stream was closed failover.drain_timeout after its level lost its traffic, so the client reconnects onto the level now serving (WebSocket close 1001, gRPC UNAVAILABLE).'),
  UPSTREAM_PROTOCOL: def('VF_ERR_UPSTREAM_PROTOCOL', 502, 'The backend answered with something that is not valid HTTP.'),
  BAD_REQUEST: def('VF_ERR_BAD_REQUEST', 400, 'The request cannot be forwarded as sent: malformed HTTP, more than one Host header, an invalid header or target.'),
  METHOD_NOT_SUPPORTED: def('VF_ERR_METHOD_NOT_SUPPORTED', 501, 'The request method is not one the proxy\'s HTTP parser knows (node\'s llhttp accepts the registered methods only); the connection is closed.'),
  CONFIG_INVALID: def('VF_ERR_CONFIG_INVALID', 400, 'The config has problems; each is listed with its path (the running config keeps serving).'),
  CONFIG_RESTART_REQUIRED: def('VF_ERR_CONFIG_RESTART_REQUIRED', 409, `The new config changes something only a restart can change (${RESTART_ONLY_PATHS.join(', ')}); nothing was applied.`),
  UNAUTHORIZED: def('VF_ERR_UNAUTHORIZED', 401, 'The admin API needs `Authorization: Bearer <token>` with the configured token.'),
  ADMIN_TOKEN_UNSET: def('VF_ERR_ADMIN_TOKEN_UNSET', 401, 'No admin token is configured (env VELOFLUX_ADMIN_TOKEN or admin.token_file), so the admin API refuses every call.'),
  UNKNOWN_POOL: def('VF_ERR_UNKNOWN_POOL', 404, 'No pool has that name; the message lists the pools.'),
  BAD_PARAMETER: def('VF_ERR_BAD_PARAMETER', 400, 'A query parameter or body is missing or not of the allowed form; the message says which and what is allowed.'),
  NOT_FOUND: def('VF_ERR_NOT_FOUND', 404, 'No admin endpoint at that method and path; GET /openapi.json lists them.'),
  METHOD_NOT_ALLOWED: def('VF_ERR_METHOD_NOT_ALLOWED', 405, 'Admin API: the path exists but not with that method; the `Allow` header lists the methods it takes (answered only with the token, like every non-public path).'),
  HEADERS_TOO_LARGE: def('VF_ERR_HEADERS_TOO_LARGE', 431, 'The request line and headers exceed the size node accepts (16 KiB); the connection is closed.'),
  BODY_TOO_LARGE: def('VF_ERR_BODY_TOO_LARGE', 413, 'Admin API: the request body is larger than 4 MiB; nothing was applied.'),
  REQUEST_TIMEOUT: def('VF_ERR_REQUEST_TIMEOUT', 408, 'The request head did not arrive in time (data plane: dataplane.client_header_timeout); the connection is closed.'),
  DECISION_STALE: def('VF_ERR_DECISION_STALE', 409, 'A shared decision (PUT /api/v1/pools/{pool}/decision) whose sequence is lower than the one the proxy holds; nothing was changed.'),
  DECISION_LOCAL: def('VF_ERR_DECISION_LOCAL', 409, 'A shared decision for a pool that decides locally (consensus.mode: local); nothing was changed.'),
  DRILL_RUNNING: def('VF_ERR_DRILL_RUNNING', 409, 'A live drill is already running on that pool.'),
  NO_FAILBACK_AWAITING: def('VF_ERR_NO_FAILBACK_AWAITING', 409, 'POST /api/v1/failover/failback: the pool awaits no failback approval (failback auto, not failed over, or its earlier level not healthy long enough yet); the message says which.'),
  INTERNAL: def('VF_ERR_INTERNAL', 500, 'An unexpected failure in the proxy; the proxy log has the details.'),
} as const satisfies Record<string, ErrorDef>;

export type ErrorName = keyof typeof ERRORS;

/** The JSON body of an error response: `{ error: { code, message } }`. */
export function errorBody(e: ErrorDef, message: string): string {
  return JSON.stringify({ error: { code: e.code, message } });
}
