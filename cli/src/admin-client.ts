// The proxy's admin API as the CLI calls it (SPEC 3): one request per call, the bearer token in a header and
// nowhere else (never in a message, an error or the output). Every failure is a typed outcome the commands map
// to an exit code: the proxy answered with an error, or it could not be reached at all.
import { request } from 'undici';

export const DEFAULT_ADMIN = 'http://127.0.0.1:9000';

/** What the API answered: the status, the body text, and the parsed JSON when it is JSON. */
export interface Answer {
  readonly status: number;
  readonly text: string;
  readonly json: unknown;
  readonly contentType: string;
}

/** The proxy could not be reached (refused, timed out, DNS, TLS): exit code 3. */
export class UnreachableError extends Error {}

/** The proxy answered with an error: `{error: {code, message}}`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues: readonly { path: string; message: string; line?: number }[];
  /** The file the body came from (config put), to name in each problem. */
  file: string | undefined;
  constructor(status: number, code: string, message: string, issues: ApiError['issues'] = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

/** Checks --admin: an http(s) URL with a host and nothing but a path prefix; returns it without trailing slashes. */
export function parseAdminUrl(text: string): string | { error: string } {
  let u: URL;
  try { u = new URL(text); } catch { return { error: `--admin must be a URL like ${DEFAULT_ADMIN}, got "${text}"` }; }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { error: `--admin must be an http:// or https:// URL, got "${text}"` };
  if (u.username || u.password || u.search || u.hash) return { error: `--admin must not carry credentials, a query or a fragment (the token comes from VELOFLUX_ADMIN_TOKEN or --token-file), got "${u.protocol}//${u.host}${u.pathname}"` };
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

export class AdminClient {
  readonly base: string;
  readonly #token: string;
  readonly #timeoutMs: number;

  constructor(base: string, token: string, timeoutMs = 60_000) {
    this.base = base;
    this.#token = token;
    this.#timeoutMs = timeoutMs;
  }

  /** One call; an error answer throws ApiError, a network failure UnreachableError. */
  async call(method: 'GET' | 'POST' | 'PUT', path: string, opts: { body?: string; type?: string; timeoutMs?: number } = {}): Promise<Answer> {
    const url = `${this.base}${path}`;
    const timeout = opts.timeoutMs ?? this.#timeoutMs;
    let res;
    try {
      res = await request(url, {
        method,
        headers: { authorization: `Bearer ${this.#token}`, ...(opts.body !== undefined ? { 'content-type': opts.type ?? 'application/yaml' } : {}) },
        ...(opts.body !== undefined ? { body: opts.body } : {}),
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
    } catch (err) {
      throw new UnreachableError(`cannot reach the admin API at ${this.base}: ${describeNetError(err)}`);
    }
    let text: string;
    try { text = await res.body.text(); } catch (err) { throw new UnreachableError(`the admin API at ${this.base} broke off its answer: ${describeNetError(err)}`); }
    const contentType = String(res.headers['content-type'] ?? '');
    let json: unknown;
    if (contentType.startsWith('application/json')) {
      try { json = JSON.parse(text); } catch { json = undefined; }
    }
    if (res.statusCode >= 400) {
      const e = (json as { error?: { code?: unknown; message?: unknown; issues?: unknown } } | undefined)?.error;
      if (e && typeof e.code === 'string' && typeof e.message === 'string') throw new ApiError(res.statusCode, e.code, e.message, Array.isArray(e.issues) ? e.issues as ApiError['issues'] : []);
      throw new ApiError(res.statusCode, `HTTP_${res.statusCode}`, `${method} ${path} answered ${res.statusCode} (not a VeloFlux admin API error: is ${this.base} a VeloFlux proxy's admin port?)`);
    }
    return { status: res.statusCode, text, json, contentType };
  }

  /** GET a server-sent event stream; calls `onEvent` per event until the stream ends or `signal` aborts. */
  async events(onEvent: (type: string, data: string) => void, signal: AbortSignal): Promise<'ended' | 'aborted'> {
    let res;
    try {
      res = await request(`${this.base}/api/v1/events`, { method: 'GET', headers: { authorization: `Bearer ${this.#token}`, accept: 'text/event-stream' }, signal, headersTimeout: this.#timeoutMs, bodyTimeout: 0 });
    } catch (err) {
      if (signal.aborted) return 'aborted';
      throw new UnreachableError(`cannot reach the admin API at ${this.base}: ${describeNetError(err)}`);
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      let e: { code?: string; message?: string } | undefined;
      try { e = (JSON.parse(text) as { error?: typeof e }).error; } catch { e = undefined; }
      throw new ApiError(res.statusCode, e?.code ?? `HTTP_${res.statusCode}`, e?.message ?? `GET /api/v1/events answered ${res.statusCode}`);
    }
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += (chunk as Buffer).toString();
        // Bound what a peer that never ends an event can make us hold.
        if (buffer.length > 16 * 1024 * 1024) throw new UnreachableError('the event stream sent an event over 16 MiB');
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let type = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) type = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length > 0) onEvent(type, data.join('\n'));
        }
      }
    } catch (err) {
      if (signal.aborted) return 'aborted';
      if (err instanceof UnreachableError) throw err;
      throw new UnreachableError(`the event stream from ${this.base} broke off: ${describeNetError(err)}`);
    }
    return signal.aborted ? 'aborted' : 'ended';
  }
}

function describeNetError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const code = e.code ?? e.cause?.code;
  const what: Record<string, string> = {
    ECONNREFUSED: 'connection refused (is the proxy running, and is this its admin.listen address?)',
    ENOTFOUND: 'no such host',
    UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
    UND_ERR_BODY_TIMEOUT: 'no answer in time',
    UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
    ECONNRESET: 'the connection was reset',
    UND_ERR_SOCKET: 'the connection closed',
  };
  return code ? (what[code] ?? code) : (e.message ?? String(err));
}
