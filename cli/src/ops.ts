// The operator's commands (SPEC 11): drive one proxy through its admin API.
//   veloflux status [--pool P] [-o table|json|yaml]
//   veloflux activate|deactivate|failback --pool P [-o table|json|yaml]
//   veloflux test --pool P [--live [--duration 30s]] [-o ...]
//   veloflux events [-o table|json]
//   veloflux config get [-o yaml|json] | config put FILE|- | config check FILE|-
// Every command takes --admin URL (default http://127.0.0.1:9000) and the token from env VELOFLUX_ADMIN_TOKEN or
// --token-file FILE (the token is sent as a header and never printed). Exit codes are in EXIT (docs/cli.md).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { formatIssues, loadConfigText } from '@veloflux/config/load';
import { parseDuration } from '@veloflux/config/duration';
import { AdminClient, ApiError, DEFAULT_ADMIN, UnreachableError, parseAdminUrl } from './admin-client.ts';
import { backendsTable, drillText, eventLine, poolsTable, poolLine } from './format.ts';
import type { PoolStatus } from './format.ts';
import { systemNow } from './clock.ts';

/** What a script can tell apart. */
export const EXIT = {
  OK: 0,
  /** The proxy refused the call (unknown pool, invalid config, nothing to fail back, ...), or a local check failed. */
  API_ERROR: 1,
  /** Bad flags or arguments: nothing was sent. */
  USAGE: 2,
  /** The admin API could not be reached (refused, timed out, not a VeloFlux proxy), or the event stream broke off. */
  UNREACHABLE: 3,
  /** No token, or the proxy refused it (401). */
  UNAUTHORIZED: 4,
} as const;

export interface OpsIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a file, or stdin for "-". */
  readonly read: (file: string) => string;
  /** Aborted on ctrl-C (events). */
  readonly interrupt: AbortSignal;
  /** The wall clock (event lines without their own time). */
  readonly now: () => number;
}

export const OPS_COMMANDS = ['status', 'activate', 'deactivate', 'failback', 'test', 'events', 'config'] as const;
export type OpsCommand = (typeof OPS_COMMANDS)[number];

export const OPS_USAGE = `  status       pools, levels and backends     [--pool P] [-o table|json|yaml]
  activate     manual failover of a pool       --pool P
  deactivate   back to automatic failover      --pool P
  failback     approve a pending failback      --pool P   (failover.failback: manual)
  test         failover drill: dry run         --pool P [--live [--duration 30s]]
  events       follow state changes (ctrl-C)   [-o table|json]
  config       get [-o yaml|json] | put FILE | check FILE    (FILE "-" = stdin)

Common flags: --admin URL (default ${DEFAULT_ADMIN}), --token-file FILE (else env VELOFLUX_ADMIN_TOKEN),
-o/--output table|json|yaml. Exit codes: 0 ok, 1 the proxy refused (or check found problems), 2 usage,
3 unreachable, 4 no or wrong token. docs/cli.md`;

class Exit extends Error {
  readonly code: number;
  constructor(code: number, message: string) { super(message); this.code = code; }
}

