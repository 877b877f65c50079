// Listening on a node server: resolves with the address actually bound (port 0 -> the port the OS chose),
// rejects with the listen error (EADDRINUSE, EACCES) instead of crashing on an unhandled 'error' event.
import type { Server } from 'node:net';

export interface BoundAddress {
  readonly host: string;
  readonly port: number;
}

/** `host` "" = every interface. */
export function listen(server: Server, host: string, port: number): Promise<BoundAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: host === '' ? undefined : host, port }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port });
    });
  });
}
