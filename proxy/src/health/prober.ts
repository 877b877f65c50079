// Active health checks, by health_check.type (SPEC 2, 8), each on a fresh connection (so a refused connection shows
// at once, as in HAProxy) and bounded by the check's timeout:
//   http  GET path over the pool's transport; healthy on expected_status; the body is drained and ignored.
//   grpc  grpc.health.v1.Health/Check for `service` over HTTP/2 (TLS when the transport is secure, else h2c);
//         healthy on grpc-status 0 and SERVING. NOT_SERVING, SERVICE_UNKNOWN, any other grpc-status, garbage
//         bytes, a response past 64 KiB and silence are failures, each with its reason.
//   tcp   a connection is accepted (nothing is sent, no TLS handshake).
// Every probe that speaks HTTP carries `User-Agent: veloflux-health-check/<version>` and
// `X-VeloFlux-Proxy: <proxy id>` (for grpc they are metadata, lower-case, as HTTP/2 requires).
import { readFileSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { hostname } from 'node:os';
import { Agent, request } from 'undici';
import type { BackendConfig, Transport } from '@veloflux/config/types';
import { HEALTH_CHECK_PATH, decodeHealthResponse, encodeHealthRequest } from './grpc-health.ts';
import { originOf, tlsOptions } from './transport.ts';

export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

/** What a probe reads of a response body at most. */
const BODY_LIMIT = 64 * 1024;

function productVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0';
  } catch {
    return '0';
  }
}

/** grpc-message is percent-encoded UTF-8 (gRPC over HTTP/2); a backend's own text, so cut short for the logs. */
function grpcMessage(m: string): string {
  let text = m.slice(0, 600);
  try { text = decodeURIComponent(text); } catch { /* not valid percent-encoding: shown as sent */ }
  return text.slice(0, 200);
}

export interface ProbeIdentity {
  readonly userAgent: string;
  /** SPEC 2: the pod name in Kubernetes (env POD_NAME), else the host name. */
  readonly proxyId: string;
}

export function defaultIdentity(): ProbeIdentity {
  return { userAgent: `veloflux-health-check/${productVersion()}`, proxyId: process.env.POD_NAME || hostname() };
}

function transportKey(t: Transport): string {
  return `${t.protocol} ${t.secure} ${t.tls === undefined ? '' : `${t.tls.caFile ?? ''}|${t.tls.serverName ?? ''}|${t.tls.insecureSkipVerify}`}`;
}

export class Prober {
  readonly #identity: ProbeIdentity;
  /** HTTP probes: one undici Agent per transport (TLS settings, h2c), no keep-alive. */
  readonly #agents = new Map<string, Agent>();
  readonly #sessions = new Set<ClientHttp2Session>();

  constructor(identity: ProbeIdentity = defaultIdentity()) {
    this.#identity = identity;
  }

  async probe(b: BackendConfig): Promise<ProbeResult> {
    switch (b.healthCheck.type) {
      case 'tcp': return this.#tcp(b);
      case 'grpc': return this.#grpc(b);
      default: return this.#http(b);
    }
  }

  #agent(t: Transport): Agent {
    const key = transportKey(t);
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      const base = { pipelining: 0, keepAliveTimeout: 1, connections: 4 };
      agent = t.protocol === 'h2c'
        ? new Agent({ ...base, allowH2: true, useH2c: true } as Agent.Options)
        : new Agent({ ...base, allowH2: t.secure && t.protocol !== 'http1', connect: tlsOptions(t) });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  async #http(b: BackendConfig): Promise<ProbeResult> {
    const hc = b.healthCheck;
    try {
      const res = await request(`${originOf(b)}${hc.path}`, {
        method: 'GET',
        dispatcher: this.#agent(b.transport),
        reset: true,
        headers: { 'user-agent': this.#identity.userAgent, 'x-veloflux-proxy': this.#identity.proxyId },
        headersTimeout: hc.timeoutMs,
        bodyTimeout: hc.timeoutMs,
        signal: AbortSignal.timeout(hc.timeoutMs),
      });
      await res.body.dump({ limit: BODY_LIMIT });
      if (res.statusCode === hc.expectedStatus) return { ok: true };
      return { ok: false, error: `status ${res.statusCode}, expected ${hc.expectedStatus}` };
    } catch (err) {
      const e = err as Error & { code?: string };
      const code = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : (e.code ?? e.message);
      return { ok: false, error: code === 'timeout' ? `timeout after ${hc.timeoutMs}ms` : code };
    }
  }

