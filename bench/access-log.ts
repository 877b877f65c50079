// node bench/access-log.ts: what one access log line costs the request path, measured alone (no network, so a busy
// machine disturbs it far less than `npm run bench`'s on-vs-off scenario): AccessLog.record() for N requests, JSON and
// combined, written to a file in a temp dir, and JSON to stdout (a pipe: whole lines in PIPE_BUF writes), against the
// same loop with the access log disabled. Figures go to stderr.
//   node bench/access-log.ts [--lines 300000] | cat > /dev/null
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AccessLog } from '@veloflux/proxy/dataplane/access-log';
import type { Target } from '@veloflux/proxy/dataplane/plan';

const { values } = parseArgs({ options: { lines: { type: 'string', default: '300000' } } });
const N = Number(values.lines);
const dir = mkdtempSync(join(tmpdir(), 'veloflux-access-bench-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const req = {
  url: '/api/orders/12345?page=2', method: 'GET', httpVersion: '1.1',
  headers: { host: 'shop.example.com', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench', referer: 'https://shop.example.com/', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
  socket: { remoteAddress: '10.1.2.3' },
} as unknown as IncomingMessage;
const res = { statusCode: 200 } as ServerResponse;
const target = { backend: { level: 0, address: '10.0.0.5:8080' } } as unknown as Target;

async function run(format: 'json' | 'combined' | 'off', stdout = false): Promise<{ nsPerLine: number; dropped: number; bytes: number }> {
  let dropped = 0;
  const file = stdout ? '-' : join(dir, `${format}-${Math.random().toString(36).slice(2)}.log`);
  const log = new AccessLog({ now: Date.now, dropped: () => { dropped++; }, failed: (m) => { throw new Error(m); } });
  log.configure({ enabled: format !== 'off', format: format === 'off' ? 'json' : format, path: file, sample: 1 });
  await new Promise((r) => setTimeout(r, 50)); // the file is open
  const t0 = process.hrtime.bigint();
  // Batches of 64 "requests" (what 64 busy keep-alive connections bring per turn), yielding between them as a
  // server does, so the writer gets its turns.
  for (let i = 0; i < N; i += 64) {
    for (let j = 0; j < 64; j++) log.record(req, res, 'shop', target, 200, 1, performance.now(), 512, false);
    await new Promise((r) => setImmediate(r));
  }
  const ns = Number(process.hrtime.bigint() - t0);
  await log.close(10_000);
  let bytes = 0;
  try { bytes = stdout ? 0 : statSync(file).size; } catch { bytes = 0; }
  return { nsPerLine: ns / N, dropped, bytes };
}

for (let round = 1; round <= 3; round++) {
  const off = await run('off');
  const json = await run('json');
  const combined = await run('combined');
  const piped = await run('json', true);
  console.error(`round ${round}: off ${off.nsPerLine.toFixed(0)} ns/request; file: json ${json.nsPerLine.toFixed(0)} ns/line (${(json.bytes / N).toFixed(0)} B, dropped ${json.dropped}), combined ${combined.nsPerLine.toFixed(0)} ns/line (${(combined.bytes / N).toFixed(0)} B, dropped ${combined.dropped}); stdout: json ${piped.nsPerLine.toFixed(0)} ns/line (dropped ${piped.dropped})`);
}
