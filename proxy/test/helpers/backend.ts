// Real HTTP backends on 127.0.0.1 for tests: they answer, die (connections refused), hang (accept and never
// answer), reset (drop the connection after reading the request) and come back on the same port.
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Mode = 'ok' | 'hang' | 'reset' | 'fail-health';

export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export class TestBackend {
  readonly name: string;
  port = 0;
  mode: Mode = 'ok';
  /** Requests that reached the application (health checks excluded). */
  readonly seen: Seen[] = [];
  connections = 0;
  /** Extra handler for special routes; return true when it answered. */
  handler: ((req: IncomingMessage, res: ServerResponse, body: string) => boolean) | undefined;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(name: string) {
    this.name = name;
  }

  static async start(name: string): Promise<TestBackend> {
    const b = new TestBackend(name);
    await b.listen();
    return b;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  async listen(): Promise<void> {
    const server = createServer((req, res) => this.#handle(req, res));
    server.keepAliveTimeout = 30_000;
    server.on('connection', (s: Socket) => {
      this.connections++;
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const a = server.address();
    if (typeof a === 'object' && a) this.port = a.port;
    this.#server = server;
  }

  /** Dies: stops listening and cuts every connection, as a killed process would. */
  async kill(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }

  /** Comes back on the same port. */
  async revive(): Promise<void> {
    this.mode = 'ok';
    await this.listen();
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const health = req.url === '/health';
      if (this.mode === 'hang') return; // accepted and read, never answered
      if (this.mode === 'reset') { req.socket.destroy(); if (!health) this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body }); return; }
      if (health) {
        res.writeHead(this.mode === 'fail-health' ? 500 : 200).end('ok');
        return;
      }
      this.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (this.handler?.(req, res, body)) return;
      res.setHeader('x-backend', this.name);
      res.end(this.name);
    });
  }
}

export async function startBackends(...names: string[]): Promise<TestBackend[]> {
  return Promise.all(names.map((n) => TestBackend.start(n)));
}
