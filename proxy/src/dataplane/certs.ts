// The TLS listener's certificates (SPEC 8): loaded from PEM files, chosen by SNI, re-read while the proxy runs.
//
// A mounted Kubernetes Secret changes by an atomic swap of the `..data` symlink in its directory (the old files
// are deleted, `tls.crt` itself is a symlink through `..data`), so a watch on the file's inode would see nothing
// after the first swap: the DIRECTORY is watched, and an event there on a pair's own file or on a `..` entry
// re-reads the pairs (other files written there do not). Where directory events do not arrive (network and some
// overlay mounts) a poll re-reads every `reloadPollMs` too.
// A re-read that finds the same bytes changes nothing; new bytes that do not make a certificate (a missing
// file, a half-written one, a key that does not match) keep the previous certificate, log a warning naming the
// file and count `veloflux_tls_certificate_reloads_total{result="error"}`. /readyz does not change either way:
// the listener keeps serving with what it has. Open connections keep the context they were handshaken with.
//
// SNI selection:  exact host  >  "*.suffix" for one more label  >  the default certificate (the first one
// without `hosts`, else the first one). A client that sends no SNI gets the default.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import type { CertificateConfig, TlsConfig } from '@veloflux/config/types';
import { concerns, watchedNames } from './dir-watch.ts';

export interface CertLog {
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
}

export interface LoadedPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly context: SecureContext;
}

/** Reads and checks one pair; throws with a message that names the file (never the key's contents). */
export async function loadPair(c: CertificateConfig, minVersion: TlsConfig['minVersion']): Promise<LoadedPair> {
  let cert: Buffer;
  let key: Buffer;
  try { cert = await readFile(c.certFile); } catch (err) { throw new Error(`cert_file ${c.certFile}: ${(err as Error).message}`); }
  try { key = await readFile(c.keyFile); } catch (err) { throw new Error(`key_file ${c.keyFile}: ${(err as Error).message}`); }
  try {
    return { cert, key, context: createSecureContext({ cert, key, minVersion }) };
  } catch (err) {
    // OpenSSL's message ("key values mismatch", "no start line") says what is wrong; it quotes no key material.
    throw new Error(`cert_file ${c.certFile} / key_file ${c.keyFile}: not a usable certificate and key (${(err as Error).message})`);
  }
}

/** SNI name -> index of its certificate (pure; `hosts` are lower-case, as resolved). */
export function pickCertificate(certs: readonly CertificateConfig[], servername: string | undefined): number {
  const fallback = Math.max(0, certs.findIndex((c) => c.hosts.length === 0));
  if (servername === undefined || servername === '') return fallback;
  const name = servername.toLowerCase();
  const exact = certs.findIndex((c) => c.hosts.includes(name));
  if (exact >= 0) return exact;
  const dot = name.indexOf('.');
  if (dot > 0) {
    const wildcard = `*${name.slice(dot)}`;
    const w = certs.findIndex((c) => c.hosts.includes(wildcard));
    if (w >= 0) return w;
  }
  return fallback;
}

export class CertStore {
  readonly #tls: TlsConfig;
  readonly #log: CertLog;
  readonly #counted: (certFile: string, result: 'ok' | 'error') => void;
  readonly #pairs: LoadedPair[] = [];
  /** Per pair, the failure last reported: the same one is logged and counted once, not at every poll. */
  readonly #errors: (string | undefined)[] = [];
  readonly #watchers: FSWatcher[] = [];
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #reloading: Promise<void> | undefined;
  #again = false;
  #rereads = 0;
  /** Called when the default certificate changes (the server's own context serves clients without SNI). */
  onDefaultChange: ((pair: LoadedPair) => void) | undefined;

  private constructor(tls: TlsConfig, log: CertLog, counted: (certFile: string, result: 'ok' | 'error') => void) {
    this.#tls = tls;
    this.#log = log;
    this.#counted = counted;
  }

