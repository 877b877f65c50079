// The admin API's one authorization gate (ADR 0001).
import { createHash, timingSafeEqual } from 'node:crypto';
import { ERRORS } from '../errors.ts';
import { send } from './common.ts';
import type { AdminPlugin } from './common.ts';

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export const authPlugin: AdminPlugin = (app, ctx) => {
  // The one gate, for every route, the 404 handler included: it runs after the router has matched, and decides on
  // what it matched. A route is public only if it says so (`config: { public: true }`); any other route, a route
  // added later, and every path the router did not match (whatever its spelling: %61pi, //, /./, ;x, %2F, case,
  // trailing slash) needs the token, so nothing is decided on the raw URL and unmatched paths reveal nothing.
  app.addHook('onRequest', async (req, reply) => {
    if ((req.routeOptions.config as { public?: unknown } | undefined)?.public === true) return undefined;
    const token = ctx.token();
    if (token === undefined) return send(reply, ERRORS.ADMIN_TOKEN_UNSET, 'no admin token is configured: set env VELOFLUX_ADMIN_TOKEN or admin.token_file');
    const header = req.headers.authorization;
    const given = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7).trim() : '';
    // Compare digests: equal length always, and no early exit on the first differing byte.
    if (given === '' || !timingSafeEqual(digest(given), digest(token))) return send(reply, ERRORS.UNAUTHORIZED, 'missing or invalid bearer token (Authorization: Bearer <token>)');
    return undefined;
  });
};
