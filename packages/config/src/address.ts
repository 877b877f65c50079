// Network addresses in the config: backends ("host:port", "http://host:port", "https://host:port")
// and listeners (":8080", "127.0.0.1:8080", "[::1]:8080").

export interface Upstream {
  /** Origin for connections, e.g. "http://10.0.0.7:80". */
  readonly origin: string;
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
}

export interface ListenAddress {
  /** Interface to bind; "" = every interface. */
  readonly host: string;
  readonly port: number;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = HOST_PORT.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  return { host: m[1] as string, port };
}

/** A backend address, or an error message saying what is allowed. */
export function parseUpstream(text: string): Upstream | string {
  let rest = text;
  let tls = false;
  const scheme = /^([a-z]+):\/\//i.exec(text);
  if (scheme) {
    const name = (scheme[1] as string).toLowerCase();
    if (name !== 'http' && name !== 'https') return `must use http:// or https://, got "${text}"`;
    tls = name === 'https';
    rest = text.slice(scheme[0].length).replace(/\/$/, '');
    if (!rest.includes(':')) rest += tls ? ':443' : ':80';
  }
  const hp = splitHostPort(rest);
  if (!hp || hp.port === 0) return `must be "host:port" or "http://host:port" with a port 1-65535, got "${text}"`;
  return { origin: `${tls ? 'https' : 'http'}://${hp.host}:${hp.port}`, host: hp.host, port: hp.port, tls };
}

/** A listen address, or an error message saying what is allowed. */
export function parseListen(text: string): ListenAddress | string {
  const hp = text.startsWith(':') ? splitHostPort(`0.0.0.0${text}`) : splitHostPort(text);
  if (!hp) return `must be ":port" or "host:port" with a port 0-65535, got "${text}"`;
  const host = text.startsWith(':') ? '' : hp.host.replace(/^\[(.*)\]$/, '$1');
  return { host, port: hp.port };
}
