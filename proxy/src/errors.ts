// The proxy's error table: one code per thing that can go wrong for a client or an operator.
// docs/errors.md lists every code (a test checks it); messages name what was wrong and what is allowed.

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
  UPSTREAM_PROTOCOL: def('VF_ERR_UPSTREAM_PROTOCOL', 502, 'The backend answered with something that is not valid HTTP.'),
  BAD_REQUEST: def('VF_ERR_BAD_REQUEST', 400, 'The request cannot be forwarded as sent (an invalid header, an unsupported Expect).'),
  SHUTTING_DOWN: def('VF_ERR_SHUTTING_DOWN', 503, 'The proxy is stopping and takes no new requests on this connection.'),
  CONFIG_INVALID: def('VF_ERR_CONFIG_INVALID', 400, 'The config has problems; each is listed with its path.'),
} as const satisfies Record<string, ErrorDef>;

export type ErrorName = keyof typeof ERRORS;

/** The JSON body of an error response: `{ error: { code, message } }`. */
export function errorBody(e: ErrorDef, message: string): string {
  return JSON.stringify({ error: { code: e.code, message } });
}
