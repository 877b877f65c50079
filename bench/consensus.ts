// npm run bench:consensus: how fast one shared decision reaches every replica (SPEC 9), on the real control plane.
//   npm run bench:consensus [-- --proxies 20 --changes 20 --interval 300ms]
// A kube-apiserver + etcd (test/cluster), the operator as a process, N proxy processes on 127.0.0.x selected by
// one FailoverPool (shared mode), a primary whose health the bench flips for every proxy at once, and a backup.
// Per change: t0 = the probe that changes the verdict (the answer to the (majority)-th proxy to see the new health,
// recorded by the backend), t1 = the last proxy serving the new level (its failover event's own timestamp).
// Failover changes are t1 - t0; failback changes also wait the recovery interval, which is subtracted.
// Printed: p50 / p99 / max of the decision latency, and the spread between the first and the last proxy. Figures,
// not assertions: the machine may be shared (take them with `uptime` load < 0.5).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '@veloflux/config/duration';
import { CLUSTER_ENV, startControlPlane } from '../test/cluster/controlplane.ts';
import { installCrds } from '../test/cluster/testenv.ts';
import { admin, CRD_YAML, createProxyPod, fpPath, freePort, operatorCredentials, startOperator, startProxy, TOKEN, until } from '../test/operator/env.ts';
import type { ProxyProc } from '../test/operator/env.ts';
import { LevelRecorder, ProbeBackend } from '../test/operator/consensus-env.ts';

const { values: args } = parseArgs({
  options: {
    proxies: { type: 'string', default: '20' },
    changes: { type: 'string', default: '20' },
    interval: { type: 'string', default: '300ms' },
    recovery: { type: 'string', default: '500ms' },
  },
});
const N = Math.max(1, Math.min(100, Number(args.proxies)));
const CHANGES = Math.max(2, Math.min(200, Number(args.changes)));
const INTERVAL = args.interval as string;
const RECOVERY_MS = parseDuration(args.recovery as string) ?? 500;

const pct = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};

async function main(): Promise<void> {
  const cleanups: (() => Promise<void> | void)[] = [];
  const t = { after: (fn: () => Promise<void> | void) => { cleanups.push(fn); } } as never;
  const cp = await startControlPlane();
  cleanups.push(() => cp.stop());
  const { stop: _stop, ...info } = cp;
  const file = join(cp.dir, 'cluster.json');
  writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
  process.env[CLUSTER_ENV] = file;
  try {
    const kube = admin();
    const ns = `bench-consensus-${process.pid}`;
    await kube.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await installCrds(CRD_YAML);
    const kubeconfig = await operatorCredentials(ns);
    await kube.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'veloflux-admin-token', labels: { 'veloflux.io/secret': 'true' } }, stringData: { token: TOKEN } });
    const primary = await ProbeBackend.start('primary');
    const backup = await ProbeBackend.start('backup');
    cleanups.push(() => primary.close(), () => backup.close());
    const [dataPort, adminPort] = [await freePort(), await freePort()];
    const proxies: ProxyProc[] = [];
    cleanups.push(() => Promise.all(proxies.map((p) => p.stop())).then(() => undefined));
    process.stderr.write(`starting ${N} proxies ...\n`);
    for (let i = 0; i < N; i++) {
      const ip = `127.0.1.${10 + i}`;
      proxies.push(await startProxy(ip, dataPort, adminPort, backup.address, { env: { POD_NAME: `proxy-${i}` } }));
      await createProxyPod(ns, `proxy-${i}`, ip, adminPort);
    }
    await startOperator(t, kubeconfig, ns);
    await kube.create(fpPath(ns), {
      apiVersion: 'veloflux.io/v1alpha1', kind: 'FailoverPool', metadata: { name: 'app' },
      spec: {
        proxySelector: { matchLabels: { app: 'proxy' } },
        routes: [{ hosts: ['app.example.com'] }],
        checkInterval: INTERVAL,
        recoveryInterval: args.recovery,
        backends: [
          { address: primary.address, healthCheck: { timeout: '250ms', unhealthyThreshold: 1, healthyThreshold: 1 } },
          // The backup is never failed: gentle probes, so a loaded machine's probe timeouts cannot leave nothing serving.
          { address: backup.address, failoverLevel: 1, healthCheck: { interval: '1s', timeout: '900ms', unhealthyThreshold: 3, healthyThreshold: 1 } },
        ],
      },
    });
    const levels = async (): Promise<string> => (await Promise.all(proxies.map(async (p) => {
      const r = await fetch(`${p.adminUrl}/api/v1/failover/status?pool=app`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => undefined);
      const j = r?.ok ? await r.json() as { pools: { activeLevel: number; decision: { source: string } }[] } : undefined;
      return j ? `${j.pools[0]?.decision.source}:${j.pools[0]?.activeLevel}` : 'none';
    }))).join(',');
    await until('every proxy on a shared decision, level 0', async () => ((await levels()) === Array(N).fill('shared:0').join(',') ? true : undefined), 120_000, 200);
    const recorders = proxies.map((p, i) => new LevelRecorder(`proxy-${i}`, p.adminUrl, TOKEN, 'app'));
    cleanups.push(() => { for (const r of recorders) r.close(); });
    await Promise.all(recorders.map((r) => r.connected()));
    const majority = Math.floor(N / 2) + 1;
    const latency: number[] = [];
    const spread: number[] = [];
    for (let c = 0; c < CHANGES; c++) {
      const down = c % 2 === 0;
      const level = down ? 1 : 0;
      primary.probeLog = [];
      const flip = Date.now();
      primary.healthy = () => !down;
      const seen = (): number => recorders.filter((r) => r.changes.some((x) => x.at >= flip && x.level === level)).length;
      await until(`change ${c + 1}: all ${N} proxies on level ${level}`, () => (seen() === N ? true : undefined), 60_000, 10);
      // The verdict changes with the majority-th proxy's first probe that sees the new health.
      const firsts = new Map<string, number>();
      for (const p of primary.probeLog) if (p.ok === !down && !firsts.has(p.proxy)) firsts.set(p.proxy, p.at);
      const t0 = [...firsts.values()].sort((a, b) => a - b)[majority - 1] as number;
      const served = recorders.map((r) => r.changes.find((x) => x.at >= flip && x.level === level)?.at as number);
      const t1 = Math.max(...served);
      latency.push(t1 - t0 - (down ? 0 : RECOVERY_MS));
      spread.push(t1 - Math.min(...served));
      primary.probeLog = undefined;
      await new Promise((r) => setTimeout(r, 1200));
    }
    const fmt = (xs: number[]): string => `p50 ${pct(xs, 50)} ms, p99 ${pct(xs, 99)} ms, max ${Math.max(...xs)} ms`;
    process.stdout.write(`\nbench:consensus: ${N} proxies, ${CHANGES} changes (check interval ${INTERVAL}, recovery ${args.recovery})\n`);
    process.stdout.write(`  decision (verdict-changing probe -> last proxy serving it): ${fmt(latency)}\n`);
    process.stdout.write(`  spread (first -> last proxy serving the new level):          ${fmt(spread)}\n`);
    process.stdout.write(`  raw latency ms: ${latency.join(' ')}\n`);
  } finally {
    for (const fn of cleanups.reverse()) await Promise.resolve(fn()).catch(() => undefined);
  }
}

main().then(() => process.exit(0), (err: Error) => { process.stderr.write(`bench:consensus: ${err.stack ?? err.message}\n`); process.exit(1); });
