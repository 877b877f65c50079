// The admin API described as OpenAPI 3.1 (served at GET /openapi.json). A test checks that every route the
// server registers is here and the other way round.
import { ERRORS } from '../errors.ts';

const error = { $ref: '#/components/schemas/Error' };
const pool = { name: 'pool', in: 'query', required: true, schema: { type: 'string' }, description: 'Pool name.' };
const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [String(c), { description: Object.values(ERRORS).filter((e) => e.status === c).map((e) => e.code).join(', '), content: { 'application/json': { schema: error } } }]));
const json = (description: string, schema: object = { type: 'object' }) => ({ description, content: { 'application/json': { schema } } });

export const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'VeloFlux proxy admin API', version: '1', description: 'Failover control, config, events and health of one VeloFlux proxy. /api/v1/* needs `Authorization: Bearer <token>`. JSON answers end with a newline; `?pretty` indents them. A method a path does not take answers 405 with `Allow` (401 without the token).' },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    schemas: {
      Error: { type: 'object', required: ['error'], properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' }, line: { type: 'integer' } } } } } } } },
      Decision: { type: 'object', additionalProperties: false, required: ['level', 'shares', 'sequence', 'ttl'], properties: { level: { type: 'integer', minimum: 0, description: 'The level the pool serves (one of its levels).' }, shares: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['level', 'percent'], properties: { level: { type: 'integer' }, percent: { type: 'integer', minimum: 1, maximum: 100 } } }, description: 'Shares of new requests by level, adding up to 100; empty when nothing serves.' }, sequence: { type: 'integer', minimum: 1, description: 'Grows with every decision; a lower one than held is refused, the same one renews the lease.' }, ttl: { type: 'string', description: 'Lease: the decision is fresh for this long ("500ms" to "10m"); then the proxy decides alone.' } } },
      PoolStatus: { type: 'object', properties: { name: { type: 'string' }, activeLevel: { type: 'integer' }, mode: { enum: ['auto', 'manual'] }, override: { type: 'object' }, strategy: { type: 'string' }, failoverActive: { type: 'boolean' }, failoverCount: { type: 'integer' }, activeSince: { type: ['string', 'null'] }, lastFailoverTime: { type: ['string', 'null'] }, decision: { type: 'object', properties: { source: { enum: ['shared', 'local'] }, sequence: { type: ['integer', 'null'] }, expiresAt: { type: ['string', 'null'] } } }, ramp: { type: ['object', 'null'], description: '`{from, to, percent, paused: {reason} | null}` while traffic moves step by step.' }, flapping: { type: ['object', 'null'], description: 'failover.hold_down: `{since, failovers, holdMs}` while the pool is flapping.' }, failback: { type: 'object', description: '`{mode: auto | manual, awaitingApproval, to, since, message}`; message "awaiting failback approval: ..." while a failback waits.' }, shares: { type: 'array' }, levels: { type: 'array' }, backends: { type: 'array' } } },
    },
  },
  security: [{ bearer: [] }],
  paths: {
    '/healthz': { get: { summary: 'Liveness', security: [], responses: { 200: json('The process is alive.') } } },
    '/readyz': { get: { summary: 'Readiness: 200 after the first health-check round', security: [], responses: { 200: json('Ready.'), 503: json('Not ready yet.') } } },
    '/metrics': { get: { summary: 'Prometheus metrics (text exposition format)', security: [], responses: { 200: { description: 'Metrics.', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
    '/openapi.json': { get: { summary: 'This document', security: [], responses: { 200: json('OpenAPI 3.1.') } } },
    '/api/v1/failover/activate': { post: { summary: 'Manual failover: move the pool to its first serving level above 0', parameters: [pool], responses: { 200: json('The pool\'s status.', { $ref: '#/components/schemas/PoolStatus' }), ...errors(400, 401, 404) } } },
    '/api/v1/failover/deactivate': { post: { summary: 'Back to automatic failover (recovery rules apply)', parameters: [pool], responses: { 200: json('The pool\'s status.', { $ref: '#/components/schemas/PoolStatus' }), ...errors(400, 401, 404) } } },
    '/api/v1/failover/failback': { post: { summary: 'failback: manual: approve the failback the pool awaits ("awaiting failback approval" in its status); traffic returns by the recovery rules', parameters: [pool], responses: { 200: json('The pool\'s status.', { $ref: '#/components/schemas/PoolStatus' }), ...errors(400, 401, 404, 409) } } },
    '/api/v1/failover/status': { get: { summary: 'Status of one pool, or of all without `pool`', parameters: [{ ...pool, required: false }], responses: { 200: json('`{version, ready, pools: [PoolStatus]}`'), ...errors(401, 404) } } },
    '/api/v1/failover/test': { post: { summary: 'A failover drill. Dry run by default (checks the next level now, sends a test notification, reports); `mode=live&duration=30s` really moves the pool for the duration and reports errors and latency', parameters: [pool, { name: 'mode', in: 'query', schema: { enum: ['dry-run', 'live'] } }, { name: 'duration', in: 'query', schema: { type: 'string' }, description: 'live only: "30s" (1s to 10m); default 30s.' }], responses: { 200: json('The drill report.'), ...errors(400, 401, 404, 409) } } },
    '/api/v1/config': {
      get: { summary: 'The running config (secrets redacted) and its version; `format=yaml`: the config.yaml document the proxy accepts, secrets as "<redacted>" (which a PUT reads as "keep the running value")', parameters: [{ name: 'format', in: 'query', schema: { enum: ['json', 'yaml'] }, description: 'Default json.' }], responses: { 200: { description: '`{version, config}`, or the config.yaml document', content: { 'application/json': { schema: { type: 'object' } }, 'application/yaml': { schema: { type: 'string' } } } }, ...errors(400, 401) } },
      put: { summary: 'Replace the config: validated, applied atomically, health of unchanged backends kept', requestBody: { content: { 'application/yaml': { schema: { type: 'string' } }, 'application/json': { schema: { type: 'object' } } } }, responses: { 200: json('`{version, changed}`'), ...errors(400, 401, 409) } },
    },
    '/api/v1/pools/{pool}/decision': { put: { summary: 'A shared decision from the operator (SPEC 9): serve this level and these shares while the lease (`ttl`) is fresh; a lower sequence than the one held is refused (409)', parameters: [{ name: 'pool', in: 'path', required: true, schema: { type: 'string' }, description: 'Pool name.' }], requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Decision' } } } }, responses: { 200: json('`{pool, level, shares, source, sequence, expiresAt}`'), ...errors(400, 401, 404, 409) } } },
    '/api/v1/events': { get: { summary: 'Server-sent events of every state change; first event `hello` with the status', responses: { 200: { description: 'text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } }, ...errors(401) } } },
  },
} as const;
