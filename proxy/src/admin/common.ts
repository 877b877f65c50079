// What the admin API's plugins share: the context they serve from, the error they throw and the one error shape
// they answer with (`{error: {code, message}}`).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS } from '../errors.ts';
import type { ErrorDef } from '../errors.ts';
import type { Located } from '@veloflux/config/load';
import type { ControlApi, DrillOptions } from '../control/api.ts';

export type ApplyResult =
  | { readonly ok: true; readonly version: string; readonly changed: boolean }
  | { readonly ok: false; readonly error: ErrorDef; readonly message: string; readonly issues?: readonly Located[] };

export interface AdminContext {
  readonly controller: () => ControlApi;
  /** The configured token, or undefined when none is. */
  readonly token: () => string | undefined;
  readonly applyConfig: (text: string) => Promise<ApplyResult>;
  /** The running config as a plain object, secrets redacted. */
  readonly configView: () => unknown;
  /** The running config as the config.yaml document the proxy accepts, secrets redacted (`?format=yaml`). */
  readonly configYaml: () => string;
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

export type { DrillOptions } from '../control/api.ts';


/**
 * A part of the admin app (auth, failover, config, events): it adds its hooks and routes to the app itself.
 * Applied in createAdmin synchronously and in the app's own context, not through fastify's register(): the
 * routes exist as soon as createAdmin returns, and the one auth gate and the error handler cover every route and
 * the 404 handler exactly as if they were declared in one function (an encapsulated plugin would get its own).
 */
export type AdminPlugin = (app: FastifyInstance, ctx: AdminContext) => void;

export function send(reply: FastifyReply, def: ErrorDef, message: string, issues?: readonly Located[]): FastifyReply {
  if (def.status === 401) reply.header('www-authenticate', 'Bearer');
  return reply.code(def.status).send({ error: { code: def.code, message, ...(issues ? { issues } : {}) } });
}

export function poolParam(req: FastifyRequest, controller: ControlApi, required: boolean): string | undefined {
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

