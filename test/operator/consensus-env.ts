// What the shared-decision end-to-end test and its benchmark (bench/consensus.ts) share: a backend whose health
// answer depends on the probing proxy (X-VeloFlux-Proxy) or on chance, a recorder of the level each proxy serves
// (its event stream: every change of the served level is a failover event with the proxy's own timestamp), and
// the pure arithmetic of disagreement windows over those timelines.
import { createServer } from 'node:http';
import type { IncomingMessage, Server } from 'node:http';
import { fetch } from 'undici';

/** A real HTTP backend on 127.0.0.1: `/health` answers 200 or 500 as `healthy(proxyId)` says; other paths its name. */
export class ProbeBackend {
  readonly name: string;
  readonly #server: Server;
  healthy: (proxyId: string | undefined) => boolean = () => true;
  /** Probes seen, by proxy id. */
  readonly probes = new Map<string, number>();
  /** While set, every probe answered (unix ms, proxy id, healthy or not) is appended, up to 100 000. */
  probeLog: { at: number; proxy: string; ok: boolean }[] | undefined;
  port = 0;

  private constructor(name: string) {
    this.name = name;
    this.#server = createServer((req: IncomingMessage, res) => {
      if (req.url === '/health') {
        const id = typeof req.headers['x-veloflux-proxy'] === 'string' ? req.headers['x-veloflux-proxy'] : undefined;
        this.probes.set(id ?? '', (this.probes.get(id ?? '') ?? 0) + 1);
        const ok = this.healthy(id);
        if (this.probeLog && this.probeLog.length < 100_000) this.probeLog.push({ at: Date.now(), proxy: id ?? '', ok });
        res.writeHead(ok ? 200 : 500).end('health');
        return;
      }
      req.resume();
      res.setHeader('x-backend', name);
      res.end(name);
    });
    this.#server.keepAliveTimeout = 30_000;
  }

  static async start(name: string): Promise<ProbeBackend> {
    const b = new ProbeBackend(name);
    await new Promise<void>((r) => b.#server.listen(0, '127.0.0.1', () => r()));
    b.port = (b.#server.address() as { port: number }).port;
    return b;
  }

  get address(): string { return `127.0.0.1:${this.port}`; }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((r) => this.#server.close(() => r()));
  }
}

/** One change of the level a proxy serves a pool from, at the proxy's own clock (unix ms). */
export interface LevelChange { readonly at: number; readonly level: number }

/** Follows one proxy's event stream and keeps the timeline of the level it serves `pool` from. */
export class LevelRecorder {
  readonly proxy: string;
  readonly changes: LevelChange[] = [];
  readonly events: { type: string; data: Record<string, unknown> }[] = [];
  readonly #abort = new AbortController();
  #connected: Promise<void>;

  constructor(proxy: string, adminUrl: string, token: string, pool: string) {
    this.proxy = proxy;
    let ready!: () => void;
    this.#connected = new Promise((r) => { ready = r; });
    void (async () => {
      const res = await fetch(`${adminUrl}/api/v1/events`, { headers: { authorization: `Bearer ${token}` }, signal: this.#abort.signal });
      if (!res.body) return;
      let buffer = '';
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const type = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (!type || !data) continue;
          const d = JSON.parse(data) as Record<string, unknown>;
          this.events.push({ type, data: d });
          if (type === 'hello') {
            const p = (d.pools as { name: string; activeLevel: number }[]).find((x) => x.name === pool);
            if (p) this.changes.push({ at: Date.now(), level: p.activeLevel });
            ready();
          } else if ((type === 'failover_activated' || type === 'level_changed' || type === 'failover_recovered') && d.pool === pool) {
            this.changes.push({ at: Date.parse(d.at as string), level: d.to as number });
          }
        }
      }
    })().catch(() => undefined);
  }

  connected(): Promise<void> { return this.#connected; }

  /** The level served at `t` (the last change at or before it), or undefined before the first. */
  levelAt(t: number): number | undefined {
    let level: number | undefined;
    for (const c of this.changes) { if (c.at <= t) level = c.level; else break; }
    return level;
  }

  close(): void { this.#abort.abort(); }
}

/** A stretch of time during which the proxies served different levels. */
export interface Window { readonly from: number; readonly to: number }

/**
 * Disagreement windows in [from, to]: the timelines merged; wherever the proxies' levels differ, the time counts.
 * Pure: timelines in, windows out.
 */
export function disagreement(timelines: readonly (readonly LevelChange[])[], from: number, to: number): Window[] {
  const times = [...new Set(timelines.flatMap((t) => t.map((c) => c.at)).filter((x) => x > from && x < to))].sort((a, b) => a - b);
  const levelAt = (tl: readonly LevelChange[], t: number): number | undefined => {
    let level: number | undefined;
    for (const c of tl) { if (c.at <= t) level = c.level; else break; }
    return level;
  };
  const windows: Window[] = [];
  let open: number | undefined;
  for (const t of [from, ...times]) {
    const levels = new Set(timelines.map((tl) => levelAt(tl, t)));
    const differ = levels.size > 1;
    if (differ && open === undefined) open = t;
    if (!differ && open !== undefined) { windows.push({ from: open, to: t }); open = undefined; }
  }
  if (open !== undefined) windows.push({ from: open, to });
  return windows;
}

export function summary(windows: readonly Window[]): { count: number; totalMs: number; p50Ms: number; maxMs: number } {
  const d = windows.map((w) => w.to - w.from).sort((a, b) => a - b);
  return { count: d.length, totalMs: d.reduce((a, b) => a + b, 0), p50Ms: d[Math.floor((d.length - 1) / 2)] ?? 0, maxMs: d[d.length - 1] ?? 0 };
}
