// Small statistics for benchmark figures. Medians with min–max over rounds, percentiles over raw samples.

/** Percentile by nearest rank over an ascending-sorted array (p in 0..100); NaN when empty. */
export function percentileSorted(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface Spread { median: number; min: number; max: number; n: number }

/** Median (mean of the middle two for an even count), min and max; NaN values are ignored. */
export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const mid = v.length >> 1;
  const median = v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { median, min: v[0]!, max: v[v.length - 1]!, n: v.length };
}

export function fmtNum(x: number, digits = 0): string {
  if (Number.isNaN(x)) return '-';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** "12,345 (11,900–12,600)"; just the value when there was one round. */
export function fmtSpread(s: Spread, digits = 0): string {
  if (s.n <= 1) return fmtNum(s.median, digits);
  return `${fmtNum(s.median, digits)} (${fmtNum(s.min, digits)}–${fmtNum(s.max, digits)})`;
}

export interface MedianInterval { median: number; lo: number; hi: number; n: number; /** Probability the interval holds the true median. */ coverage: number }

/**
 * A distribution-free confidence interval for the median of `values` (independent rounds): the order statistics
 * x(k) .. x(n-k+1), with the largest k whose coverage 1 - 2 P(Binomial(n, 1/2) < k) is at least `minCoverage`.
 * With fewer than 5 values no interval reaches 90% (k = 1 gives 1 - 2^(1-n): 75% at 3, 87.5% at 4); then the
 * min–max is returned with the coverage it has.
 */
export function medianInterval(values: readonly number[], minCoverage = 0.9): MedianInterval {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  const n = v.length;
  const median = spread(v).median;
  if (n === 0) return { median, lo: Number.NaN, hi: Number.NaN, n, coverage: 0 };
  // P(Binomial(n, 1/2) < k), accumulated.
  const pmf = (i: number): number => { let c = 1; for (let j = 0; j < i; j++) c = (c * (n - j)) / (j + 1); return c / 2 ** n; };
  let k = 1;
  let below = pmf(0);
  let coverage = 1 - 2 * below;
  while (k + 1 <= Math.floor((n + 1) / 2)) {
    const next = 1 - 2 * (below + pmf(k));
    if (next < minCoverage) break;
    below += pmf(k);
    k++;
    coverage = next;
  }
  return { median, lo: v[k - 1]!, hi: v[n - k]!, n, coverage };
}

/** Half-width of the interval relative to the median, in percent. */
export function halfWidthPct(i: MedianInterval): number {
  return ((i.hi - i.lo) / 2 / i.median) * 100;
}

/** "0.93x [0.90–0.97] ±3.8% (94% CI, 6 rounds)". */
export function fmtInterval(i: MedianInterval): string {
  return `${i.median.toFixed(2)}x [${i.lo.toFixed(2)}–${i.hi.toFixed(2)}] ±${halfWidthPct(i).toFixed(1)}% (${(i.coverage * 100).toFixed(0)}% CI, ${i.n} rounds)`;
}
