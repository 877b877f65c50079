// Forwarding one request, with per-request rescue. This is the hot path: one object per request, which is also
// undici's dispatch handler, so no stream wrappers, promises or closures per attempt. (Measured: undici's
// `dispatch` with a handler beats `pool.stream` and `pool.request` + `pipeline`; see bench/.)
//
// Rescue rules (SPEC 2): a failed attempt is retried on the next candidate (same level, then the next levels)
// while attempts remain and the retry budget allows. Idempotent methods are retried always (a small body is
// kept so it can be sent again); other methods only when the failure happened before the request was sent,
// which undici tells us: `onRequestStart` runs just before the first byte is written to the socket.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { DEFAULTS } from '../config/defaults.ts';
import { ERRORS, errorBody } from '../errors.ts';
import type { ErrorDef } from '../errors.ts';
import type { PoolPlan, Target } from './plan.ts';

type Controller = Dispatcher.DispatchController;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** Hop-by-hop headers (RFC 9110 7.6.1), never forwarded; undici also refuses some of them. */
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization', 'expect']);

export interface ForwardSettings {
  readonly maxAttempts: number;
  readonly retryBudgetPercent: number;
  readonly headerTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

export interface ForwardHooks {
  /** A backend failed in a way that says something about its health (refused, reset, timed out). */
  passive(target: Target, error: string): void;
  /** A request finished: status sent to the client (0 when the connection was cut), attempts made. */
  done(pool: string, target: Target | undefined, status: number, attempts: number, startedAt: number): void;
}

/** Shared counters for the retry budget: retries in flight <= max(min, percent of requests in flight). */
export class Budget {
  inflight = 0;
  retrying = 0;
  readonly #percent: number;
  constructor(percent: number) {
    this.#percent = percent;
  }
  allows(): boolean {
    return this.retrying < Math.max(DEFAULTS.dataplane.retryBudgetMinConcurrent, (this.inflight * this.#percent) / 100);
  }
}

export function sendError(res: ServerResponse, e: ErrorDef, message: string, extra?: Record<string, string>): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(e, message);
  res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

interface Failure {
  readonly error: ErrorDef;
  /** Says something about the backend's health. */
  readonly passive: boolean;
}

function classify(err: Error & { code?: string }): Failure {
  const code = err.code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return { error: ERRORS.UPSTREAM_TIMEOUT, passive: true };
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return { error: ERRORS.UPSTREAM_CONNECT, passive: true };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return { error: ERRORS.UPSTREAM_RESET, passive: true };
    case 'UND_ERR_ABORTED':
      return { error: ERRORS.UPSTREAM_RESET, passive: false };
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
      return { error: ERRORS.BAD_REQUEST, passive: false };
    default:
      return code.startsWith('HPE_') ? { error: ERRORS.UPSTREAM_PROTOCOL, passive: true } : { error: ERRORS.UPSTREAM_RESET, passive: true };
  }
}

/** Request headers for the backend: hop-by-hop removed, X-Forwarded-* set, Host kept. */
export function upstreamHeaders(req: IncomingMessage, proto: string): string[] {
  const h = req.headers;
  const out: string[] = [];
  const conn = h.connection;
  // Headers named in Connection are hop-by-hop too (rare: only look when Connection lists more than the usual).
  const extra = conn !== undefined && conn !== 'keep-alive' && conn !== 'close' && conn !== 'Keep-Alive'
    ? new Set(conn.toLowerCase().split(',').map((t) => t.trim())) : undefined;
  let xff: string | undefined;
  for (const name in h) {
    if (HOP.has(name) || extra?.has(name)) continue;
    const value = h[name];
    if (value === undefined) continue;
    if (name === 'x-forwarded-for') { xff = Array.isArray(value) ? value.join(', ') : value; continue; }
    if (name === 'x-forwarded-proto' || name === 'x-forwarded-host') continue;
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  const client = req.socket.remoteAddress ?? '';
  out.push('x-forwarded-for', xff ? `${xff}, ${client}` : client, 'x-forwarded-proto', proto);
  if (h.host !== undefined) out.push('x-forwarded-host', h.host);
  return out;
}

/** Response headers for the client: hop-by-hop removed (node sets its own framing). */
function downstreamHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  const conn = headers.connection;
  const extra = typeof conn === 'string' && conn !== 'keep-alive' && conn !== 'close'
    ? new Set(conn.toLowerCase().split(',').map((t) => t.trim())) : undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP.has(name) || extra?.has(name)) continue;
    out[name] = value;
  }
  return out;
}