  /** Loads every pair; a start with a bad pair fails (there is no previous certificate to keep). */
  static async open(tls: TlsConfig, log: CertLog, counted: (certFile: string, result: 'ok' | 'error') => void, pollMs: number): Promise<CertStore> {
    const store = new CertStore(tls, log, counted);
    for (const c of tls.certificates) store.#pairs.push(await loadPair(c, tls.minVersion));
    store.#watch(pollMs);
    return store;
  }

  get defaultPair(): LoadedPair {
    return this.#pairs[pickCertificate(this.#tls.certificates, undefined)] as LoadedPair;
  }

  context(servername: string | undefined): SecureContext {
    return (this.#pairs[pickCertificate(this.#tls.certificates, servername)] as LoadedPair).context;
  }

  /** Re-reads done since the store opened (the watch, the poll, reload()), for tests and diagnostics. */
  get rereads(): number {
    return this.#rereads;
  }

  #watch(pollMs: number): void {
    for (const [dir, names] of watchedNames(this.#tls.certificates.flatMap((c) => [c.certFile, c.keyFile]))) {
      try {
        const w = watch(dir, { persistent: false }, (_event, filename) => { if (concerns(names, filename)) this.#soon(); });
        w.on('error', () => {});
        this.#watchers.push(w);
      } catch {
        // A directory that cannot be watched is still polled.
      }
    }
    this.#poll = setInterval(() => this.#soon(), pollMs);
    this.#poll.unref();
  }

  /** A swap is several events (new dir, symlink rename, old dir removed): one re-read after they settle. */
  #soon(): void {
    if (this.#debounce !== undefined) return;
    this.#debounce = setTimeout(() => { this.#debounce = undefined; void this.reload(); }, 50);
    this.#debounce.unref();
  }

  /** Re-reads every pair now (the watch and the poll call this); resolves when done. */
  reload(): Promise<void> {
    if (this.#reloading !== undefined) { this.#again = true; return this.#reloading; }
    this.#reloading = (async () => {
      do {
        this.#again = false;
        await this.#reloadOnce();
      } while (this.#again);
      this.#reloading = undefined;
    })();
    return this.#reloading;
  }

  async #reloadOnce(): Promise<void> {
    this.#rereads++;
    const certs = this.#tls.certificates;
    const defaultIndex = pickCertificate(certs, undefined);
    for (let i = 0; i < certs.length; i++) {
      const c = certs[i] as CertificateConfig;
      const old = this.#pairs[i] as LoadedPair;
      let cert: Buffer;
      let key: Buffer;
      try {
        [cert, key] = await Promise.all([readFile(c.certFile), readFile(c.keyFile)]);
      } catch (err) {
        this.#failed(i, c, (err as Error).message);
        continue;
      }
      if (cert.equals(old.cert) && key.equals(old.key)) { this.#errors[i] = undefined; continue; }
      let pair: LoadedPair;
      try {
        pair = { cert, key, context: createSecureContext({ cert, key, minVersion: this.#tls.minVersion }) };
      } catch (err) {
        this.#failed(i, c, `not a usable certificate and key (${(err as Error).message})`);
        continue;
      }
      this.#pairs[i] = pair;
      this.#errors[i] = undefined;
      if (i === defaultIndex) this.onDefaultChange?.(pair);
      this.#counted(c.certFile, 'ok');
      this.#log.info({ cert_file: c.certFile, hosts: c.hosts }, 'tls certificate reloaded');
    }
  }

  #failed(i: number, c: CertificateConfig, why: string): void {
    if (this.#errors[i] === why) return;
    this.#errors[i] = why;
    this.#counted(c.certFile, 'error');
    this.#log.warn({ cert_file: c.certFile, key_file: c.keyFile, error: why }, 'tls certificate reload failed; the previous certificate stays in use');
  }

  close(): void {
    for (const w of this.#watchers) w.close();
    if (this.#poll !== undefined) clearInterval(this.#poll);
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
  }
}
