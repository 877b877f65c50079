import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Router } from '../src/dataplane/router.ts';

const router = new Router([
  { host: 'app.example.com', pathPrefix: '/', pool: 'app' },
  { host: 'app.example.com', pathPrefix: '/api', pool: 'api' },
  { host: '*.example.com', pathPrefix: '/', pool: 'wild' },
  { host: '*.eu.example.com', pathPrefix: '/', pool: 'eu' },
  { host: undefined, pathPrefix: '/static', pool: 'static' },
  { host: undefined, pathPrefix: '/', pool: 'default' },
]);

test('routes: a table of host and path to pool', () => {
  const rows: [string | undefined, string, string | undefined][] = [
    ['app.example.com', '/', 'app'],
    ['APP.example.com:8080', '/api/v1?x=1', 'api'],
    ['app.example.com', '/apix', 'api'],
    ['shop.example.com', '/', 'wild'],
    ['a.eu.example.com', '/', 'eu'],
    ['example.com', '/', 'default'],
    ['other.org', '/static/x.css', 'static'],
    [undefined, '/', 'default'],
    ['[::1]:8080', '/static', 'static'],
  ];
  for (const [host, url, pool] of rows) assert.equal(router.match(host, url), pool, `${host} ${url}`);
});

test('routes: no match when no route covers the host and path', () => {
  const r = new Router([{ host: 'only.example.com', pathPrefix: '/app', pool: 'x' }]);
  assert.equal(r.match('only.example.com', '/other'), undefined);
  assert.equal(r.match('else.example.com', '/app'), undefined);
});
