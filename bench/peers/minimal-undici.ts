// The reference proxy: node:http in front of one undici Pool, forwarding with `pool.stream`. Deliberately minimal
// (no routing, no retries, no health, no header hygiene): it is the yardstick VeloFlux must match per core.
//   node bench/peers/minimal-undici.ts --listen 127.0.0.1:8080 --upstream http://127.0.0.1:8081
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';

const { values } = parseArgs({ options: { listen: { type: 'string' }, upstream: { type: 'string' } } });
const [host, port] = (values.listen ?? '').split(':');
if (!host || !port || !values.upstream) {
  console.error('usage: minimal-undici.ts --listen HOST:PORT --upstream http://HOST:PORT');
  process.exit(2);
}

// Keep-alive pool to the backend; undici's defaults otherwise (unbounded connections, 4 s keep-alive).
const pool = new Pool(values.upstream);

const server = http.createServer((req, res) => {
  pool.stream(
    { path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers: req.headers, body: req },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, headers as http.OutgoingHttpHeaders);
      return res;
    },
    (err) => {
      if (!err) return;
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502).end();
    },
  );
});
server.listen(Number(port), host, () => console.log(`listening ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