const OPTIONS = {
  admin: { type: 'string' },
  'token-file': { type: 'string' },
  output: { type: 'string', short: 'o' },
  pool: { type: 'string', short: 'p' },
  live: { type: 'boolean' },
  duration: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Values = { admin?: string; 'token-file'?: string; output?: string; pool?: string; live?: boolean; duration?: string; help?: boolean };

/** Which flags each command takes, besides --admin, --token-file and --help. */
const TAKES: Record<OpsCommand, readonly (keyof Values)[]> = {
  status: ['pool', 'output'],
  activate: ['pool', 'output'],
  deactivate: ['pool', 'output'],
  failback: ['pool', 'output'],
  test: ['pool', 'output', 'live', 'duration'],
  events: ['output'],
  config: ['output'],
};
const OUTPUTS: Record<OpsCommand, readonly string[]> = {
  status: ['table', 'json', 'yaml'], activate: ['table', 'json', 'yaml'], deactivate: ['table', 'json', 'yaml'], failback: ['table', 'json', 'yaml'],
  test: ['table', 'json', 'yaml'], events: ['table', 'json'], config: ['yaml', 'json'],
};

export async function runOps(command: OpsCommand, argv: readonly string[], io: OpsIo): Promise<number> {
  const label = command === 'config' && argv[0] !== undefined && /^(get|put|check)$/.test(argv[0]) ? `config ${argv[0]}` : command;
  try {
    return await ops(command, argv, io);
  } catch (err) {
    if (err instanceof Exit) { if (err.message) io.err(err.message); return err.code; }
    if (err instanceof UnreachableError) { io.err(`veloflux ${label}: ${err.message}`); return EXIT.UNREACHABLE; }
    if (err instanceof ApiError) return apiError(label, err, io, err.file);
    throw err;
  }
}

function apiError(command: string, e: ApiError, io: OpsIo, file?: string): number {
  if (e.status === 401) {
    io.err(`veloflux ${command}: the proxy refused the token (${e.code}: ${e.message})`);
    return EXIT.UNAUTHORIZED;
  }
  if (e.code === 'VF_ERR_NOT_FOUND' || e.code === 'VF_ERR_METHOD_NOT_ALLOWED') {
    io.err(`veloflux ${command}: this proxy has no such endpoint (${e.code}: ${e.message}); it may be older than this CLI`);
    return EXIT.API_ERROR;
  }
  const lines = [`veloflux ${command}: ${e.code}: ${e.message.split('\n')[0]}`];
  if (e.issues.length > 0) lines.push(formatIssues(e.issues.map((i) => ({ path: i.path, message: i.message, ...(i.line !== undefined ? { line: i.line } : {}) })), file));
  io.err(lines.join('\n'));
  return EXIT.API_ERROR;
}

function usageError(command: string, message: string): never {
  throw new Exit(EXIT.USAGE, `veloflux ${command}: ${message} (veloflux ${command} --help)`);
}

function parse(command: OpsCommand, argv: readonly string[]): { values: Values; positionals: string[] } {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    const m = /^Unknown option '([^']+)'/.exec((err as Error).message);
    usageError(command, m ? `unknown flag ${m[1]}` : ((err as Error).message.split('. To specify')[0] ?? 'bad flags'));
  }
  const values = parsed.values as Values;
  for (const key of Object.keys(values) as (keyof Values)[]) {
    if (key !== 'admin' && key !== 'token-file' && key !== 'help' && !TAKES[command].includes(key)) usageError(command, `--${key} does not go with ${command}`);
  }
  if (command !== 'config' && parsed.positionals.length > 0) usageError(command, `unexpected argument "${parsed.positionals[0]}"`);
  return { values, positionals: parsed.positionals };
}

function output(command: OpsCommand, values: Values): string {
  const allowed = OUTPUTS[command];
  const o = values.output ?? allowed[0] as string;
  if (!allowed.includes(o)) usageError(command, `-o must be one of ${allowed.join(', ')}, got "${o}"`);
  return o;
}

/** The token: env VELOFLUX_ADMIN_TOKEN, else --token-file; a clear message when there is none. */
function token(command: string, values: Values, io: OpsIo): string {
  const file = values['token-file'];
  if (file !== undefined) {
    let text: string;
    try { text = io.read(file); } catch (err) { throw new Exit(EXIT.USAGE, `veloflux ${command}: cannot read --token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`); }
    const t = text.trim();
    if (t === '') throw new Exit(EXIT.UNAUTHORIZED, `veloflux ${command}: --token-file ${file} is empty`);
    return t;
  }
  const env = io.env.VELOFLUX_ADMIN_TOKEN?.trim();
  if (env) return env;
  throw new Exit(EXIT.UNAUTHORIZED, `veloflux ${command}: no admin token: set env VELOFLUX_ADMIN_TOKEN or pass --token-file FILE (the file the proxy's admin.token_file names; in Kubernetes the chart's admin token Secret)`);
}

