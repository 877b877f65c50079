// Real gRPC servers and clients for the tests (@grpc/grpc-js), over the protos in fixtures/grpc/, and a test CA.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';

const FIXTURES = fileURLToPath(new URL('../fixtures/grpc/', import.meta.url));

function load(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(loader.loadSync(join(FIXTURES, file), { keepCase: true, longs: Number, defaults: true }));
}

const echoPkg = load('echo.proto') as unknown as { veloflux: { test: { Echo: grpc.ServiceClientConstructor } } };
const healthPkg = load('health.proto') as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
export const EchoService = echoPkg.veloflux.test.Echo;
export const HealthService = healthPkg.grpc.health.v1.Health;

export interface Msg { text: string; count: number; blob: Buffer }

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface EchoServer {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  /** Calls started, by method name. */
  readonly calls: Record<string, number>;
  /** Metadata of the last call, as the server saw it. */
  lastMetadata: grpc.Metadata | undefined;
  /** Deadline of the last Unary call (Infinity when the client set none). */
  lastDeadline: number;
  /** Health answers by service name ('' = the whole server); 'hang' never answers. */
  readonly health: Map<string, ServingStatus | 'hang'>;
  stop(): Promise<void>;
  /** Closes every connection at once, as a crashed process would. */
  kill(): void;
}

function copyX(md: grpc.Metadata): grpc.Metadata {
  const out = new grpc.Metadata();
  for (const [k, v] of Object.entries(md.getMap())) if (k.startsWith('x-')) out.set(k, v as grpc.MetadataValue);
  return out;
}

function trailers(): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('x-trailer', 'done');
  md.set('x-trailer-bin', Buffer.from([0, 1, 2, 254, 255]));
  return md;
}

export async function startEchoServer(name: string, opts: { tls?: { key: string; cert: string } } = {}): Promise<EchoServer> {
  const server = new grpc.Server();
  const calls: Record<string, number> = {};
  const count = (m: string): void => { calls[m] = (calls[m] ?? 0) + 1; };
  const state: EchoServer = {
    name, port: 0, address: '', calls, lastMetadata: undefined, lastDeadline: Infinity, health: new Map([['', 'SERVING']]),
    stop: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
    kill: () => server.forceShutdown(),
  };
  server.addService(EchoService.service, {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      count('Unary');
      state.lastMetadata = call.metadata;
      const d = call.getDeadline();
      state.lastDeadline = d instanceof Date ? d.getTime() : d;
      call.sendMetadata(copyX(call.metadata));
      const text = call.request.text;
      if (text === 'error') { cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad text: ünïcode', metadata: trailers() }); return; }
      const sleep = /^sleep:(\d+)$/.exec(text);
      const reply = (): void => cb(null, { text: text === 'who' ? name : text, count: call.request.count, blob: call.request.blob }, trailers());
      if (sleep) setTimeout(reply, Number(sleep[1])); else reply();
    },
    Collect: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      count('Collect');
      const texts: string[] = [];
      call.on('data', (m: Msg) => texts.push(m.text));
      call.on('end', () => cb(null, { text: texts.join(','), count: texts.length, blob: Buffer.alloc(0) }, trailers()));
      call.on('error', () => {});
    },
    Expand: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      count('Expand');
      const slow = call.request.text === 'slow';
      let i = 0;
      const step = (): void => {
        if (call.cancelled) return;
        if (i >= call.request.count) { call.end(trailers()); return; }
        call.write({ text: `${call.request.text}-${i}`, count: i, blob: Buffer.alloc(0) });
        i++;
        setTimeout(step, slow ? 50 : 1);
      };
      step();
      call.on('error', () => {});
    },
    Chat: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      count('Chat');
      call.on('data', (m: Msg) => call.write({ text: `echo:${m.text}`, count: m.count, blob: Buffer.alloc(0) }));
      call.on('end', () => call.end(trailers()));
      call.on('error', () => {});
    },
  });
  server.addService(HealthService.service, {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, { status: ServingStatus }>, cb: grpc.sendUnaryData<{ status: ServingStatus }>) => {
      count('Check');
      state.lastMetadata = call.metadata;
      const s = state.health.get(call.request.service);
      if (s === 'hang') return;
      if (s === undefined) { cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' }); return; }
      cb(null, { status: s });
    },
  });
  const creds = opts.tls ? grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(opts.tls.key), cert_chain: Buffer.from(opts.tls.cert) }]) : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return Object.assign(state, { port, address: `127.0.0.1:${port}` });
}

