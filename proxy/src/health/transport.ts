// How a backend is reached (its pool's protocol and TLS, SPEC 8), shared by the probes (health/) and the data
// plane's connection pools (dataplane/dispatchers.ts, one layer up). Reads the pool's CA file: I/O at the edge.
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import type { BackendConfig, Transport } from '@veloflux/config/types';

/** The pool's CA file could not be read when its connections were set up. A fault of the setup, not the backend. */
export class CaFileError extends Error {
  readonly code = 'VF_UPSTREAM_CA_FILE';
}

/** Identity of a connection pool: the same origin reached by two pools with different transports gets two. */
export function dispatcherKey(b: BackendConfig): string {
  const t = b.transport;
  return `${originOf(b)} ${t.protocol} ${t.tls === undefined ? '' : `${t.tls.caFile ?? ''}|${t.tls.serverName ?? ''}|${t.tls.insecureSkipVerify}`}`;
}

/** The origin connections go to: https:// whenever the transport is secure (protocol h2 on a host:port address). */
export function originOf(b: BackendConfig): string {
  return b.transport.secure ? `https://${b.upstream.host}:${b.upstream.port}` : b.upstream.origin;
}

/** node:tls options for a secure transport: CA, server name, verification. Reads the CA file (I/O). */
export function tlsOptions(t: Transport): ConnectionOptions {
  const o: ConnectionOptions = {};
  if (t.tls === undefined) return o;
  if (t.tls.insecureSkipVerify) o.rejectUnauthorized = false;
  if (t.tls.serverName !== undefined) o.servername = t.tls.serverName;
  if (t.tls.caFile !== undefined) {
    try {
      o.ca = readFileSync(t.tls.caFile);
    } catch (err) {
      throw new CaFileError(`tls.ca_file "${t.tls.caFile}" cannot be read: ${(err as { code?: string }).code ?? (err as Error).message}`);
    }
  }
  return o;
}

