// Real HTTP backends on 127.0.0.1 for tests: they answer, die (connections refused), hang (accept and never
// answer), reset (drop the connection after reading the request) and come back on the same port.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KillableServer } from '../../src/demo/killable.ts';

export type Mode = 'ok' | 'hang' | 'reset' | 'fail-health';

export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export class TestBackend extends KillableServer {
  readonly name: string;
  mode: Mode = 'ok';
  /** Requests that reached the application (health checks excluded). */
  readonly seen: Seen[] = [];
  /** Extra handler for special routes; return true when it answered. */
  handler: ((req: IncomingMessage, res: ServerResponse, body: string) => boolean) | undefined;

  constructor(name: string) {
    super((req, res) => this.#handle(req, res), { keepAliveTimeoutMs: 30_000 });
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
