// The admin API (SPEC 3): failover control, status, drills, config, events, metrics, health.
// /api/v1/* needs `Authorization: Bearer <token>` (constant-time compare); errors are `{error: {code, message}}`.
// createAdmin: the fastify app, its error shape and public routes; the plugins add the gate and the API.
import { STATUS_CODES } from 'node:http';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { ERRORS, errorBody } from '../errors.ts';
import { DrillError, NothingToApproveError, UnknownPoolError } from '../control/api.ts';
import { authPlugin } from './auth.ts';
import { AdminError, send } from './common.ts';
import type { AdminContext, AdminPlugin } from './common.ts';
import { configPlugin } from './config.ts';
import { decisionPlugin } from './decision.ts';
import { eventsPlugin } from './events.ts';
import { failoverPlugin } from './failover.ts';
import { OPENAPI } from './openapi.ts';

export { AdminError } from './common.ts';
export type { AdminContext, ApplyResult, DrillOptions } from './common.ts';

/** Largest admin request body (a config PUT), bytes. */
export const BODY_LIMIT = 4 * 1024 * 1024;

/** What anyone may read: liveness, readiness, metrics, the API's description. Each says so (`config.public`). */
const publicPlugin: AdminPlugin = (app, ctx) => {
  const open = { config: { public: true } };
  app.get('/healthz', open, async () => ({ status: 'ok' }));
  app.get('/readyz', open, async (_req, reply) => {
    const c = ctx.controller();
    if (c.ready) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready', reason: c.notReadyReason ?? 'the first health-check round has not finished' });
  });
  app.get('/metrics', open, async (_req, reply) => {
    const m = await ctx.metrics();
    return reply.header('content-type', m.contentType).send(m.body);
  });
  app.get('/openapi.json', open, async () => OPENAPI);
};

/** Every method a path may be asked with; those a path does not take answer 405 (methodNotAllowedPlugin). */
const METHODS = ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT'] as const;

/** What an admin route is: an endpoint, or the 405 answer for the methods its path does not take. */
export type RouteKind = 'endpoint' | 'method-not-allowed';

/**
 * A wrong method on an existing path answers 405 with `Allow`. The 405 answers are routes of their own, added
 * after every endpoint for the methods its path lacks, so the router decides what matched (every spelling it
 * decodes to the path) and the one gate (ADR 0001) covers them like any other non-public route: without the
 * token a wrong method gets the same 401 as an unknown path, so the methods of a path are not revealed.
 */
function methodNotAllowedPlugin(app: FastifyInstance, paths: ReadonlyMap<string, ReadonlySet<string>>): void {
  for (const [url, have] of paths) {
    const allow = METHODS.filter((m) => have.has(m));
    const missing = METHODS.filter((m) => !have.has(m));
    if (missing.length === 0) continue;
    app.route({
      method: [...missing], url, exposeHeadRoute: false, config: { kind: 'method-not-allowed' },
      handler: async (req, reply) => send(reply.header('allow', allow.join(', ')), ERRORS.METHOD_NOT_ALLOWED, `${req.method} is not allowed on ${url}; allowed: ${allow.join(', ')}`),
    });
  }
}

/** `?pretty` (any value but "false" or "0"): indented JSON for humans. */
function wantsPretty(query: unknown): boolean {
  const v = (query as Record<string, unknown> | undefined)?.pretty;
  return v !== undefined && v !== 'false' && v !== '0';
}

