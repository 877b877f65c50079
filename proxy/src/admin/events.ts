// The event stream (/api/v1/events, server-sent events): a hello with the status, then every state change.
import type { ServerResponse } from 'node:http';
import type { ProxyEvent, TrafficReport } from '../control/api.ts';
import type { AdminPlugin } from './common.ts';

const HEARTBEAT_MS = 15_000;

export const eventsPlugin: AdminPlugin = (app, ctx) => {
  const streams = new Set<ServerResponse>();
  app.addHook('onClose', async () => {
    for (const s of streams) s.end();
  });
  // No HEAD twin: an event stream has no end, and a HEAD answer no body to stream.
  app.get('/api/v1/events', { exposeHeadRoute: false }, (req, reply) => {
    const c = ctx.controller();
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    let id = 0;
    const write = (type: string, data: unknown): void => {
      res.write(`event: ${type}\nid: ${++id}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    write('hello', { version: c.version, ready: c.ready, proxy: c.proxyId, pools: c.status() });
    const onEvent = (e: ProxyEvent): void => write(e.type, { ...e, at: new Date(e.at).toISOString() });
    // A shared pool's traffic for the operator's ramp gate (SPEC 9/10): counts only, no address or header.
    const onTraffic = (t: TrafficReport): void => write('traffic', { ...t, at: new Date(t.at).toISOString() });
    c.on('event', onEvent);
    c.on('traffic', onTraffic);
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    streams.add(res);
    req.raw.on('close', () => {
      clearInterval(heartbeat);
      c.off('event', onEvent);
      c.off('traffic', onTraffic);
      streams.delete(res);
    });
  });
};
