// The proxy's version: proxy/package.json's, read once (from src/runtime and from the build's dist/runtime alike,
// both two folders below the workspace). `veloflux-proxy --version`, veloflux_build_info{version}.
import { readFileSync } from 'node:fs';

export const PROXY_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
