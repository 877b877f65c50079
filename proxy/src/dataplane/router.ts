// Host + path -> pool. Pure. Host match order: exact host, then the longest "*.suffix", then routes without a
// host; inside the first host group that has a matching prefix, the longest path prefix wins. Prefixes are
// plain string prefixes (as in nginx and Envoy): "/api" also matches "/apix".
import type { RouteConfig } from '@veloflux/config/types';

interface Entry {
  readonly prefix: string;
  readonly pool: string;
}

export class Router {
  readonly #exact = new Map<string, Entry[]>();
  readonly #suffix: { suffix: string; entries: Entry[] }[] = [];
  readonly #any: Entry[] = [];

  constructor(routes: readonly RouteConfig[]) {
    const suffixes = new Map<string, Entry[]>();
    for (const r of routes) {
      const entry = { prefix: r.pathPrefix, pool: r.pool };
      if (r.host === undefined) this.#any.push(entry);
      else if (r.host.startsWith('*.')) push(suffixes, r.host.slice(1), entry);
      else push(this.#exact, r.host, entry);
    }
    for (const [suffix, entries] of suffixes) this.#suffix.push({ suffix, entries });
    this.#suffix.sort((a, b) => b.suffix.length - a.suffix.length);
    for (const list of [...this.#exact.values(), ...this.#suffix.map((s) => s.entries), this.#any]) {
      list.sort((a, b) => b.prefix.length - a.prefix.length);
    }
  }

  /** The pool for a Host header value (port allowed) and a request target, or undefined. */
  match(hostHeader: string | undefined, url: string): string | undefined {
    // Common case: no route names a host, so the Host header need not even be parsed.
    if (this.#exact.size === 0 && this.#suffix.length === 0) return longest(this.#any, url);
    const host = normalizeHost(hostHeader);
    if (host !== '') {
      const exact = this.#exact.get(host);
      const hit = exact && longest(exact, url);
      if (hit !== undefined) return hit;
      for (const s of this.#suffix) {
        if (host.endsWith(s.suffix) && host.length > s.suffix.length) {
          const found = longest(s.entries, url);
          if (found !== undefined) return found;
        }
      }
    }
    return longest(this.#any, url);
  }
}

function push<K>(map: Map<K, Entry[]>, key: K, entry: Entry): void {
  const list = map.get(key);
  if (list) list.push(entry);
  else map.set(key, [entry]);
}

function longest(entries: readonly Entry[], url: string): string | undefined {
  for (const e of entries) if (url.startsWith(e.prefix)) return e.pool;
  return undefined;
}

function normalizeHost(h: string | undefined): string {
  if (h === undefined) return '';
  let host = h;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    host = end > 0 ? host.slice(0, end + 1) : host;
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) host = host.slice(0, colon);
  }
  return host.toLowerCase();
}
