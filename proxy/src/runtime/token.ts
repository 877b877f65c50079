// The admin token: env VELOFLUX_ADMIN_TOKEN, else the contents of admin.token_file (e.g. a mounted Secret).
// Never logged. Undefined when neither is set: the admin API then refuses every /api/v1 call.
import { readFileSync } from 'node:fs';
import type { Config } from '../config/types.ts';

export function readToken(config: Config, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.VELOFLUX_ADMIN_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  if (config.admin.tokenFile === undefined) return undefined;
  try {
    const text = readFileSync(config.admin.tokenFile, 'utf8').trim();
    return text === '' ? undefined : text;
  } catch (err) {
    throw new Error(`cannot read admin.token_file ${config.admin.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}
