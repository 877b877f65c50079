// One proxy pod: what the operator knows about it (address, token, the version it reports, its failover
// status) and the push: `PUT /api/v1/config` only when the rendered version differs from the reported one.
import type { Logger } from './log.ts';
import { AdminApiError, ProxyClient } from './proxies.ts';
import type { PushErrorReason } from './status.ts';
import type { ProxyBase } from '@veloflux/kube/render';
import type { ProxyStatus } from '@veloflux/kube/types';

export interface PodTarget {
  readonly uid: string;
  readonly url: string;
  readonly token: string;
}

/** Everything the operator knows about one proxy pod, kept while the pod is selected and ready. */
export class PodState {
  readonly key: string;
  readonly target: PodTarget;
  readonly client: ProxyClient;
  readonly abort = new AbortController();
  /** The version the proxy last reported (GET /api/v1/config, hello, config_applied). */
  version: string | undefined;
  /** Pod-owned config keys, from GET /api/v1/config. */
  base: ProxyBase | undefined;
  /** Last failover status (hello, or a refresh after an event). */
  status: ProxyStatus | undefined;
  /** The admin API answered the last request, or the event stream is connected. */
  reachable = false;
  /** The operator has tried to read this pod's config at least once (success or not). */
  checked = false;
  /** Message of the last failed push (or config read), cleared by a successful one. */
  pushError: string | undefined;
  /** Why it failed: Unauthorized when the proxy answered 401 to the operator's token. */
  errorReason: PushErrorReason | undefined;
  #refreshing: Promise<void> | undefined;
  #again = false;

  constructor(key: string, target: PodTarget) {
    this.key = key;
    this.target = target;
    this.client = new ProxyClient(target.url, target.token);
  }

  sameTarget(t: PodTarget): boolean {
    return t.uid === this.target.uid && t.url === this.target.url && t.token === this.target.token;
  }

  /** Re-reads the failover status; calls made while one is in flight coalesce into one more read. */
  refreshStatus(log: Logger): Promise<void> {
    if (this.#refreshing) { this.#again = true; return this.#refreshing; }
    this.#refreshing = (async () => {
      do {
        this.#again = false;
        try {
          this.status = await this.client.status();
          this.version = this.status.version;
          this.reachable = true;
        } catch (err) {
          this.reachable = false;
          log.debug({ pod: this.key, err: (err as Error).message }, 'failover status read failed');
        }
      } while (this.#again && !this.abort.signal.aborted);
      this.#refreshing = undefined;
    })();
    return this.#refreshing;
  }
}

export type PushOutcome = 'unchanged' | 'pushed';

/**
 * Brings the pod to `text` (whose version is `version`): reads what it runs, pushes only on a difference.
 * Throws on a failure, so the caller requeues with backoff; a rejected push is recorded in `pushError`.
 */
export async function pushIfChanged(state: PodState, render: (base: ProxyBase) => { text: string; version: string }, log: Logger): Promise<{ outcome: PushOutcome; ms: number; version: string | undefined }> {
  const t0 = performance.now();
  let running;
  try {
    running = await state.client.config();
  } catch (err) {
    state.reachable = false;
    recordFailure(state, err);
    throw err;
  } finally {
    state.checked = true;
  }
  state.reachable = true;
  state.version = running.version;
  state.base = running.base;
  const { text, version } = render(running.base);
  if (version === running.version) {
    state.pushError = undefined;
    state.errorReason = undefined;
    return { outcome: 'unchanged', ms: performance.now() - t0, version };
  }
  try {
    const r = await state.client.push(text);
    state.version = r.version;
    state.pushError = undefined;
    state.errorReason = undefined;
    if (r.version !== version) log.warn({ pod: state.key, rendered: version, reported: r.version }, 'proxy reports another version than rendered');
    return { outcome: 'pushed', ms: performance.now() - t0, version: r.version };
  } catch (err) {
    recordFailure(state, err);
    throw err;
  }
}

/** A 401 means the proxy and the operator hold different admin tokens (a rotation under way). */
export const isUnauthorized = (err: unknown): boolean => err instanceof AdminApiError && err.status === 401;

function recordFailure(state: PodState, err: unknown): void {
  state.pushError = isUnauthorized(err)
    ? `the proxy refuses the operator's admin token (401): ${(err as Error).message.slice(0, 200)}`
    : (err as Error).message.slice(0, 300);
  state.errorReason = isUnauthorized(err) ? 'Unauthorized' : 'PushFailed';
}
