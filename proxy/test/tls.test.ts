// The TLS listener (SPEC 8) with certificates made in the test (openssl CLI): SNI selection incl. wildcards, ALPN
// h2 vs http/1.1 (curl and node clients), min_version refusal, rotation by a Kubernetes-style `..data` symlink swap
// under load (no failed request), a bad certificate keeps the old one, and hostile TLS clients.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as h2connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startBackends } from './helpers/backend.ts';
import type { TestBackend } from './helpers/backend.ts';
import { startTestProxy } from './helpers/proxy.ts';
import type { TlsConfig } from '@veloflux/config/types';
import type { TestProxy } from './helpers/proxy.ts';

const run = promisify(execFile);

/** A self-signed EC certificate for `cn` with these DNS names, written as tls.crt / tls.key into `dir`. */
async function makeCert(dir: string, cn: string, names: string[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.crt'), '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`]);
}

/**
 * A directory laid out like a mounted Kubernetes Secret: `..<stamp>/` holds the files, `..data` links to it,
 * `tls.crt` and `tls.key` link through `..data`. `swap` makes a new `..<stamp>/` and renames a new link over
 * `..data` (atomic), then deletes the old directory, as the kubelet does.
 */
class SecretDir {
  readonly dir: string;
  #current = '';
  #n = 0;
  constructor(root: string) {
    this.dir = root;
    mkdirSync(root, { recursive: true });
  }
  async init(cn: string, names: string[]): Promise<void> {
    const stamp = this.#stamp();
    await makeCert(join(this.dir, stamp), cn, names);
    symlinkSync(stamp, join(this.dir, '..data'));
    symlinkSync('..data/tls.crt', join(this.dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(this.dir, 'tls.key'));
    this.#current = stamp;
  }
  /** `write` fills the new directory (a real certificate, or something broken). */
  async swap(write: (dir: string) => Promise<void> | void): Promise<void> {
    const stamp = this.#stamp();
    mkdirSync(join(this.dir, stamp));
    await write(join(this.dir, stamp));
    symlinkSync(stamp, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    rmSync(join(this.dir, this.#current), { recursive: true, force: true });
    this.#current = stamp;
  }
  #stamp(): string {
    return `..2026_12_02_00_00_0${this.#n++}`;
  }
  get certFile(): string { return join(this.dir, 'tls.crt'); }
  get keyFile(): string { return join(this.dir, 'tls.key'); }
}

function tlsYaml(b: TestBackend, certs: { cert: string; key: string; hosts?: string[] }[], extra = ''): string {
  const list = certs.map((c) => `    - { cert_file: "${c.cert}", key_file: "${c.key}"${c.hosts ? `, hosts: [${c.hosts.map((h) => `"${h}"`).join(', ')}]` : ''} }\n`).join('');
  return `tls:\n  listen: "127.0.0.1:0"\n${extra}  certificates:\n${list}pools:\n  - name: app\n    backends:\n      - address: "${b.address}"\n        health_check: { interval: "30s", timeout: "1s" }\nroutes:\n  - pool: app\n`;
}

async function setup(t: { after: (fn: () => Promise<void> | void) => void }, yaml: string, b: TestBackend, extraYaml = ''): Promise<TestProxy & { tlsPort: number }> {
  const p = await startTestProxy(`${extraYaml}${yaml}`);
  t.after(async () => { await p.stop(); await b.kill(); });
  await p.waitReady();
  return Object.assign(p, { tlsPort: p.proxy.tls?.port ?? 0 });
}

/** Handshake only: the certificate's CN and the ALPN protocol chosen. */
async function handshake(port: number, opts: ConnectionOptions): Promise<{ cn: string; alpn: string | false | null; socket: TLSSocket }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
  await once(socket, 'secureConnect');
  const cn = String(socket.getPeerCertificate().subject?.CN ?? '');
  return { cn, alpn: socket.alpnProtocol, socket };
}

async function cnOf(port: number, servername?: string): Promise<string> {
  const h = await handshake(port, servername === undefined ? {} : { servername });
  h.socket.destroy();
  return h.cn;
}

