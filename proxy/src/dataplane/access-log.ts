// The access log (SPEC 11, config `access_log`): one line per request, JSON or the combined format, to stdout or a
// file, sampled. It runs on the request path, so:
// - record() builds one string and appends it to a queue; nothing is written synchronously. A single write is in
//   flight at a time (fs.write on a thread of libuv's pool), so a slow pipe or disk delays only the log.
// - the queue is bounded (DEFAULTS.accessLog.bufferBytes): past it, new lines are dropped and counted
//   (veloflux_access_log_dropped_total), so a stalled disk cannot grow memory without bound.
// - every write is whole lines. With data-plane workers each process has its own AccessLog on the same
//   destination: a file is opened O_APPEND (every write lands at the end, whole), and on stdout (a pipe shared by
//   the workers) writes are at most PIPE_BUF bytes, which POSIX makes atomic, so lines of two workers never mix.
// - reopen() (SIGHUP; the main process forwards it to each worker) opens the path again and switches to it after
//   the write in flight, for logrotate's move-and-signal rotation.
import { close, open, write } from 'node:fs';
import type { ClientRequest, ClientResponse } from './forward.ts';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { AccessLogConfig } from '@veloflux/config/types';
import type { Target } from './plan.ts';

/** POSIX: a pipe write of at most this many bytes is atomic. */
const PIPE_BUF = 4096;
/** A file write carries at most this much (one write per turn of the event loop: large, so bursts do not queue up). */
const FILE_CHUNK = 1024 * 1024;
/** stdout answered EAGAIN (a non-blocking pipe that is full): try again after this long. */
const RETRY_MS = 20;