export function createAdmin(ctx: AdminContext, observe?: { onRoute(method: string, url: string, kind: RouteKind): void }): FastifyInstance {
  const app = Fastify({
    logger: false,
    forceCloseConnections: true,
    bodyLimit: BODY_LIMIT,
    // The router matches exactly the path as sent, after percent-decoding (find-my-way): no case folding, no
    // trailing-slash, duplicate-slash or `;` leniency. Other spellings are unmatched, and unmatched needs the token.
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, useSemicolonDelimiter: false } as Record<string, boolean>,
    // What fastify and node answer themselves (a URL that does not decode, a malformed request, headers too large,
    // a timeout) is in the documented error shape too.
    frameworkErrors: (err, _req, reply) => send(reply, ERRORS.BAD_PARAMETER, err.code === 'FST_ERR_BAD_URL' ? 'the URL path does not decode (a malformed percent-encoding)' : 'the request cannot be routed'),
    clientErrorHandler: (err: Error & { code?: string }, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      const def = err.code === 'HPE_HEADER_OVERFLOW' ? ERRORS.HEADERS_TOO_LARGE : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? ERRORS.REQUEST_TIMEOUT : ERRORS.BAD_REQUEST;
      const message = def === ERRORS.HEADERS_TOO_LARGE ? 'the request line and headers are too large (at most 16 KiB)' : def === ERRORS.REQUEST_TIMEOUT ? 'the request did not arrive in time' : 'malformed HTTP request';
      const body = `${errorBody(def, message)}\n`;
      if (socket.writable) socket.write(`HTTP/1.1 ${def.status} ${STATUS_CODES[def.status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
  });
  const paths = new Map<string, Set<string>>();
  app.addHook('onRoute', (r) => {
    const kind: RouteKind = (r.config as { kind?: RouteKind } | undefined)?.kind ?? 'endpoint';
    for (const m of [r.method].flat()) {
      if (kind === 'endpoint') paths.set(r.url, (paths.get(r.url) ?? new Set()).add(m));
      observe?.onRoute(m, r.url, kind);
    }
  });
  // JSON answers end with a newline (curl output does not run into the prompt); `?pretty` indents them. The
  // serializer is chosen before the gate runs, so a 401 is pretty too.
  app.setReplySerializer((payload) => `${JSON.stringify(payload)}\n`);
  app.addHook('onRequest', async (req, reply) => {
    if (wantsPretty(req.query)) reply.serializer((payload: unknown) => `${JSON.stringify(payload, null, 2)}\n`);
  });

  // Config bodies are parsed by the config loader (YAML, of which JSON is a subset), so keep them as text.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml', 'application/json', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('*', (_req, _payload, done) => done(new AdminError(ERRORS.BAD_PARAMETER, 'content-type must be application/yaml or application/json'), undefined));

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof AdminError) return send(reply, err.def, err.message, err.issues);
    if (err instanceof UnknownPoolError) return send(reply, ERRORS.UNKNOWN_POOL, err.message);
    if (err instanceof DrillError) return send(reply, err.def, err.message);
    if (err instanceof NothingToApproveError) return send(reply, ERRORS.NO_FAILBACK_AWAITING, err.message);
    if (err.statusCode === 413) return send(reply, ERRORS.BODY_TOO_LARGE, `the request body is larger than ${BODY_LIMIT / 1024 / 1024} MiB`);
    if (err.statusCode !== undefined && err.statusCode < 500) return send(reply, ERRORS.BAD_PARAMETER, err.message);
    ctx.onInternalError?.(err);
    return send(reply, ERRORS.INTERNAL, 'internal error; see the proxy log');
  });
  app.setNotFoundHandler((req, reply) => send(reply, ERRORS.NOT_FOUND, `no admin endpoint ${req.method} ${req.url.split('?')[0]}; GET /openapi.json lists them`));

  authPlugin(app, ctx);

  publicPlugin(app, ctx);
  failoverPlugin(app, ctx);
  configPlugin(app, ctx);
  eventsPlugin(app, ctx);
  decisionPlugin(app, ctx);
  methodNotAllowedPlugin(app, paths);
  return app;
}

export async function listenAdmin(app: FastifyInstance, host: string, port: number): Promise<{ host: string; port: number }> {
  await app.listen({ host: host === '' ? '::' : host, port });
  const a = app.server.address();
  return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port };
}