function client(command: string, values: Values, io: OpsIo): AdminClient {
  const base = parseAdminUrl(values.admin ?? io.env.VELOFLUX_ADMIN_URL ?? DEFAULT_ADMIN);
  if (typeof base !== 'string') usageError(command, base.error);
  return new AdminClient(base, token(command, values, io));
}

function poolFlag(command: string, values: Values): string {
  const pool = values.pool;
  if (pool === undefined || pool === '') usageError(command, '--pool is required');
  return pool;
}

function emit(io: OpsIo, o: string, data: unknown, table: () => string): void {
  if (o === 'json') io.out(`${JSON.stringify(data, null, 2)}\n`);
  else if (o === 'yaml') io.out(stringify(data, { lineWidth: 0 }));
  else io.out(`${table()}\n`);
}

async function ops(command: OpsCommand, argv: readonly string[], io: OpsIo): Promise<number> {
  const { values, positionals } = parse(command, argv);
  if (values.help) { io.out(`${helpOf(command)}\n`); return EXIT.OK; }
  const o = output(command, values);
  switch (command) {
    case 'status': {
      const api = client(command, values, io);
      const q = values.pool !== undefined ? `?pool=${encodeURIComponent(values.pool)}` : '';
      const body = (await api.call('GET', `/api/v1/failover/status${q}`)).json as { version: string; ready: boolean; pools: PoolStatus[] };
      emit(io, o, body, () => [
        `proxy ${api.base}: config ${body.version}, ${body.ready ? 'ready' : 'NOT READY (first health-check round not finished)'}`,
        '',
        poolsTable(body.pools),
        '',
        backendsTable(body.pools),
      ].join('\n'));
      return EXIT.OK;
    }
    case 'activate':
    case 'deactivate':
    case 'failback': {
      const pool = poolFlag(command, values);
      const api = client(command, values, io);
      const st = (await api.call('POST', `/api/v1/failover/${command}?pool=${encodeURIComponent(pool)}`)).json as PoolStatus;
      emit(io, o, st, () => poolLine(command, st));
      return EXIT.OK;
    }
    case 'test': {
      const pool = poolFlag(command, values);
      if (values.duration !== undefined && !values.live) usageError(command, '--duration goes with --live');
      const durationMs = values.duration === undefined ? 30_000 : parseDuration(values.duration);
      if (durationMs === undefined || durationMs < 1000 || durationMs > 600_000) usageError(command, `--duration must be a duration from 1s to 10m like "30s", got "${values.duration}"`);
      const api = client(command, values, io);
      const q = values.live ? `&mode=live&duration=${encodeURIComponent(values.duration ?? '30s')}` : '';
      if (values.live && o === 'table') io.err(`veloflux test: live drill on pool ${pool}: the pool moves to its backup level for ${values.duration ?? '30s'} ...`);
      // A live drill answers after its duration: wait that long and then some.
      const report = (await api.call('POST', `/api/v1/failover/test?pool=${encodeURIComponent(pool)}${q}`, { timeoutMs: durationMs + 60_000 })).json as Record<string, unknown>;
      emit(io, o, report, () => drillText(report));
      return EXIT.OK;
    }
    case 'events': {
      const api = client(command, values, io);
      const result = await api.events((type, data) => {
        if (o === 'json') { io.out(`${JSON.stringify({ event: type, data: safeJson(data) })}\n`); return; }
        io.out(`${eventLine(type, safeJson(data), io.now())}\n`);
      }, io.interrupt);
      if (result === 'aborted') return EXIT.OK;
      io.err('veloflux events: the proxy closed the event stream (it stopped or restarted)');
      return EXIT.UNREACHABLE;
    }
    case 'config':
      return configCommand(positionals, values, o, io);
  }
}

function safeJson(text: string): unknown {
  try { return JSON.parse(text); } catch { return text; }
}

