// Applying what setup wrote: PUT to a running proxy's admin API, or `kubectl apply -f -`.
import { spawn } from 'node:child_process';
import { request } from 'undici';

export type Applied = { ok: true; version?: string; changed?: boolean; message: string } | { ok: false; message: string };

/** PUT {adminUrl}/api/v1/config with the bearer token; the proxy validates and applies it atomically. */
export async function applyConfig(adminUrl: string, token: string, yaml: string, timeoutMs = 10_000): Promise<Applied> {
  const url = `${adminUrl.replace(/\/+$/, '')}/api/v1/config`;
  let res;
  try {
    res = await request(url, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/yaml' },
      body: yaml,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  } catch (err) {
    return { ok: false, message: `cannot reach ${url}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  const text = await res.body.text();
  let body: { version?: string; changed?: boolean; error?: { code?: string; message?: string } } = {};
  try { body = JSON.parse(text) as typeof body; } catch { /* not JSON: reported below */ }
  if (res.statusCode === 200) return { ok: true, ...(body.version ? { version: body.version } : {}), ...(body.changed === undefined ? {} : { changed: body.changed }), message: `applied (version ${body.version ?? '?'})` };
  return { ok: false, message: `${res.statusCode} ${body.error?.code ?? ''} ${body.error?.message ?? text.slice(0, 500)}`.replace(/\s+/g, ' ').trim() };
}

/** `kubectl apply -f -` (kubectl on PATH, its usual kubeconfig); `kubectl` may be overridden by env KUBECTL. */
export function applyKubernetes(manifests: string, kubectl = process.env['KUBECTL'] ?? 'kubectl', timeoutMs = 60_000): Promise<Applied> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(kubectl, ['apply', '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs });
    } catch (err) {
      resolve({ ok: false, message: (err as Error).message });
      return;
    }
    let out = '';
    child.stdout.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr.on('data', (c: Buffer) => { out += c.toString(); });
    child.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, message: err.code === 'ENOENT' ? `${kubectl} not found on PATH (--apply for kubernetes runs kubectl apply)` : err.message }));
    child.on('close', (code) => resolve(code === 0 ? { ok: true, message: out.trim() } : { ok: false, message: `exit ${code}: ${out.trim()}` }));
    child.stdin.on('error', () => { /* kubectl exited early; its output says why */ });
    child.stdin.end(manifests);
  });
}
