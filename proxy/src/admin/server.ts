// The admin API (SPEC 3): failover control, status, drills, config, events, metrics, health.
// /api/v1/* needs `Authorization: Bearer <token>` (constant-time compare); errors are `{error: {code, message}}`.
import { createHash, timingSafeEqual } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { ServerResponse } from 'node:http';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseDuration } from '@veloflux/config/duration';
import { ERRORS, errorBody } from '../errors.ts';
import type { ErrorDef } from '../errors.ts';
import type { Located } from '@veloflux/config/load';
import { DrillError, UnknownPoolError } from '../control/api.ts';
import type { ControlApi, DrillOptions, ProxyEvent } from '../control/api.ts';
import { OPENAPI } from './openapi.ts';

export type ApplyResult =
  | { readonly ok: true; readonly version: string; readonly changed: boolean }
  | { readonly ok: false; readonly error: ErrorDef; readonly message: string; readonly issues?: readonly Located[] };

export type { DrillOptions } from '../control/api.ts';

export interface AdminContext {
  readonly controller: () => ControlApi;
  /** The configured token, or undefined when none is. */
  readonly token: () => string | undefined;
  readonly applyConfig: (text: string) => Promise<ApplyResult>;
  /** The running config as a plain object, secrets redacted. */
  readonly configView: () => unknown;
  readonly metrics: () => Promise<{ contentType: string; body: string }>;
  readonly drill: (pool: string, opts: DrillOptions) => Promise<unknown>;
  /** Where unexpected failures are logged (the client only gets VF_ERR_INTERNAL). */
  readonly onInternalError?: (err: Error) => void;
}

/** A failure the handlers throw; the error handler turns it into the JSON error. */
export class AdminError extends Error {
  readonly def: ErrorDef;
  readonly issues: readonly Located[] | undefined;
  constructor(def: ErrorDef, message: string, issues?: readonly Located[]) {
    super(message);
    this.def = def;
    this.issues = issues;
  }
}

const MAX_DRILL_MS = 10 * 60_000;
/** Largest admin request body (a config PUT), bytes. */
export const BODY_LIMIT = 4 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