export type EchoClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** A client of the Echo service at `target` (host:port), cleartext HTTP/2 (the proxy's listener). */
export function echoClient(target: string): EchoClient {
  return new EchoService(target, grpc.credentials.createInsecure()) as unknown as EchoClient;
}

export function unary(c: EchoClient, msg: Partial<Msg>, opts: { metadata?: grpc.Metadata; deadlineMs?: number } = {}): Promise<{ reply: Msg; headers: grpc.Metadata; trailers: grpc.Metadata }> {
  return new Promise((resolve, reject) => {
    let headers = new grpc.Metadata();
    let reply: Msg | undefined;
    let failed: grpc.ServiceError | undefined;
    const callOpts: grpc.CallOptions = opts.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs };
    // grpc-js calls back before it emits 'status' (which carries the trailers): settle on 'status'.
    const call = (c.Unary as (m: unknown, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: Msg) => void) => grpc.ClientUnaryCall)(
      msg, opts.metadata ?? new grpc.Metadata(), callOpts, (err, r) => { if (err) failed = err; else reply = r; });
    call.on('metadata', (md: grpc.Metadata) => { headers = md; });
    call.on('status', (s: grpc.StatusObject) => {
      if (reply !== undefined) resolve({ reply, headers, trailers: s.metadata });
      else reject(failed ?? Object.assign(new Error(s.details), s));
    });
  });
}

export { grpc };

// --- a test CA ---------------------------------------------------------------------------------------------

export interface TestCa {
  readonly caFile: string;
  /** A key and certificate signed by this CA for the given names (DNS names, or IPs). */
  issue(names: string[]): { key: string; cert: string };
  remove(): void;
}

/** A CA generated for the test (EC P-256), and certificates it signs. */
export function makeCa(cn = 'VeloFlux Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'veloflux-ca-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', caKey, '-out', caFile,
    '-days', '1', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'], { stdio: 'ignore' });
  let n = 0;
  return {
    caFile,
    issue(names) {
      n++;
      const key = join(dir, `leaf${n}.key`);
      const csr = join(dir, `leaf${n}.csr`);
      const cert = join(dir, `leaf${n}.pem`);
      const ext = join(dir, `leaf${n}.ext`);
      writeFileSync(ext, `subjectAltName=${names.map((x) => (/^[\d.]+$/.test(x) ? `IP:${x}` : `DNS:${x}`)).join(',')}\n`);
      execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0] ?? 'leaf'}`], { stdio: 'ignore' });
      execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', ext], { stdio: 'ignore' });
      return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

// --- a backend process, and an HTTP/2 front for the data plane ----------------------------------------------

export interface BackendProcess {
  readonly port: number;
  readonly address: string;
  readonly child: ChildProcess;
  kill(): Promise<void>;
}

/** fixtures/grpc/backend.ts as a child process (SIGKILL is a real crash: no GOAWAY, no goodbye). */
export async function startBackendProcess(name: string): Promise<BackendProcess> {
  const child = spawn(process.execPath, [join(FIXTURES, 'backend.ts'), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gRPC backend process did not start in 10s')), 10_000);
    let buf = '';
    child.stdout?.on('data', (c: Buffer) => {
      buf += c.toString();
      const m = /\{"port":(\d+)\}/.exec(buf);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`gRPC backend process exited: ${code}`)); });
  });
  return { port, address: `127.0.0.1:${port}`, child, kill: async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); await exited; } };
}
