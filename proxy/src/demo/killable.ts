// An HTTP server on 127.0.0.1 that can die like a crashed process (the port refuses connections and every open
// connection is cut) and come back on the same port. The demo's backends are these; so are the tests'.
import { createServer } from 'node:http';
import type { RequestListener, Server } from 'node:http';
import type { Socket } from 'node:net';

export class KillableServer {
  port: number;
  /** Connections accepted since start. */
  connections = 0;
  readonly #handler: RequestListener;
  readonly #keepAliveTimeoutMs: number;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(handler: RequestListener, opts: { port?: number; keepAliveTimeoutMs?: number } = {}) {
    this.#handler = handler;
    this.port = opts.port ?? 0;
    this.#keepAliveTimeoutMs = opts.keepAliveTimeoutMs ?? 5000;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  /** Listens (again) on 127.0.0.1: the first time on the given port or one the OS picks, later on the same one. */
  async listen(): Promise<void> {
    const server = createServer(this.#handler);
    server.keepAliveTimeout = this.#keepAliveTimeoutMs;
    server.on('connection', (s: Socket) => {
      this.connections++;
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
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
}
