// Which events of a watched directory should re-read a file in it. Files that rotate while the proxy runs (TLS
// certificates, the admin token) are watched through their DIRECTORY, since a mounted Kubernetes Secret changes
// by the kubelet's atomic swap of `..data` and the file's own inode never does (certs.ts, token.ts). Only the
// files' own names and the kubelet's `..` entries (`..data`, `..data_tmp`, `..<timestamp>`) matter: anything else
// written in that directory (a log, another program's files) would otherwise cost a re-read every 50 ms.
import { basename, dirname } from 'node:path';

/** The directories to watch for these files, each with the names in it whose events matter. */
export function watchedNames(files: readonly string[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const f of files) {
    const dir = dirname(f);
    const names = out.get(dir) ?? new Set<string>();
    names.add(basename(f));
    out.set(dir, names);
  }
  return out;
}

/** An event on `filename` in a directory whose files of interest are `names`. No name (some platforms, an
 *  overflowed queue) counts: re-reading is safe, missing a rotation is not. */
export function concerns(names: ReadonlySet<string>, filename: string | Buffer | null): boolean {
  if (filename === null) return true;
  const name = typeof filename === 'string' ? filename : filename.toString();
  return names.has(name) || name.startsWith('..');
}