async function configCommand(positionals: readonly string[], values: Values, o: string, io: OpsIo): Promise<number> {
  const [sub, file, ...extra] = positionals;
  const what = `config ${sub ?? ''}`.trim();
  if (extra.length > 0) usageError('config', `unexpected argument "${extra[0]}"`);
  switch (sub) {
    case 'get': {
      if (file !== undefined) usageError('config', `config get takes no argument, got "${file}" (redirect the output: veloflux config get > config.yaml)`);
      const api = client(what, values, io);
      if (o === 'json') { io.out(`${JSON.stringify((await api.call('GET', '/api/v1/config')).json, null, 2)}\n`); return EXIT.OK; }
      io.out((await api.call('GET', '/api/v1/config?format=yaml')).text);
      return EXIT.OK;
    }
    case 'put': {
      if (file === undefined) usageError('config', 'config put needs a FILE (or - for stdin)');
      if (values.output !== undefined) usageError('config', '-o does not go with config put');
      const text = readInput('config put', file, io);
      const api = client(what, values, io);
      let r: { version: string; changed: boolean };
      try {
        r = (await api.call('PUT', '/api/v1/config', { body: text })).json as typeof r;
      } catch (err) {
        // The problems' lines are lines of FILE: name it in each.
        if (err instanceof ApiError) err.file = file === '-' ? '(stdin)' : file;
        throw err;
      }
      io.out(r.changed ? `applied: config version ${r.version}\n` : `unchanged: the proxy already runs version ${r.version}\n`);
      return EXIT.OK;
    }
    case 'check': {
      if (file === undefined) usageError('config', 'config check needs a FILE (or - for stdin)');
      if (values.output !== undefined) usageError('config', '-o does not go with config check');
      // The proxy's own loader, offline: the same problems a PUT or `veloflux-proxy --check` would list.
      const text = readInput('config check', file, io);
      const loaded = loadConfigText(text);
      const name = file === '-' ? '(stdin)' : file;
      if (!loaded.ok) {
        io.err(`veloflux config check: ${name} is invalid (${loaded.issues.length} problem${loaded.issues.length === 1 ? '' : 's'}):\n${formatIssues(loaded.issues, name)}`);
        return EXIT.API_ERROR;
      }
      const c = loaded.config;
      const backends = c.pools.reduce((n, p) => n + p.backends.length, 0);
      io.out(`${name}: valid (${c.pools.length} pool${c.pools.length === 1 ? '' : 's'}, ${backends} backend${backends === 1 ? '' : 's'}, ${c.routes.length} route${c.routes.length === 1 ? '' : 's'}; version ${loaded.version})\n`);
      return EXIT.OK;
    }
    default:
      return usageError('config', sub === undefined ? 'a subcommand is required: get, put or check' : `unknown subcommand "${sub}": get, put or check`);
  }
}

function readInput(command: string, file: string, io: OpsIo): string {
  try {
    return io.read(file);
  } catch (err) {
    throw new Exit(EXIT.USAGE, `veloflux ${command}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

function helpOf(command: OpsCommand): string {
  return `usage: veloflux ${command} [flags]\n\n${OPS_USAGE}`;
}

/** The real terminal: stdout, stderr, process.env, files, ctrl-C. */
export function terminalOps(): OpsIo {
  const ctrl = new AbortController();
  // ctrl-C: `events` ends cleanly (exit 0, the command returns at once); any other command in flight (a live drill)
  // stops with the shell's 130 rather than being held by this handler.
  process.once('SIGINT', () => {
    ctrl.abort();
    setTimeout(() => process.exit(130), 300).unref();
  });
  return {
    out: (t) => { process.stdout.write(t); },
    err: (t) => { process.stderr.write(t.endsWith('\n') ? t : `${t}\n`); },
    env: process.env,
    read: (file) => readFileSync(file === '-' ? 0 : file, 'utf8'),
    interrupt: ctrl.signal,
    now: systemNow,
  };
}
