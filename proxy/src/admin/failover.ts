// Failover control: manual activation and deactivation, status, drills (/api/v1/failover/*).
import { parseDuration } from '@veloflux/config/duration';
import { ERRORS } from '../errors.ts';
import { AdminError, poolParam } from './common.ts';
import type { AdminPlugin } from './common.ts';

const MAX_DRILL_MS = 10 * 60_000;

export const failoverPlugin: AdminPlugin = (app, ctx) => {
  app.post('/api/v1/failover/activate', async (req) => {
    const c = ctx.controller();
    return c.activate(poolParam(req, c, true) as string);
  });
  app.post('/api/v1/failover/deactivate', async (req) => {
    const c = ctx.controller();
    return c.deactivate(poolParam(req, c, true) as string);
  });
  app.post('/api/v1/failover/failback', async (req) => {
    const c = ctx.controller();
    return c.failback(poolParam(req, c, true) as string);
  });
  app.get('/api/v1/failover/status', async (req) => {
    const c = ctx.controller();
    return { version: c.version, ready: c.ready, proxy: c.proxyId, pools: c.status(poolParam(req, c, false)) };
  });
  app.post('/api/v1/failover/test', async (req) => {
    const c = ctx.controller();
    const pool = poolParam(req, c, true) as string;
    const q = req.query as Record<string, unknown>;
    const mode = q.mode ?? 'dry-run';
    if (mode !== 'dry-run' && mode !== 'live') throw new AdminError(ERRORS.BAD_PARAMETER, `query parameter "mode" must be "dry-run" or "live", got "${String(mode)}"`);
    let durationMs = 30_000;
    if (q.duration !== undefined) {
      const ms = typeof q.duration === 'string' ? parseDuration(q.duration) : undefined;
      if (ms === undefined || ms < 1000 || ms > MAX_DRILL_MS) throw new AdminError(ERRORS.BAD_PARAMETER, `query parameter "duration" must be a duration from 1s to 10m like "30s", got "${String(q.duration)}"`);
      if (mode !== 'live') throw new AdminError(ERRORS.BAD_PARAMETER, 'query parameter "duration" goes with mode=live');
      durationMs = ms;
    }
    return ctx.drill(pool, { mode, durationMs });
  });
};
