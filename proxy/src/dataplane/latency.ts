// pools[].retry.per_try_timeout "auto" (SPEC 10): each backend's time to response head as this data-plane process
// observes it, kept as a small decaying histogram, and the per-try timeout it gives: the p99, at least
// DEFAULTS.retry.autoMinMs, at most header_timeout; header_timeout until autoMinSamples answers were seen.
// One observe is an integer increment and a short scan over 16 bounds; the p99 is recomputed every RECOMPUTE
// samples (not per request), and the counts are halved every DECAY samples so the estimate follows the backend.
import { DEFAULTS } from '@veloflux/config/defaults';

/** Upper bounds in ms; a time above the last one counts in the last bucket. */
const BOUNDS = [1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 200, 300, 500, 1000, 2000, 5000, 10_000, 30_000];
const RECOMPUTE = 64;
const DECAY = 4096;

export class LatencyCell {
  readonly #counts = new Float64Array(BOUNDS.length + 1);
  readonly #headerTimeoutMs: number;
  #samples = 0;
  #total = 0;
  #timeoutMs: number;

  constructor(headerTimeoutMs: number) {
    this.#headerTimeoutMs = headerTimeoutMs;
    this.#timeoutMs = headerTimeoutMs;
  }

  /** The per-try timeout "auto" gives for this backend now. */
  get timeoutMs(): number {
    return this.#timeoutMs;
  }

  observe(ms: number): void {
    let i = 0;
    while (i < BOUNDS.length && ms > (BOUNDS[i] as number)) i++;
    this.#counts[i] = (this.#counts[i] as number) + 1;
    this.#total++;
    if (++this.#samples % RECOMPUTE === 0 || this.#samples === DEFAULTS.retry.autoMinSamples) this.#recompute();
    if (this.#samples % DECAY === 0) {
      for (let j = 0; j < this.#counts.length; j++) this.#counts[j] = (this.#counts[j] as number) / 2;
      this.#total /= 2;
    }
  }

  #recompute(): void {
    if (this.#samples < DEFAULTS.retry.autoMinSamples) return;
    const want = this.#total * 0.99;
    let seen = 0;
    let p99 = this.#headerTimeoutMs;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i] as number;
      if (seen >= want) { p99 = i < BOUNDS.length ? (BOUNDS[i] as number) : this.#headerTimeoutMs; break; }
    }
    this.#timeoutMs = Math.min(this.#headerTimeoutMs, Math.max(DEFAULTS.retry.autoMinMs, p99));
  }
}

/** The cells of one process, by backend id, kept across routing snapshots. */
export class Latencies {
  readonly #cells = new Map<string, LatencyCell>();
  #headerTimeoutMs: number;

  constructor(headerTimeoutMs: number) {
    this.#headerTimeoutMs = headerTimeoutMs;
  }

  cell(backendId: string, wanted: boolean): LatencyCell | undefined {
    if (!wanted) { this.#cells.delete(backendId); return undefined; }
    let c = this.#cells.get(backendId);
    if (c === undefined) { c = new LatencyCell(this.#headerTimeoutMs); this.#cells.set(backendId, c); }
    return c;
  }

  /** Forgets backends no longer in the config; a new header_timeout starts every estimate afresh. */
  retain(ids: ReadonlySet<string>, headerTimeoutMs: number): void {
    if (headerTimeoutMs !== this.#headerTimeoutMs) { this.#cells.clear(); this.#headerTimeoutMs = headerTimeoutMs; }
    for (const id of this.#cells.keys()) if (!ids.has(id)) this.#cells.delete(id);
  }
}
