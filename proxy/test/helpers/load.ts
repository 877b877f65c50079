// A bounded load loop: `concurrency` keep-alive clients sending requests until `durationMs` passes or
// `maxRequests` have been sent, whichever comes first. Records every outcome.
import { Agent, request } from 'undici';

export interface LoadResult {
  sent: number;
  ok: number;
  /** Non-2xx statuses and transport errors, with what they were. */
  failures: string[];
  byBackend: Map<string, number>;
}

export async function runLoad(url: string, opts: { concurrency: number; durationMs: number; maxRequests: number; method?: string; path?: string; stop?: () => boolean; headers?: Record<string, string> }): Promise<LoadResult> {
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: opts.concurrency });
  const result: LoadResult = { sent: 0, ok: 0, failures: [], byBackend: new Map() };
  const deadline = Date.now() + opts.durationMs;
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline && result.sent < opts.maxRequests && !(opts.stop?.() ?? false)) {
      result.sent++;
      try {
        const res = await request(`${url}${opts.path ?? '/load'}`, { method: (opts.method ?? 'GET') as 'GET', dispatcher: agent, headersTimeout: 20_000, bodyTimeout: 20_000, ...(opts.headers ? { headers: opts.headers } : {}) });
        const text = await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) {
          result.ok++;
          result.byBackend.set(text, (result.byBackend.get(text) ?? 0) + 1);
        } else {
          result.failures.push(`${res.statusCode} ${text.slice(0, 200)}`);
        }
      } catch (err) {
        result.failures.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, worker));
  await agent.close();
  return result;
}
