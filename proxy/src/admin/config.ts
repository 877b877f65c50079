// The running config: read it (secrets redacted), replace it (/api/v1/config).
import { ERRORS } from '../errors.ts';
import { AdminError, send } from './common.ts';
import type { AdminPlugin } from './common.ts';

export const configPlugin: AdminPlugin = (app, ctx) => {
  app.get('/api/v1/config', async () => ({ version: ctx.controller().version, config: ctx.configView() }));
  app.put('/api/v1/config', async (req, reply) => {
    const body = req.body;
    if (typeof body !== 'string' || body.trim() === '') throw new AdminError(ERRORS.BAD_PARAMETER, 'the body must be the whole config, as YAML (content-type application/yaml) or JSON');
    const result = await ctx.applyConfig(body);
    if (!result.ok) return send(reply, result.error, result.message, result.issues);
    return { version: result.version, changed: result.changed };
  });
};
