// Active HTTP health checks: GET path, fresh connection each time (so a refused connection shows at once, as in
// HAProxy), bounded by the check's timeout; the body is drained and ignored.
import { Agent, request } from 'undici';
import type { BackendConfig } from '@veloflux/config/types';

export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

export class Prober {
  readonly #agent = new Agent({ pipelining: 0, keepAliveTimeout: 1, connections: 4 });
  readonly #headers: Record<string, string>;

  /** SPEC 2: probes say what they are and which proxy sends them (a backend, or a test, can tell replicas apart). */
  constructor(identity: { readonly proxyId: string; readonly version: string } = { proxyId: 'veloflux-proxy', version: '0' }) {
    this.#headers = { 'user-agent': `veloflux-health-check/${identity.version}`, 'x-veloflux-proxy': identity.proxyId };
  }

  async probe(b: BackendConfig): Promise<ProbeResult> {
    const hc = b.healthCheck;
    try {
      const res = await request(`${b.upstream.origin}${hc.path}`, {
        method: 'GET',
        dispatcher: this.#agent,
        reset: true,
        headers: this.#headers,
        headersTimeout: hc.timeoutMs,
        bodyTimeout: hc.timeoutMs,
        signal: AbortSignal.timeout(hc.timeoutMs),
      });
      await res.body.dump({ limit: 64 * 1024 });
      if (res.statusCode === hc.expectedStatus) return { ok: true };
      return { ok: false, error: `status ${res.statusCode}, expected ${hc.expectedStatus}` };
    } catch (err) {
      const e = err as Error & { code?: string };
      const code = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : (e.code ?? e.message);
      return { ok: false, error: code === 'timeout' ? `timeout after ${hc.timeoutMs}ms` : code };
    }
  }

  async close(): Promise<void> {
    await this.#agent.close().catch(() => this.#agent.destroy());
  }
}