function send(reply: FastifyReply, def: ErrorDef, message: string, issues?: readonly Located[]): FastifyReply {
  if (def.status === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(def.status).send({ error: { code: def.code, message, ...(issues ? { issues } : {}) } });
}

function poolParam(req: FastifyRequest, controller: ControlApi, required: boolean): string | undefined {
  const q = req.query as Record<string, unknown>;
  const pool = q.pool;
  const known = controller.config.pools.map((p) => `"${p.name}"`).join(', ');
  if (pool === undefined || pool === '') {
    if (!required) return undefined;
    throw new AdminError(ERRORS.BAD_PARAMETER, `query parameter "pool" is required (pools: ${known})`);
  }
  if (typeof pool !== 'string') throw new AdminError(ERRORS.BAD_PARAMETER, 'query parameter "pool" must be given once');
  if (!controller.config.pools.some((p) => p.name === pool)) throw new AdminError(ERRORS.UNKNOWN_POOL, `unknown pool "${pool}" (pools: ${known})`);
  return pool;
}

export function createAdmin(ctx: AdminContext, observe?: { onRoute(method: string, url: string): void }): FastifyInstance {
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
      const body = errorBody(def, message);
      if (socket.writable) socket.write(`HTTP/1.1 ${def.status} ${STATUS_CODES[def.status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      socket.destroy();
    },
  });
  if (observe) app.addHook('onRoute', (r) => { for (const m of [r.method].flat()) observe.onRoute(m, r.url); });
  const streams = new Set<ServerResponse>();

  // Config bodies are parsed by the config loader (YAML, of which JSON is a subset), so keep them as text.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml', 'application/json', 'text/plain'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('*', (_req, _payload, done) => done(new AdminError(ERRORS.BAD_PARAMETER, 'content-type must be application/yaml or application/json'), undefined));

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    if (err instanceof AdminError) return send(reply, err.def, err.message, err.issues);
    if (err instanceof UnknownPoolError) return send(reply, ERRORS.UNKNOWN_POOL, err.message);
    if (err instanceof DrillError) return send(reply, err.def, err.message);
    if (err.statusCode === 413) return send(reply, ERRORS.BODY_TOO_LARGE, `the request body is larger than ${BODY_LIMIT / 1024 / 1024} MiB`);
    if (err.statusCode !== undefined && err.statusCode < 500) return send(reply, ERRORS.BAD_PARAMETER, err.message);
    ctx.onInternalError?.(err);
    return send(reply, ERRORS.INTERNAL, 'internal error; see the proxy log');
  });
  app.setNotFoundHandler((req, reply) => send(reply, ERRORS.NOT_FOUND, `no admin endpoint ${req.method} ${req.url.split('?')[0]}; GET /openapi.json lists them`));

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
  app.addHook('onClose', async () => {
    for (const s of streams) s.end();
  });

  const open = { config: { public: true } };
  app.get('/healthz', open, async () => ({ status: 'ok' }));
  app.get('/readyz', open, async (_req, reply) => {
    if (ctx.controller().ready) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready', reason: 'the first health-check round has not finished' });
  });
  app.get('/metrics', open, async (_req, reply) => {
    const m = await ctx.metrics();
    return reply.header('content-type', m.contentType).send(m.body);
  });
  app.get('/openapi.json', open, async () => OPENAPI);

  app.post('/api/v1/failover/activate', async (req) => {
    const c = ctx.controller();
    return c.activate(poolParam(req, c, true) as string);
  });
  app.post('/api/v1/failover/deactivate', async (req) => {
    const c = ctx.controller();
    return c.deactivate(poolParam(req, c, true) as string);
  });
  app.get('/api/v1/failover/status', async (req) => {
    const c = ctx.controller();
    return { version: c.version, ready: c.ready, pools: c.status(poolParam(req, c, false)) };
  });
  app.post('/api/v1/failover/test', async (req) => {
    const c = ctx.controller();
    const pool = poolParam(req, c, true) as string;
    const q = req.query as Record<string, unknown>;
    const mode = q.mode ?? 'dry-run';
    if (mode !== 'dry-run' && mode !== 'live') throw new AdminError(ERRORS.BAD_PARAMETER, `query parameter "mode" must be "dry-run" or "live", got "${String(mode)}"`);
    let durationMs = 30_000;
    if (q.duration !== undefined) {
      const ms = typeof q.duration === 'string' ? parseDuration(q.duration) : undefined;
      if (ms === undefined || ms < 1000 || ms > MAX_DRILL_MS) throw new AdminError(ERRORS.BAD_PARAMETER, `query parameter "duration" must be a duration from 1s to 10m like "30s", got "${String(q.duration)}"`);
      if (mode !== 'live') throw new AdminError(ERRORS.BAD_PARAMETER, 'query parameter "duration" goes with mode=live');
      durationMs = ms;
    }
    return ctx.drill(pool, { mode, durationMs });
  });
  app.get('/api/v1/config', async () => ({ version: ctx.controller().version, config: ctx.configView() }));
  app.put('/api/v1/config', async (req, reply) => {
    const body = req.body;
    if (typeof body !== 'string' || body.trim() === '') throw new AdminError(ERRORS.BAD_PARAMETER, 'the body must be the whole config, as YAML (content-type application/yaml) or JSON');
    const result = await ctx.applyConfig(body);
    if (!result.ok) return send(reply, result.error, result.message, result.issues);
    return { version: result.version, changed: result.changed };
  });
  // No HEAD twin: an event stream has no end, and a HEAD answer no body to stream.
  app.get('/api/v1/events', { exposeHeadRoute: false }, (req, reply) => {
    const c = ctx.controller();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    let id = 0;
    const write = (type: string, data: unknown): void => {
      res.write(`event: ${type}\nid: ${++id}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    write('hello', { version: c.version, ready: c.ready, pools: c.status() });
    const onEvent = (e: ProxyEvent): void => write(e.type, { ...e, at: new Date(e.at).toISOString() });
    c.on('event', onEvent);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    streams.add(res);
    req.raw.on('close', () => {
      clearInterval(heartbeat);
      c.off('event', onEvent);
      streams.delete(res);
    });
  });
  return app;
}

export async function listenAdmin(app: FastifyInstance, host: string, port: number): Promise<{ host: string; port: number }> {
  await app.listen({ host: host === '' ? '::' : host, port });
  const a = app.server.address();
  return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port };
}
