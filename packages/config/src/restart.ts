// The fields a running proxy cannot change without a restart, as data: the proxy's PUT /api/v1/config refuses a
// change to any of them (VF_ERR_CONFIG_RESTART_REQUIRED, whose message lists them), and the operator keeps each
// one exactly as the running proxy reports it when it renders a push (packages/config/src/serialize.ts writes
// them back in config.yaml form). One list, so the two cannot drift (they did: a non-default
// dataplane.young_generation_mb was pushed back as the default and refused on every push).
import type { Config } from './types.ts';

/**
 * What a restart-only field is read from: the pod-owned part of the resolved config (the operator keeps it from
 * the running proxy). The access log is the pod's too, but changes live; a proxy older than it (or than the TLS
 * listener) reports none.
 */
export type PodOwned = Pick<Config, 'listen' | 'admin' | 'region' | 'dataplane'> & { readonly accessLog?: Config['accessLog']; readonly tls?: Config['tls'] };

export interface RestartOnlyField {
  /** The config.yaml path. */
  readonly path: string;
  /** Its value in the resolved config. */
  readonly read: (c: PodOwned) => unknown;
}

export const RESTART_ONLY: readonly RestartOnlyField[] = [
  { path: 'listen', read: (c) => c.listen },
  { path: 'admin.listen', read: (c) => c.admin.listen },
  { path: 'admin.token_file', read: (c) => c.admin.tokenFile },
  { path: 'dataplane.workers', read: (c) => c.dataplane.workers },
  { path: 'dataplane.young_generation_mb', read: (c) => c.dataplane.youngGenerationMb },
  // The listener and the certificate files it reads are the pod's (the chart mounts them); the files' contents
  // are re-read while it runs (proxy/src/dataplane/certs.ts).
  { path: 'tls', read: (c) => c.tls ?? null },
];

export const RESTART_ONLY_PATHS: readonly string[] = RESTART_ONLY.map((f) => f.path);

/** The restart-only fields `next` changes against `running`, in list order; empty when it changes none. */
export function restartRequired(running: PodOwned, next: PodOwned): string[] {
  return RESTART_ONLY.filter((f) => JSON.stringify(f.read(running)) !== JSON.stringify(f.read(next))).map((f) => f.path);
}