test('SNI picks the certificate (exact, one-label wildcard, default); ALPN picks HTTP/2 or HTTP/1.1; both reach the backend as https', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vf-tls-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  await makeCert(join(root, 'default'), 'default', ['localhost']);
  await makeCert(join(root, 'api'), 'api', ['api.example.com', '*.api.example.com']);
  const [b] = await startBackends('primary') as [TestBackend];
  const p = await setup(t, tlsYaml(b, [
    { cert: join(root, 'default', 'tls.crt'), key: join(root, 'default', 'tls.key') },
    { cert: join(root, 'api', 'tls.crt'), key: join(root, 'api', 'tls.key'), hosts: ['api.example.com', '*.api.example.com'] },
  ]), b);
  assert.equal(await cnOf(p.tlsPort), 'default', 'no SNI: the default certificate');
  assert.equal(await cnOf(p.tlsPort, 'api.example.com'), 'api');
  assert.equal(await cnOf(p.tlsPort, 'API.Example.com'), 'api', 'SNI is case-insensitive');
  assert.equal(await cnOf(p.tlsPort, 'v1.api.example.com'), 'api', 'wildcard: one label');
  assert.equal(await cnOf(p.tlsPort, 'a.v1.api.example.com'), 'default', 'wildcard: not two labels');
  assert.equal(await cnOf(p.tlsPort, 'other.example.org'), 'default');

  const h2 = await handshake(p.tlsPort, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(h2.alpn, 'h2');
  h2.socket.destroy();
  const h1 = await handshake(p.tlsPort, { ALPNProtocols: ['http/1.1'] });
  assert.equal(h1.alpn, 'http/1.1');
  h1.socket.destroy();

  const url = `https://api.example.com:${p.tlsPort}/x`;
  const resolve = `api.example.com:${p.tlsPort}:127.0.0.1`;
  const cacert = join(root, 'api', 'tls.crt');
  assert.equal((await run('curl', ['-sS', '--http2', '--cacert', cacert, '--resolve', resolve, '-w', ' %{http_version}', url])).stdout, 'primary 2');
  assert.equal((await run('curl', ['-sS', '--http1.1', '--cacert', cacert, '--resolve', resolve, '-w', ' %{http_version}', url])).stdout, 'primary 1.1');
  assert.deepEqual(b.seen.map((s) => s.headers['x-forwarded-proto']), ['https', 'https']);
  assert.equal(b.seen[0]?.headers.host, `api.example.com:${p.tlsPort}`);
  // The cleartext listener still serves both protocols.
  assert.equal((await run('curl', ['-sS', '--http2-prior-knowledge', `${p.url}/`])).stdout, 'primary');
});

