// Real receivers for notification tests, on 127.0.0.1:0: an SMTP server (smtp-server, with a self-signed
// certificate made by openssl, AUTH and STARTTLS or implicit TLS), webhook receivers (node:http) that answer,
// fail or hang, and an SMTP server that accepts connections and never greets.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Server as NetServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SMTPServer } from 'smtp-server';
import { createLogger } from '@veloflux/service/log';
import type { Logger } from '@veloflux/service/log';
import { SERVICE } from '../../src/runtime/log.ts';

/** Resolves when `cond()` holds, checked on each `signal` call; rejects after `timeoutMs`. */
class Waiters {
  readonly #waiters = new Set<() => void>();
  wait(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => { if (cond()) { clearTimeout(timer); this.#waiters.delete(check); resolve(); } };
      const timer = setTimeout(() => { this.#waiters.delete(check); reject(new Error(`timed out after ${timeoutMs}ms waiting for ${what}`)); }, timeoutMs);
      this.#waiters.add(check);
    });
  }
  signal(): void {
    for (const w of [...this.#waiters]) w();
  }
}

// --- certificates ----------------------------------------------------------------------------------------------

export interface TestCert {
  readonly key: string;
  readonly cert: string;
  /** The certificate as a file, to trust it (email channel `ca_file`). */
  readonly certFile: string;
  remove(): void;
}

/** A self-signed certificate for 127.0.0.1 and localhost (EC P-256: generated in milliseconds). */
export function makeCert(): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'veloflux-cert-'));
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile,
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
  return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), certFile, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

// --- SMTP ----------------------------------------------------------------------------------------------------

export interface Mail {
  readonly from: string;
  readonly to: readonly string[];
  /** Session state when the message arrived. */
  readonly secure: boolean;
  readonly user: string | undefined;
  /** Header names lower-case, values unfolded. */
  readonly headers: ReadonlyMap<string, string>;
  /** Body decoded from quoted-printable. */
  readonly text: string;
}

export interface TestSmtp {
  readonly port: number;
  readonly mails: Mail[];
  readonly authAttempts: Array<{ user: string; ok: boolean }>;
  waitMails(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Quoted-printable (`s` holds one byte per char): soft line breaks out, =XX to bytes, then UTF-8. */
function decodeQp(s: string): string {
  const bytes = s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'binary').toString('utf8');
}

export function parseMail(raw: string): { headers: Map<string, string>; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n(?=[ \t])/g, '');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
  }
  const body = raw.slice(split + 4);
  const qp = /quoted-printable/i.test(headers.get('content-transfer-encoding') ?? '');
  return { headers, text: (qp ? decodeQp(body) : body).replace(/\r\n/g, '\n') };
}

export async function startSmtp(opts: { cert: TestCert; secure: boolean; user: string; password: string }): Promise<TestSmtp> {
  const mails: Mail[] = [];
  const authAttempts: TestSmtp['authAttempts'] = [];
  const waiters = new Waiters();
  const server = new SMTPServer({
    secure: opts.secure,
    key: opts.cert.key,
    cert: opts.cert.cert,
    logger: false,
    authMethods: ['PLAIN', 'LOGIN'],
    // No allowInsecureAuth: AUTH is refused before TLS, so a delivery that authenticated went through STARTTLS.
    onAuth(auth, _session, cb) {
      const ok = auth.username === opts.user && auth.password === opts.password;
      authAttempts.push({ user: auth.username ?? '', ok });
      if (ok) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Authentication failed'), { responseCode: 535 }));
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const { headers, text } = parseMail(Buffer.concat(chunks).toString('binary'));
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          secure: session.secure,
          user: session.user as string | undefined,
          headers,
          text,
        });
        cb();
        waiters.signal();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const a = server.server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    port,
    mails,
    authAttempts,
    waitMails: (count, timeoutMs = 5000) => waiters.wait(() => mails.length >= count, timeoutMs, `${count} mails (got ${mails.length})`),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Accepts TCP connections and never says a word (no SMTP greeting): a hung mail server. */
export interface HungServer {
  readonly port: number;
  connections: number;
  waitConnections(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startHungSmtp(): Promise<HungServer> {
  const sockets = new Set<Socket>();
  const waiters = new Waiters();
  const state = { connections: 0 };
  const server: NetServer = createNetServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    waiters.signal();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    get connections() { return state.connections; },
    waitConnections: (count, timeoutMs = 5000) => waiters.wait(() => state.connections >= count, timeoutMs, `${count} connections`),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// --- webhooks ------------------------------------------------------------------------------------------------

export interface Hook {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The exact body bytes, as text. */
  readonly body: string;
  readonly json: Record<string, unknown>;
}

export interface TestReceiver {
  readonly port: number;
  readonly url: string;
  readonly received: Hook[];
  /** Status for each request in turn (the last one repeats); 'hang' accepts and never answers. */
  replies: Array<number | 'hang'>;
  /** Requests received and not answered (hanging). */
  readonly open: number;
  waitRequests(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** `path` is the URL's path: webhook URLs carry their credential there, as Slack's and Discord's do. */
export async function startReceiver(path = '/hook', replies: Array<number | 'hang'> = [200]): Promise<TestReceiver> {
  const received: Hook[] = [];
  const waiters = new Waiters();
  const sockets = new Set<Socket>();
  const state = { open: 0, replies };
  const server: Server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, unknown> = {};
      try { json = JSON.parse(body) as Record<string, unknown>; } catch { /* asserted by the tests */ }
      const reply = state.replies.length > 1 ? state.replies.shift() : state.replies[0];
      received.push({ path: req.url ?? '', headers: req.headers, body, json });
      if (reply === 'hang') {
        state.open++;
        res.on('close', () => { state.open--; });
      } else {
        res.writeHead(reply ?? 200, { 'content-type': 'text/plain' }).end('ok');
      }
      waiters.signal();
    });
  });
  server.on('connection', (s: Socket) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const a = server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  return {
    port,
    url: `http://127.0.0.1:${port}${path}`,
    received,
    get replies() { return state.replies; },
    set replies(r) { state.replies = r; },
    get open() { return state.open; },
    waitRequests: (count, timeoutMs = 5000) => waiters.wait(() => received.length >= count, timeoutMs, `${count} webhook requests (got ${received.length})`),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// --- logs and counters ---------------------------------------------------------------------------------------

export function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } });
  return { log: createLogger(SERVICE, { level: 'trace', destination: sink }), lines };
}

export class Counts {
  readonly seen: Array<{ channel: string; ok: boolean }> = [];
  readonly #waiters = new Waiters();
  delivered(channel: string, ok: boolean): void {
    this.seen.push({ channel, ok });
    this.#waiters.signal();
  }
  count(channel: string, ok: boolean): number {
    return this.seen.filter((s) => s.channel === channel && s.ok === ok).length;
  }
  wait(channel: string, ok: boolean, n: number, timeoutMs = 5000): Promise<void> {
    return this.#waiters.wait(() => this.count(channel, ok) >= n, timeoutMs, `${n} ${ok ? 'delivered' : 'failed'} on ${channel} (seen ${JSON.stringify(this.seen)})`);
  }
}