  #tcp(b: BackendConfig): Promise<ProbeResult> {
    const hc = b.healthCheck;
    return new Promise((resolve) => {
      const host = b.upstream.host.replace(/^\[(.*)\]$/, '$1');
      const socket = tcpConnect({ host, port: b.upstream.port });
      const done = (r: ProbeResult): void => { clearTimeout(timer); socket.destroy(); resolve(r); };
      const timer = setTimeout(() => done({ ok: false, error: `timeout after ${hc.timeoutMs}ms` }), hc.timeoutMs);
      socket.once('connect', () => done({ ok: true }));
      socket.once('error', (err: Error & { code?: string }) => done({ ok: false, error: err.code ?? err.message }));
    });
  }

  #grpc(b: BackendConfig): Promise<ProbeResult> {
    const hc = b.healthCheck;
    const t = b.transport;
    return new Promise((resolve) => {
      let settled = false;
      let session: ClientHttp2Session | undefined;
      const done = (r: ProbeResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (session !== undefined) { this.#sessions.delete(session); session.destroy(); }
        resolve(r);
      };
      const timer = setTimeout(() => done({ ok: false, error: `timeout after ${hc.timeoutMs}ms` }), hc.timeoutMs);
      try {
        session = t.secure
          ? h2connect(originOf(b), { ...tlsOptions(t), ALPNProtocols: ['h2'], maxHeaderListPairs: 64, maxSessionMemory: 1 })
          : h2connect(originOf(b), { maxHeaderListPairs: 64, maxSessionMemory: 1 });
      } catch (err) {
        done({ ok: false, error: (err as { code?: string }).code ?? (err as Error).message });
        return;
      }
      this.#sessions.add(session);
      session.on('error', (err: Error & { code?: string }) => done({ ok: false, error: err.code ?? err.message }));
      session.on('goaway', () => done({ ok: false, error: 'the backend sent GOAWAY before answering the health check' }));
      const stream = session.request({
        ':method': 'POST',
        ':path': HEALTH_CHECK_PATH,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${hc.timeoutMs}m`,
        'user-agent': this.#identity.userAgent,
        'x-veloflux-proxy': this.#identity.proxyId,
      });
      // A session that fails (TLS verification, a refused connection) cancels its stream first: the session's
      // reason is the one worth reporting, so a stream error waits a turn for it.
      stream.on('error', (err: Error & { code?: string }) => setImmediate(() => done({ ok: false, error: err.code ?? err.message })));
      let status: string | undefined;
      let message = '';
      let httpStatus = 0;
      const note = (h: Record<string, string | string[] | undefined | number>): void => {
        const s = h['grpc-status'];
        if (typeof s === 'string') { status = s; const m = h['grpc-message']; message = typeof m === 'string' ? grpcMessage(m) : ''; }
      };
      stream.on('response', (h) => { httpStatus = Number(h[':status']); note(h); });
      stream.on('trailers', (h) => note(h));
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (size > BODY_LIMIT) { done({ ok: false, error: `the health response is larger than ${BODY_LIMIT} bytes` }); return; }
        chunks.push(c);
      });
      stream.on('end', () => {
        if (httpStatus !== 200) { done({ ok: false, error: `HTTP status ${httpStatus}, expected 200 with a gRPC answer` }); return; }
        if (status === undefined) { done({ ok: false, error: 'the health response has no grpc-status' }); return; }
        if (status !== '0') { done({ ok: false, error: `grpc-status ${status.slice(0, 8)}${message ? `: ${message}` : ''}` }); return; }
        const r = decodeHealthResponse(Buffer.concat(chunks));
        if ('error' in r) done({ ok: false, error: r.error });
        else if (r.status === 'SERVING') done({ ok: true });
        else done({ ok: false, error: `${r.status}${hc.service === '' ? '' : ` (service "${hc.service}")`}` });
      });
      stream.end(encodeHealthRequest(hc.service));
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sessions) s.destroy();
    this.#sessions.clear();
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    await Promise.all(agents.map((a) => a.close().catch(() => a.destroy())));
  }
}