/** W3C trace context: version-traceid-parentid-flags; the trace id alone is logged. */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** Characters the combined format escapes as \xHH (nginx does the same): quotes, backslash, controls, non-ASCII. */
const UNSAFE = /["\\\u0000-\u001f\u007f-\uffff]/;

export interface AccessLogDeps {
  /** Wall clock, ms (the `time` of a line). */
  readonly now: () => number;
  /** A line was dropped (queue full). */
  readonly dropped: () => void;
  /** Opening or writing the destination failed (logged by the caller; lines are dropped until it works again). */
  readonly failed: (message: string) => void;
  /** Tests: the sampling draw (default Math.random). */
  readonly random?: () => number;
  /** Tests: the queue bound, bytes (default DEFAULTS.accessLog.bufferBytes). */
  readonly bufferBytes?: number;
}

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

/** 02/Dec/2026:00:49:52 +0000 */
function clf(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}

function esc(s: string): string {
  if (!UNSAFE.test(s)) return s;
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\' || c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, '0')}`;
    else if (c > 0x7f) for (const b of Buffer.from(ch)) out += `\\x${b.toString(16)}`;
    else out += ch;
  }
  return out;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export class AccessLog {
  readonly #deps: AccessLogDeps;
  readonly #random: () => number;
  readonly #limit: number;
  #config: AccessLogConfig = { enabled: false, format: 'json', path: '-', sample: 1 };
  /** The destination: 1 (stdout) or an open file; undefined while none is open. */
  #fd: number | undefined;
  /** A reopened file waiting for the write in flight to finish. */
  #next: number | undefined;
  #queue: string[] = [];
  #queued = 0;
  #writing = false;
  #scheduled = false;
  #closed = false;
  /** An open() is under way (close() waits for it, so what is queued is written). */
  #opening = false;
  /** Bumped by every configure/reopen, so a slow open() that lost the race closes its own fd. */
  #generation = 0;

  constructor(deps: AccessLogDeps) {
    this.#deps = deps;
    this.#random = deps.random ?? Math.random;
    this.#limit = deps.bufferBytes ?? DEFAULTS.accessLog.bufferBytes;
  }

  get config(): AccessLogConfig {
    return this.#config;
  }

  /** A new config: a new path (or enabling) opens it; disabling closes the file after the queue is written. */
  configure(next: AccessLogConfig): void {
    const prev = this.#config;
    this.#config = next;
    if (!next.enabled) { if (prev.enabled) this.#retire(); return; }
    if (!prev.enabled || prev.path !== next.path || this.#fd === undefined) this.#openDestination();
  }

  /** Opens the file again (rotation); stdout needs nothing. */
  reopen(): void {
    if (this.#config.enabled && this.#config.path !== '-') this.#openDestination();
  }

  /** One finished request (the hot path): sampled, formatted, queued. */
  record(req: ClientRequest, res: ClientResponse | undefined, pool: string, target: Target | undefined, status: number, attempts: number, startedAt: number, bytes: number, hedged: boolean): void {
    const c = this.#config;
    if (!c.enabled || this.#closed) return;
    if (c.sample < 1 && this.#random() >= c.sample) return;
    const line = c.format === 'json'
      ? this.#json(req, res, pool, target, status, attempts, startedAt, bytes, hedged)
      : this.#combined(req, res, pool, target, status, attempts, startedAt, bytes, hedged);
    if (this.#queued + line.length > this.#limit) { this.#deps.dropped(); return; }
    this.#queue.push(line);
    this.#queued += line.length;
    if (!this.#writing && !this.#scheduled) { this.#scheduled = true; setImmediate(this.#flush); }
  }

  /** Writes what is queued (up to `graceMs`), then closes the file. */
  async close(graceMs = 1000): Promise<void> {
    this.#closed = true;
    const deadline = performance.now() + graceMs;
    while ((this.#queue.length > 0 || this.#writing || this.#opening) && (this.#fd !== undefined || this.#opening) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    this.#generation++;
    this.#closeFd(this.#next);
    this.#next = undefined;
    this.#closeFd(this.#fd);
    this.#fd = undefined;
  }

  #json(req: ClientRequest, res: ClientResponse | undefined, pool: string, target: Target | undefined, status: number, attempts: number, startedAt: number, bytes: number, hedged: boolean): string {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const cut = status === 0;
    const sent = cut ? (res?.statusCode ?? 0) : status;
    const trace = TRACEPARENT.exec(one(req.headers.traceparent) ?? '');
    const ok = sent > 0 && sent < 400 && !cut;
    return `{"time":"${new Date(this.#deps.now()).toISOString()}","client":${JSON.stringify(req.socket.remoteAddress ?? '')},"method":${JSON.stringify(req.method ?? '')},"host":${JSON.stringify(one(req.headers.host ?? req.headers[':authority']) ?? '')},"path":${JSON.stringify(q < 0 ? url : url.slice(0, q))},"protocol":"HTTP/${req.httpVersion}","status":${sent},${cut ? '"cut":true,' : ''}"bytes":${bytes},"duration_ms":${(performance.now() - startedAt).toFixed(3)},"pool":${JSON.stringify(pool)},"level":${target === undefined ? 'null' : target.backend.level},"backend":${target === undefined ? 'null' : JSON.stringify(target.backend.address)},"attempts":${attempts},"rescued":${attempts > 1 && ok},"hedged":${hedged},"trace_id":${trace ? `"${trace[1]}"` : 'null'},"user_agent":${JSON.stringify(one(req.headers['user-agent']) ?? '')},"referer":${JSON.stringify(one(req.headers.referer) ?? '')}}\n`;
  }

  #combined(req: ClientRequest, res: ClientResponse | undefined, pool: string, target: Target | undefined, status: number, attempts: number, startedAt: number, bytes: number, hedged: boolean): string {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const cut = status === 0;
    const sent = cut ? (res?.statusCode ?? 0) : status;
    const trace = TRACEPARENT.exec(one(req.headers.traceparent) ?? '');
    const ok = sent > 0 && sent < 400 && !cut;
    const ref = one(req.headers.referer);
    const ua = one(req.headers['user-agent']);
    return `${req.socket.remoteAddress ?? '-'} - - [${clf(this.#deps.now())}] "${esc(req.method ?? '-')} ${esc(q < 0 ? url : url.slice(0, q))} HTTP/${req.httpVersion}" ${sent} ${bytes} "${ref === undefined ? '-' : esc(ref)}" "${ua === undefined ? '-' : esc(ua)}" host="${esc(one(req.headers.host ?? req.headers[':authority']) ?? '')}" pool="${esc(pool)}" level=${target === undefined ? '-' : target.backend.level} backend=${target === undefined ? '-' : target.backend.address} attempts=${attempts} rescued=${attempts > 1 && ok} hedged=${hedged}${cut ? ' cut=true' : ''} duration_ms=${(performance.now() - startedAt).toFixed(3)} trace_id=${trace ? trace[1] : '-'}\n`;
  }

  #flush = (): void => {
    this.#scheduled = false;
    if (this.#writing) return;
    if (this.#next !== undefined) { this.#closeFd(this.#fd); this.#fd = this.#next; this.#next = undefined; }
    if (this.#queue.length === 0) return;
    const fd = this.#fd;
    if (fd === undefined) return; // opening: the open's callback flushes
    const max = fd === 1 ? PIPE_BUF : FILE_CHUNK;
    // Whole lines, up to `max` bytes (one longer line goes alone: it cannot be split without mixing).
    let text = this.#queue[0] as string;
    let n = 1;
    while (n < this.#queue.length && text.length + (this.#queue[n] as string).length <= max) text += this.#queue[n++];
    const buf = Buffer.from(text);
    this.#writing = true;
    write(fd, buf, 0, buf.length, null, (err, written) => {
      this.#writing = false;
      if (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') { this.#scheduled = true; setTimeout(this.#flush, RETRY_MS); return; }
        // The destination is broken (disk full, closed pipe): drop what was taken and say so; later lines retry.
        this.#take(n);
        this.#deps.failed(`access log: cannot write ${this.#config.path === '-' ? 'stdout' : this.#config.path}: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
      } else if (written < buf.length) {
        // A short write: the rest goes first next time, as one piece.
        this.#take(n);
        const rest = buf.subarray(written).toString();
        this.#queue.unshift(rest);
        this.#queued += rest.length;
      } else {
        this.#take(n);
      }
      // The next write at once (this callback is already asynchronous): on stdout each write is one PIPE_BUF.
      if (this.#queue.length > 0 || this.#next !== undefined) this.#flush();
    });
  };

  #take(n: number): void {
    for (let i = 0; i < n; i++) this.#queued -= (this.#queue[i] as string).length;
    this.#queue.splice(0, n);
  }

  #openDestination(): void {
    const generation = ++this.#generation;
    const path = this.#config.path;
    if (path === '-') { this.#switchTo(1); return; }
    this.#opening = true;
    open(path, 'a', 0o640, (err, fd) => {
      if (generation !== this.#generation) { if (!err) this.#closeFd(fd); return; }
      this.#opening = false;
      if (err) {
        this.#deps.failed(`access log: cannot open ${path}: ${err.code ?? err.message}`);
        return;
      }
      this.#switchTo(fd);
    });
  }

  /** The new destination takes over after the write in flight (the old file is closed then). */
  #switchTo(fd: number): void {
    if (this.#fd === undefined) this.#fd = fd;
    else if (this.#fd !== fd) { this.#closeFd(this.#next); this.#next = fd; }
    if (!this.#writing && !this.#scheduled && (this.#queue.length > 0 || this.#next !== undefined)) { this.#scheduled = true; setImmediate(this.#flush); }
  }

  /** Disabled: what is queued is written, then the file closes. */
  #retire(): void {
    const generation = ++this.#generation;
    const done = (): void => {
      if (generation !== this.#generation) return;
      if (this.#queue.length > 0 || this.#writing) { setTimeout(done, 5); return; }
      this.#closeFd(this.#next);
      this.#next = undefined;
      this.#closeFd(this.#fd);
      this.#fd = undefined;
    };
    done();
  }

  #closeFd(fd: number | undefined): void {
    if (fd !== undefined && fd > 2) close(fd, () => {});
  }
}
