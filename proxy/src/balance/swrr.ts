// Smooth weighted round-robin (the nginx algorithm): each pick adds every item's weight to its current
// score, takes the highest, and subtracts the total from the winner. Weights 5,1,1 give a a b a c a a:
// spread out, never bursts. Pure and allocation-free per pick; the picker owns its mutable scores.

export interface Weighted {
  readonly weight: number;
}

export class SmoothPicker<T extends Weighted> {
  readonly items: readonly T[];
  readonly #current: Float64Array;
  readonly #total: number;

  constructor(items: readonly T[]) {
    this.items = items.filter((i) => i.weight > 0);
    this.#current = new Float64Array(this.items.length);
    this.#total = this.items.reduce((sum, i) => sum + i.weight, 0);
  }

  get size(): number {
    return this.items.length;
  }

  /** The next item, or undefined when there is none; `skip` excludes items (already tried). */
  pick(skip?: ReadonlySet<T>): T | undefined {
    const items = this.items;
    const current = this.#current;
    let best = -1;
    let total = 0;
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as T;
      if (skip !== undefined && skip.has(item)) continue;
      current[i] = (current[i] as number) + item.weight;
      total += item.weight;
      if (best < 0 || (current[i] as number) > (current[best] as number)) best = i;
    }
    if (best < 0) return undefined;
    current[best] = (current[best] as number) - (skip === undefined ? this.#total : total);
    return items[best];
  }
}
