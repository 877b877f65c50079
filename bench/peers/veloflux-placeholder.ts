// STAND-IN used only while proxy/src/main.ts does not exist (the real proxy is being written on main). It accepts the
// proxy's command line and config, answers /readyz, and forwards to level 0, retrying once on level 1 on error.
// Figures taken with it are NOT VeloFlux's; the bench prints a warning when it is used.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Pool, type Dispatcher } from 'undici';
import { parse } from 'yaml';

const { values } = parseArgs({ options: { config: { type: 'string' }, workers: { type: 'string' } } });
interface Config {
  listen: string;
  admin: { listen: string };
  pools: { backends: { address: string; failover?: boolean; failover_level?: number }[] }[];
}
const cfg = parse(readFileSync(values.config!, 'utf8')) as Config;
const backends = cfg.pools[0]!.backends;
const level = (b: Config['pools'][0]['backends'][0]): number => b.failover_level ?? (b.failover ? 1 : 0);
const pools = [0, 1].map((l) => new Pool(`http://${backends.find((b) => level(b) === l)!.address}`));

function forward(req: http.IncomingMessage, res: http.ServerResponse, attempt: number): void {
  pools[attempt]!.stream(
    { path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers: req.headers },
    ({ statusCode, headers }) => {
      res.writeHead(statusCode, headers as http.OutgoingHttpHeaders);
      return res;
    },
    (err) => {
      if (!err) return;
      if (!res.headersSent && attempt === 0) forward(req, res, 1);
      else if (!res.headersSent) res.writeHead(502).end();
      else res.destroy(err);
    },
  );
}

const hostPort = (s: string): [string, number] => [s.slice(0, s.lastIndexOf(':')), Number(s.slice(s.lastIndexOf(':') + 1))];
const [host, port] = hostPort(cfg.listen);
http.createServer((req, res) => forward(req, res, 0)).listen(port, host);
const [ahost, aport] = hostPort(cfg.admin.listen);
http.createServer((_req, res) => res.writeHead(200).end('ok\n')).listen(aport, ahost);
process.on('SIGTERM', () => process.exit(0));
