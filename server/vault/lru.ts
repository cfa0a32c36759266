/**
 * A small least-recently-used map (Map keeps insertion order; a hit re-inserts at the end).
 * Holds unwrapped CryptoKeys so a hot conversation does not unwrap on every read.
 */
export class Lru<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();

  /** @param max - entries kept; the least recently used is evicted beyond it. */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`LRU size: expected a positive integer, got ${max}`);
    this.#max = max;
  }

  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  /** Deletes every entry whose value matches. */
  deleteWhere(pred: (value: V, key: K) => boolean): void {
    for (const [k, v] of this.#map) if (pred(v, k)) this.#map.delete(k);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  clear(): void {
    this.#map.clear();
  }

  get size(): number {
    return this.#map.size;
  }
}
