// The benchmark backend, run as its own process:
//   node bench/backend.ts --port 8081 --name primary
// node:http, keep-alive, a small fixed body; every response names the server in `x-served-by` (and the body), so a
// load generator can count per second who served. GET /health answers 200 too.
// SIGUSR2 makes it *hung*: it keeps accepting connections and reading requests but never answers (the "hung" failover
// drill) — in the same process, so the port never refuses a connection. SIGUSR1 restores it the way a restart would:
// the requests left hanging are cut off (their sockets destroyed) and new requests are answered again.
// Prints "listening <port>" once bound; SIGTERM exits 0.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    name: { type: 'string', default: 'backend' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: backend.ts --port N --name NAME');
  process.exit(2);
}
const name = values.name;

// 64 bytes whatever the name, so every backend costs the same to serve.
const body = Buffer.from(`served by ${name}`.padEnd(63, '.') + '\n');

let hung = false;
const hanging = new Set<http.ServerResponse>();
const server = http.createServer((req, res) => {
  req.resume();
  if (hung) {
    hanging.add(res);
    res.on('close', () => hanging.delete(res));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-served-by': name });
  res.end(body);
});
server.keepAliveTimeout = 65_000; // longer than every proxy's idle timeout, so the proxy decides when to close
server.headersTimeout = 66_000;
server.requestTimeout = 0; // a hung request must stay hung
server.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
process.on('SIGUSR2', () => {
  hung = true;
  console.log('hung');
});
process.on('SIGUSR1', () => {
  hung = false;
  for (const res of hanging) res.socket?.destroy();
  hanging.clear();
  console.log('restored');
});
process.on('SIGTERM', () => process.exit(0));