export class Exchange implements Dispatcher.DispatchHandler {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #plan: PoolPlan;
  readonly #settings: ForwardSettings;
  readonly #budget: Budget;
  readonly #hooks: ForwardHooks;
  readonly #options: Dispatcher.DispatchOptions;
  readonly #startedAt: number;
  readonly #firstLevel: number;
  /** Whether the request body can be sent again (none, or kept in memory). */
  readonly #replayable: boolean;
  #target: Target;
  #tried: Set<Target> | undefined;
  #attempts = 0;
  #sent = false;
  #controller: Controller | undefined;
  #retrying = false;
  #finished = false;

  constructor(req: IncomingMessage, res: ServerResponse, plan: PoolPlan, first: Target, body: Buffer | IncomingMessage | null, headers: string[], settings: ForwardSettings, budget: Budget, hooks: ForwardHooks) {
    this.#req = req;
    this.#res = res;
    this.#plan = plan;
    this.#settings = settings;
    this.#budget = budget;
    this.#hooks = hooks;
    this.#target = first;
    this.#firstLevel = first.backend.level;
    this.#startedAt = performance.now();
    this.#replayable = body === null || Buffer.isBuffer(body);
    this.#options = {
      path: req.url as string,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body,
      headersTimeout: settings.headerTimeoutMs,
      bodyTimeout: settings.idleTimeoutMs,
    };
    budget.inflight++;
    res.on('close', this.#onClientClose);
  }

  start(): void {
    this.#attempts++;
    this.#sent = false;
    this.#controller = undefined;
    try {
      this.#target.dispatcher.dispatch(this.#options, this);
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #onClientClose = (): void => {
    if (this.#finished) return;
    // The client went away before the response was complete: stop the upstream exchange too.
    this.#controller?.abort(new Error('client closed the connection'));
    this.#finish(0);
  };

  onRequestStart(controller: Controller): void {
    this.#sent = true;
    this.#controller = controller;
    if (this.#finished) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (this.#finished) return;
    const res = this.#res;
    if (statusMessage) res.writeHead(statusCode, statusMessage, downstreamHeaders(headers));
    else res.writeHead(statusCode, downstreamHeaders(headers));
    this.#controller = controller;
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#finished) return;
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    if (this.#finished) return;
    this.#res.end();
    this.#finish(this.#res.statusCode);
  }

  onResponseError(_controller: Controller, err: Error): void {
    this.#fail(err);
  }

  #fail(err: Error): void {
    if (this.#finished) return;
    const failure = classify(err as Error & { code?: string });
    if (failure.passive) this.#hooks.passive(this.#target, (err as { code?: string }).code ?? err.message);
    const res = this.#res;
    if (res.headersSent) {
      // Part of the response is out: the only honest thing left is to cut the client connection.
      res.destroy();
      this.#finish(0);
      return;
    }
    if (failure.passive && this.#attempts < this.#settings.maxAttempts && (!this.#sent || (this.#replayable && IDEMPOTENT.has(this.#req.method ?? ''))) && this.#budget.allows()) {
      const tried = (this.#tried ??= new Set());
      tried.add(this.#target);
      const next = this.#plan.next(this.#firstLevel, tried);
      if (next !== undefined) {
        if (!this.#retrying) { this.#retrying = true; this.#budget.retrying++; }
        this.#target = next;
        this.start();
        return;
      }
    }
    sendError(res, failure.error, `${failure.error.summary} (pool "${this.#plan.name}", ${this.#attempts} attempt${this.#attempts === 1 ? '' : 's'})`);
    this.#finish(failure.error.status);
  }

  #finish(status: number): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#budget.inflight--;
    if (this.#retrying) this.#budget.retrying--;
    this.#res.off('close', this.#onClientClose);
    this.#hooks.done(this.#plan.name, this.#target, status, this.#attempts, this.#startedAt);
  }
}
