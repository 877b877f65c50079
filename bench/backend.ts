// The benchmark backend, run as its own process:
//   node bench/backend.ts --port 8081 --name primary [--mode ok|hung]
// ok:   node:http, keep-alive, a small fixed body; every response names the server in `x-served-by` (and the body),
//       so a load generator can count per second who served. GET /health answers 200 too.
// hung: accepts connections and reads requests but never answers (the "hung" failover drill).
// Prints "listening <port>" once bound; SIGTERM exits 0.
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    name: { type: 'string', default: 'backend' },
    mode: { type: 'string', default: 'ok' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: backend.ts --port N --name NAME [--mode ok|hung]');
  process.exit(2);
}
const name = values.name;

// 64 bytes whatever the name, so every backend costs the same to serve.
const body = Buffer.from(`served by ${name}`.padEnd(63, '.') + '\n');

let server: net.Server;
if (values.mode === 'hung') {
  const sockets = new Set<net.Socket>();
  server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => { /* read and ignore: never answer */ });
    socket.on('error', () => { /* peer gave up */ });
    socket.on('close', () => sockets.delete(socket));
  });
} else {
  const s = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-served-by': name });
    res.end(body);
  });
  s.keepAliveTimeout = 65_000; // longer than every proxy's idle timeout, so the proxy decides when to close
  s.headersTimeout = 66_000;
  server = s;
}
server.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
process.on('SIGTERM', () => process.exit(0));
