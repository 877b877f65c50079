// The informer's 410 path, which a fresh apiserver does not produce on demand (it needs an etcd compaction):
// a small HTTP server speaks the list/watch protocol, sends 410 Gone, and serves a changed list.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { Informer } from '../src/informer.ts';
import type { Change } from '../src/informer.ts';
import { Kube } from '../src/kube.ts';
import type { KubeObject } from '../src/kube.ts';
import { createLogger } from '@veloflux/service/log';
import { SERVICE } from '../src/log.ts';

const obj = (name: string, rv: string): KubeObject => ({ metadata: { name, namespace: 'ns', resourceVersion: rv } });

test('410 Gone: the informer relists, and reports what changed while it was not watching', async (t) => {
  let lists = 0;
  const watches: string[] = [];
  const open = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    res.setHeader('content-type', 'application/json');
    if (url.searchParams.get('watch') !== 'true') {
      lists++;
      const items = lists === 1 ? [obj('a', '1'), obj('b', '2')] : [obj('b', '11'), obj('c', '15')];
      res.end(JSON.stringify({ metadata: { resourceVersion: lists === 1 ? '10' : '20' }, items }));
      return;
    }
    watches.push(url.searchParams.get('resourceVersion') ?? '');
    if (watches.length === 1) {
      res.write(`${JSON.stringify({ type: 'MODIFIED', object: obj('b', '11') })}\n`);
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', code: 410, message: 'too old resource version' } })}\n`);
      return;
    }
    open.add(res); // a quiet watch, open until the informer stops
    res.write('');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.after(() => { for (const r of open) r.destroy(); server.close(); });
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as { port: number }).port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 't' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const informer = new Informer<KubeObject>('pods', new Kube(kc), { path: '/api/v1/pods' }, createLogger(SERVICE, { level: 'silent' }));
  const changes: string[] = [];
  informer.onChange((c: Change<KubeObject>) => changes.push(`${c.type} ${c.object.metadata.name}@${c.object.metadata.resourceVersion}`));
  informer.start();
  const deadline = Date.now() + 5_000;
  while (watches.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await informer.stop();
  assert.deepEqual(watches, ['10', '20'], 'watched from the first list, then from the relist');
  assert.equal(lists, 2);
  assert.equal(informer.restarts, 0, '410 is a relist, not an error');
  assert.deepEqual(changes, ['added a@1', 'added b@2', 'updated b@11', 'added c@15', 'deleted a@1']);
  assert.deepEqual(informer.list().map((o) => o.metadata.name).sort(), ['b', 'c']);
});
