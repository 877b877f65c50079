// The admin listener (SPEC 3). This issue serves liveness and readiness; the failover API joins it later.
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Controller } from '../runtime/controller.ts';

export function createAdmin(controller: () => Controller): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (controller().ready) return { status: 'ready' };
    return reply.code(503).send({ status: 'not ready', reason: 'the first health-check round has not finished' });
  });
  return app;
}

export async function listenAdmin(app: FastifyInstance, host: string, port: number): Promise<{ host: string; port: number }> {
  await app.listen({ host: host === '' ? '::' : host, port });
  const a = app.server.address();
  return typeof a === 'object' && a ? { host: a.address, port: a.port } : { host, port };
}
