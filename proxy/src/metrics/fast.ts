// Counters and histograms for the request path. prom-client hashes label objects on every inc/observe, which
// costs more than forwarding a small request; these keep one mutable cell per label set, created once (so label
// sets exist from the start, at zero) and incremented as plain numbers. prom-client reads them at scrape time
// through the same interface its own metrics have (name, help, type, aggregator, get), so the registry and the
// cluster aggregator treat them like any other metric.
import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';

type Labels = Record<string, string>;

export interface CounterCell {
  value: number;
}

export interface HistogramCell {
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

function key(labels: Labels): string {
  return Object.values(labels).join('\u0000');
}

export class CounterFamily {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #series = new Map<string, { labels: Labels; cell: CounterCell }>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  cell(labels: Labels): CounterCell {
    const k = key(labels);
    let s = this.#series.get(k);
    if (!s) { s = { labels, cell: { value: 0 } }; this.#series.set(k, s); }
    return s.cell;
  }

  /** Forgets label sets (pools or backends that left the config). */
  drop(keep: (labels: Labels) => boolean): void {
    for (const [k, s] of this.#series) if (!keep(s.labels)) this.#series.delete(k);
  }

  async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    return { name: this.name, help: this.help, type: this.type as never, aggregator: this.aggregator, collect: () => {}, values: [...this.#series.values()].map((s) => ({ labels: s.labels, value: s.cell.value })) };
  }

  reset(): void {
    for (const s of this.#series.values()) s.cell.value = 0;
  }
}

export class HistogramFamily {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly buckets: readonly number[];
  readonly #series = new Map<string, { labels: Labels; cell: HistogramCell }>();

  constructor(name: string, help: string, buckets: readonly number[]) {
    this.name = name;
    this.help = help;
    this.buckets = buckets;
  }

  cell(labels: Labels): HistogramCell {
    const k = key(labels);
    let s = this.#series.get(k);
    if (!s) { s = { labels, cell: { counts: new Float64Array(this.buckets.length), sum: 0, count: 0 } }; this.#series.set(k, s); }
    return s.cell;
  }

  observe(cell: HistogramCell, value: number): void {
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) {
      if (value <= (b[i] as number)) { cell.counts[i] = (cell.counts[i] as number) + 1; break; }
    }
    cell.sum += value;
    cell.count++;
  }

  drop(keep: (labels: Labels) => boolean): void {
    for (const [k, s] of this.#series) if (!keep(s.labels)) this.#series.delete(k);
  }

  async get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values: MetricValueWithName<string>[] = [];
    for (const { labels, cell } of this.#series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += cell.counts[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: String(le) }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cell.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: cell.count });
    }
    return { name: this.name, help: this.help, type: this.type as never, aggregator: this.aggregator, collect: () => {}, values };
  }

  reset(): void {
    for (const s of this.#series.values()) { s.cell.counts.fill(0); s.cell.sum = 0; s.cell.count = 0; }
  }
}