test('min_version TLSv1.3 refuses a TLSv1.2 handshake; alpn ["http/1.1"] never selects h2', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vf-tls-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  await makeCert(root, 'only', ['localhost']);
  const [b] = await startBackends('primary') as [TestBackend];
  const p = await setup(t, tlsYaml(b, [{ cert: join(root, 'tls.crt'), key: join(root, 'tls.key') }], '  min_version: "TLSv1.3"\n  alpn: ["http/1.1"]\n'), b);
  const old = tlsConnect({ host: '127.0.0.1', port: p.tlsPort, rejectUnauthorized: false, maxVersion: 'TLSv1.2' });
  const [err] = (await once(old, 'error').catch((e: unknown) => [e])) as [Error & { code?: string }];
  assert.match(String(err.code ?? err.message), /ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION|protocol version|ECONNRESET/i);
  const h = await handshake(p.tlsPort, { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(h.alpn, 'http/1.1');
  assert.equal(h.socket.getProtocol(), 'TLSv1.3');
  h.socket.destroy();
  assert.equal((await run('curl', ['-sS', '-k', '--http2', '-w', ' %{http_version}', `https://127.0.0.1:${p.tlsPort}/`])).stdout, 'primary 1.1');
  // A client whose ALPN offer has nothing in common with tls.alpn is refused (no_application_protocol).
  const none = tlsConnect({ host: '127.0.0.1', port: p.tlsPort, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
  const [alpnErr] = (await once(none, 'error').catch((e: unknown) => [e])) as [Error & { code?: string }];
  assert.match(String(alpnErr.code ?? alpnErr.message), /NO_APPLICATION_PROTOCOL/);
});

test('certificate rotation: a ..data swap under load fails no request; open connections survive; a bad swap keeps the old certificate and says so', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vf-tls-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const secret = new SecretDir(join(root, 'secret'));
  await secret.init('first', ['localhost']);
  const [b] = await startBackends('primary') as [TestBackend];
  const p = await setup(t, tlsYaml(b, [{ cert: secret.certFile, key: secret.keyFile }]), b);
  assert.equal(await cnOf(p.tlsPort), 'first');

  // An HTTP/2 session opened before the swap.
  const early = h2connect(`https://127.0.0.1:${p.tlsPort}`, { rejectUnauthorized: false });
  early.on('error', () => {});
  t.after(() => early.destroy());
  const h2get = (path: string): Promise<string> => new Promise((resolve, reject) => {
    const r = early.request({ ':path': path });
    const chunks: Buffer[] = [];
    r.on('data', (c: Buffer) => chunks.push(c));
    r.on('end', () => resolve(Buffer.concat(chunks).toString()));
    r.on('error', reject);
  });
  assert.equal(await h2get('/before'), 'primary');

  // Load: new HTTPS connections (agent off: each request handshakes) for at most 4 s / 2000 requests.
  const failures: string[] = [];
  let sent = 0;
  let stop = false;
  const seenCn = new Set<string>();
  const worker = async (): Promise<void> => {
    const until = Date.now() + 4000;
    while (!stop && Date.now() < until && sent < 2000) {
      sent++;
      try {
        const res = await new Promise<{ status: number; cn: string }>((resolve, reject) => {
          const req = httpsRequest({ host: '127.0.0.1', port: p.tlsPort, path: '/load', rejectUnauthorized: false, agent: false }, (r) => {
            const cn = String((r.socket as TLSSocket).getPeerCertificate().subject?.CN ?? '');
            r.resume();
            r.on('end', () => resolve({ status: r.statusCode ?? 0, cn }));
          });
          req.on('error', reject);
          req.end();
        });
        if (res.status !== 200) failures.push(`status ${res.status}`);
        seenCn.add(res.cn);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const load = Promise.all([worker(), worker(), worker(), worker()]);
  await sleep(500);
  await secret.swap((dir) => makeCert(dir, 'second', ['localhost']));
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && await cnOf(p.tlsPort) !== 'second') await sleep(50);
  await sleep(300);
  stop = true;
  await load;
  assert.deepEqual(failures, [], `no request failed across the swap (${sent} sent)`);
  assert.ok(seenCn.has('first') && seenCn.has('second'), `both certificates served: ${[...seenCn].join(', ')}`);
  assert.equal(await h2get('/after'), 'primary', 'the session opened before the swap still works');
  assert.ok(p.logs.some((l) => l.includes('"msg":"tls certificate reloaded"')));

  // A bad swap: a certificate whose key does not match, then a missing key. The old certificate stays.
  const readyBefore = (await fetch(`${p.adminUrl}/readyz`)).status;
  const spare = join(root, 'spare');
  await makeCert(spare, 'spare', ['localhost']);
  await secret.swap((dir) => {
    writeFileSync(join(dir, 'tls.crt'), readFileSync(join(spare, 'tls.crt')));
    writeFileSync(join(dir, 'tls.key'), '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n');
  });
  const logged = Date.now() + 5000;
  while (Date.now() < logged && !p.logs.some((l) => l.includes('tls certificate reload failed'))) await sleep(50);
  const line = p.logs.find((l) => l.includes('tls certificate reload failed')) ?? '';
  assert.match(line, /"cert_file":"[^"]*tls\.crt"/);
  assert.doesNotMatch(line, /not a key/, 'no key material in the log');
  assert.equal(await cnOf(p.tlsPort), 'second', 'the previous certificate stays in use');
  await secret.swap((dir) => { writeFileSync(join(dir, 'tls.crt'), readFileSync(join(spare, 'tls.crt'))); });
  await sleep(300);
  assert.equal(await cnOf(p.tlsPort), 'second');
  assert.equal((await fetch(`${p.adminUrl}/readyz`)).status, readyBefore, '/readyz unchanged');
  const metrics = await (await fetch(`${p.adminUrl}/metrics`)).text();
  assert.match(metrics, /veloflux_tls_certificate_reloads_total\{cert_file="[^"]*tls\.crt",result="error"\} [1-9]/);
  assert.match(metrics, /veloflux_tls_certificate_reloads_total\{cert_file="[^"]*tls\.crt",result="ok"\} 1/);
  // Fixed again: served.
  await secret.swap((dir) => makeCert(dir, 'third', ['localhost']));
  const fixed = Date.now() + 5000;
  while (Date.now() < fixed && await cnOf(p.tlsPort) !== 'third') await sleep(50);
  assert.equal(await cnOf(p.tlsPort), 'third');
});

test('a missing certificate file at start is a clear start error naming it', async () => {
  const [b] = await startBackends('primary') as [TestBackend];
  try {
    await assert.rejects(startTestProxy(tlsYaml(b, [{ cert: '/nonexistent/tls.crt', key: '/nonexistent/tls.key' }])), /cert_file \/nonexistent\/tls\.crt: ENOENT/);
  } finally {
    await b.kill();
  }
});

test('abuse: a handshake that never completes, plain HTTP on the TLS port, a half handshake; the proxy keeps serving', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vf-tls-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  await makeCert(root, 'only', ['localhost']);
  const [b] = await startBackends('primary') as [TestBackend];
  const p = await setup(t, tlsYaml(b, [{ cert: join(root, 'tls.crt'), key: join(root, 'tls.key') }]), b, 'dataplane: { client_header_timeout: "400ms" }\n');
  const rawClose = async (bytes: string | Buffer | undefined): Promise<'closed' | 'open'> => {
    const s = netConnect(p.tlsPort, '127.0.0.1');
    s.on('error', () => {});
    s.resume();
    await once(s, 'connect');
    if (bytes !== undefined) s.write(bytes);
    const v = await Promise.race([new Promise<'closed'>((r) => s.once('close', () => r('closed'))), sleep(4000).then(() => 'open' as const)]);
    s.destroy();
    return v;
  };
  assert.equal(await rawClose(undefined), 'closed', 'silence: closed after the handshake timeout');
  assert.equal(await rawClose('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'closed', 'plain HTTP on the TLS port');
  // The first bytes of a ClientHello record, then nothing.
  assert.equal(await rawClose(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])), 'closed', 'a half ClientHello');
  assert.equal((await run('curl', ['-sS', '-k', '--http2', `https://127.0.0.1:${p.tlsPort}/`])).stdout, 'primary');
  assert.ok(p.proxy.controller.status().every((pool) => pool.activeLevel === 0));
});

test('the certificate directory watch re-reads on the kubelet\'s ..data swap, not for other files written there', async (t) => {
  const { CertStore } = await import('../src/dataplane/certs.ts');
  const dir = mkdtempSync(join(tmpdir(), 'vf-certwatch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const secret = new SecretDir(dir);
  await secret.init('watch.test', ['watch.test']);
  const warnings: string[] = [];
  const tls: TlsConfig = { listen: { host: '127.0.0.1', port: 0 } as TlsConfig['listen'], minVersion: 'TLSv1.2', alpn: ['h2', 'http/1.1'],
    certificates: [{ certFile: secret.certFile, keyFile: secret.keyFile, hosts: [] }] };
  // A poll far beyond the test: only the directory watch can re-read.
  const store = await CertStore.open(tls, { info: () => {}, warn: (_f, m) => warnings.push(m) }, () => {}, 600_000);
  t.after(() => store.close());
  // A busy neighbour: 40 writes to a log file over ~400 ms (bounded), then a pause longer than the 50 ms debounce.
  for (let i = 0; i < 40; i++) { writeFileSync(join(dir, 'app.log'), `line ${i}\n`, { flag: 'a' }); await sleep(10); }
  await sleep(300);
  assert.equal(store.rereads, 0, 'writes to another file in the directory re-read nothing');
  // The kubelet's swap (..data_tmp renamed over ..data) is seen, and so is a write to the pair's own file.
  await secret.swap((d) => makeCert(d, 'watch.test', ['watch.test']));
  const deadline = Date.now() + 5000;
  while (store.rereads === 0 && Date.now() < deadline) await sleep(20);
  assert.ok(store.rereads >= 1, 'a ..data swap re-reads the pair');
  const before = store.rereads;
  writeFileSync(join(dir, 'plain.crt'), readFileSync(secret.certFile));
  await sleep(300);
  assert.equal(store.rereads, before, 'a file that is not the pair\'s does not re-read');
  assert.deepEqual(warnings, []);
});
