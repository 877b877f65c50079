// The running config: read it (secrets redacted), replace it (/api/v1/config).
import { ERRORS } from '../errors.ts';
import { AdminError, send } from './common.ts';
import type { AdminPlugin } from './common.ts';

export const configPlugin: AdminPlugin = (app, ctx) => {
  // `?format=yaml`: the config.yaml document this proxy would accept (every value explicit, secrets as
  // "<redacted>", which a PUT reads as "keep the running value"), so get, edit and put works; default JSON.
  app.get('/api/v1/config', async (req, reply) => {
    const format = (req.query as Record<string, unknown>).format;
    if (format === undefined || format === 'json') return { version: ctx.controller().version, config: ctx.configView() };
    if (format !== 'yaml') throw new AdminError(ERRORS.BAD_PARAMETER, `query parameter "format" must be "json" or "yaml", got ${typeof format === 'string' ? `"${format}"` : 'more than one value'}`);
    return reply.header('content-type', 'application/yaml; charset=utf-8').send(ctx.configYaml());
  });
  app.put('/api/v1/config', async (req, reply) => {
    const body = req.body;
    if (typeof body !== 'string' || body.trim() === '') throw new AdminError(ERRORS.BAD_PARAMETER, 'the body must be the whole config, as YAML (content-type application/yaml) or JSON');
    const result = await ctx.applyConfig(body);
    if (!result.ok) return send(reply, result.error, result.message, result.issues);
    return { version: result.version, changed: result.changed };
  });
};
