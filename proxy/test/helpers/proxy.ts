// A real proxy (controller, data plane, admin) started in this process on 127.0.0.1:0, with its log lines and
// state events captured for assertions.
import { Writable } from 'node:stream';
import { loadConfigText, formatIssues } from '@veloflux/config/load';
import type { ProxyEvent } from '../../src/control/events.ts';
import { createLogger } from '@veloflux/service/log';
import { SERVICE } from '../../src/runtime/log.ts';
import { startProxy } from '../../src/runtime/proxy.ts';
import type { RunningProxy, StartOptions } from '../../src/runtime/proxy.ts';

export interface TestProxy {
  readonly proxy: RunningProxy;
  readonly url: string;
  readonly adminUrl: string;
  readonly logs: string[];
  readonly events: ProxyEvent[];
  /** Resolves with the first event (already seen or future) that matches; rejects after `timeoutMs`. */
  waitFor(match: (e: ProxyEvent) => boolean, timeoutMs?: number, what?: string): Promise<ProxyEvent>;
  waitReady(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** The listen and admin lines startTestProxy puts before a test's config (port 0: the OS picks). */
export function headLines(tokenFile?: string): string {
  return `listen: "127.0.0.1:0"\nadmin: { listen: "127.0.0.1:0"${tokenFile ? `, token_file: "${tokenFile}"` : ''} }\n`;
}

/** `yaml` is a config without listen/admin (added here, on port 0, with the admin token file if given). */
export async function startTestProxy(yaml: string, opts: Partial<StartOptions> = {}, admin: { tokenFile?: string } = {}): Promise<TestProxy> {
  const text = `${headLines(admin.tokenFile)}${yaml}`;
  const loaded = loadConfigText(text);
  if (!loaded.ok) throw new Error(`test config invalid:\n${formatIssues(loaded.issues)}`);
  const logs: string[] = [];
  const sink = new Writable({ write(chunk: Buffer, _enc, cb) { logs.push(...chunk.toString().split('\n').filter(Boolean)); cb(); } });
  const log = createLogger(SERVICE, { level: 'debug', destination: sink });
  const proxy = await startProxy(loaded.config, loaded.version, { log, ...opts });
  const events: ProxyEvent[] = [];
  proxy.controller.on('event', (e) => events.push(e));
  const waitFor: TestProxy['waitFor'] = (match, timeoutMs = 10_000, what = 'event') => {
    const seen = events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { proxy.controller.off('event', on); reject(new Error(`timed out after ${timeoutMs}ms waiting for ${what}; events: ${JSON.stringify(events.map((e) => e.type))}`)); }, timeoutMs);
      const on = (e: ProxyEvent): void => { if (match(e)) { clearTimeout(timer); proxy.controller.off('event', on); resolve(e); } };
      proxy.controller.on('event', on);
    });
  };
  return {
    proxy,
    url: `http://127.0.0.1:${proxy.data.port}`,
    adminUrl: `http://127.0.0.1:${proxy.admin.port}`,
    logs,
    events,
    waitFor,
    waitReady: (timeoutMs = 10_000) => proxy.controller.ready ? Promise.resolve() : new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`proxy not ready after ${timeoutMs}ms`)), timeoutMs);
      proxy.controller.once('ready', () => { clearTimeout(timer); resolve(); });
    }),
    stop: () => proxy.stop(1000),
  };
}
