// Preloaded into VeloFlux only during the bench's diagnostic pass (`node --import bench/lib/heapstats.ts …`): prints
// one `BENCH_HEAP {json}` line a second on stderr with RSS and V8's heap spaces (MiB), so an RSS miss comes with where
// the memory is. Not part of the proxy; never loaded in measured runs.
import v8 from 'node:v8';

const MB = 1024 * 1024;
setInterval(() => {
  const h = v8.getHeapStatistics();
  const spaces: Record<string, number> = {};
  for (const s of v8.getHeapSpaceStatistics()) {
    if (s.space_size > 0) spaces[s.space_name.replace(/_space$/, '')] = Math.round(s.space_size / MB);
  }
  const line = { pid: process.pid, rss: Math.round(process.memoryUsage.rss() / MB), heapTotal: Math.round(h.total_heap_size / MB),
    heapUsed: Math.round(h.used_heap_size / MB), external: Math.round(h.external_memory / MB), spaces };
  process.stderr.write(`BENCH_HEAP ${JSON.stringify(line)}\n`);
}, 1000).unref();
