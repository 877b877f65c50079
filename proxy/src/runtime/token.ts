// The admin token: env VELOFLUX_ADMIN_TOKEN, else the contents of admin.token_file (e.g. a mounted Secret).
// Never logged. Undefined when neither is set: the admin API then refuses every protected call.
//
// The file is re-read when it changes, so a rotated Kubernetes Secret reaches a running proxy without a restart.
// A mounted Secret is a directory of symlinks (kubelet's AtomicWriter):
//
//   token -> ..data/token          ..data -> ..2026_12_01_21_50_00.123456789     ..2026_12_01_.../token
//
// A rotation writes a new timestamped directory, points `..data` at it with one rename and deletes the old one.
// The file's inode (and the symlink `token` itself) never changes, so a watch on the file would miss it: we watch
// the DIRECTORY (an event on the file's own name or a `..` entry re-reads through the symlinks: dir-watch.ts) and
// also poll, for file systems where watching does not work (some network and overlay mounts) or when the directory
// itself is replaced.
//
// What happens when the file is missing or empty after a rotation: no token is accepted at all (every protected
// route answers 401 VF_ERR_ADMIN_TOKEN_UNSET) until the file has a token again; the old token is not kept, since
// removing it is how an operator revokes it. Each transition is logged once, with the file name and never the token.
import { readFileSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import type { Config } from '@veloflux/config/types';
import { DEFAULTS } from '@veloflux/config/defaults';
import type { Logger } from './log.ts';
import { concerns, watchedNames } from '../dataplane/dir-watch.ts';

type Read = { readonly token: string } | { readonly missing: string };

function readFileToken(file: string): Read {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return text === '' ? { missing: 'empty' } : { token: text };
  } catch (err) {
    return { missing: (err as NodeJS.ErrnoException).code ?? 'unreadable' };
  }
}

/** At start: the token, or undefined; a configured token file that cannot be read is a start error. */
export function readToken(config: Config, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromEnv = env.VELOFLUX_ADMIN_TOKEN?.trim();
  if (fromEnv) return fromEnv;
  if (config.admin.tokenFile === undefined) return undefined;
  const r = readFileToken(config.admin.tokenFile);
  if ('token' in r) return r.token;
  if (r.missing === 'empty') return undefined;
  throw new Error(`cannot read admin.token_file ${config.admin.tokenFile}: ${r.missing}`);
}

export interface TokenSourceOptions {
  readonly log: Logger;
  readonly env?: NodeJS.ProcessEnv;
  /** Poll period (ms), the fallback where directory events do not arrive. */
  readonly pollMs?: number;
  /** false: poll only (tests of the fallback). */
  readonly watch?: boolean;
}

/** The current admin token, kept up to date with admin.token_file. */
export class TokenSource {
  #token: string | undefined;
  readonly #file: string | undefined;
  readonly #log: Logger;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #pending: NodeJS.Timeout | undefined;
  #state: string;
  #closed = false;
  readonly #useWatch: boolean;

  constructor(config: Config, opts: TokenSourceOptions) {
    this.#log = opts.log;
    const env = opts.env ?? process.env;
    this.#token = readToken(config, env);
    this.#useWatch = opts.watch ?? true;
    // The env variable wins and never changes; only a file is followed.
    this.#file = env.VELOFLUX_ADMIN_TOKEN?.trim() ? undefined : config.admin.tokenFile;
    this.#state = this.#token === undefined ? 'empty' : 'ok';
    if (this.#file === undefined) return;
    this.#startWatch();
    this.#poll = setInterval(() => { this.#startWatch(); this.#reload(); }, opts.pollMs ?? DEFAULTS.adminTokenPollMs);
    this.#poll.unref();
  }

  current(): string | undefined {
    return this.#token;
  }

  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#poll);
    clearTimeout(this.#pending);
  }

  #startWatch(): void {
    if (!this.#useWatch || this.#watcher || this.#closed || this.#file === undefined) return;
    try {
      const [dir, names] = [...watchedNames([this.#file])][0] as [string, Set<string>];
      const w = watch(dir, { persistent: false }, (_event, filename) => { if (concerns(names, filename)) this.#soon(); });
      // The directory went away or cannot be watched any more: the poll keeps going and re-creates the watch.
      w.on('error', () => { w.close(); if (this.#watcher === w) this.#watcher = undefined; });
      this.#watcher = w;
    } catch {
      this.#watcher = undefined;
    }
  }

  /** A rotation is several directory events (new dir, ..data_tmp, rename, old dir removed): read once they settle. */
  #soon(): void {
    if (this.#pending || this.#closed) return;
    this.#pending = setTimeout(() => { this.#pending = undefined; this.#reload(); }, 50);
    this.#pending.unref();
  }

  #reload(): void {
    if (this.#closed || this.#file === undefined) return;
    const r = readFileToken(this.#file);
    const token = 'token' in r ? r.token : undefined;
    const state = 'token' in r ? 'ok' : r.missing;
    const changed = token !== this.#token;
    this.#token = token;
    if (token !== undefined && changed) {
      this.#log.info({ file: this.#file }, 'admin token reloaded from admin.token_file');
    } else if (token === undefined && state !== this.#state) {
      this.#log.warn({ file: this.#file, reason: state }, 'admin token file is missing or empty: every protected admin call is refused until it holds a token');
    }
    this.#state = state;
  }
}
