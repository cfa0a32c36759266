/**
 * A read-through cache of rows of one table, for the reads of every request (its session, its
 * account): with it, an authenticated request costs no SQLite round trip — two fewer thread-pool
 * hops per request, ~12 % more single-message throughput (bench/README.md, eighth session).
 *
 * Correct only because this process is the one writer of the vault while it runs (the ops
 * commands that write refuse a running server) and every write to the table goes through
 * {@link RowCache.write}. The rules that keep a cached row never staler than a fresh read:
 * - a write drops the entry before it starts, and again once its transaction has ended
 *   (`whenSettled`: committed or rolled back), so a row read meanwhile — old, or uncommitted on
 *   the writer's connection — does not outlive the transaction;
 * - while any write is unsettled nothing is stored, and a read stores its row only if no write
 *   started or settled while it ran (a generation count).
 */
import type { Queryable } from './db.js';
import { Lru } from './lru.js';

export class RowCache<K, V> {
  readonly #rows: Lru<K, V>;
  /** Bumped by every write, when it starts and when it settles. */
  #generation = 0;
  /** Writes started and not yet settled. */
  #unsettled = 0;

  /** @param max - rows kept, least recently used out. */
  constructor(max: number) {
    this.#rows = new Lru(max);
  }

  /**
   * The row of `key`: cached, or from `load`. `undefined` (no such row) is not cached, so a row
   * created later is found. A cached row is frozen: every request shares it.
   */
  async read(key: K, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const hit = this.#rows.get(key);
    if (hit !== undefined) return hit;
    const generation = this.#generation;
    const row = await load();
    if (row !== undefined && this.#unsettled === 0 && generation === this.#generation) this.#rows.set(key, Object.freeze(row));
    return row;
  }

  /**
   * Runs a write of the row of `key` (every row: `undefined`) through `db` — the handle or Db
   * the write uses, whose transaction decides when it has settled.
   */
  async write<T>(db: Queryable, key: K | undefined, run: () => Promise<T>): Promise<T> {
    this.#drop(key);
    this.#unsettled++;
    try {
      return await run();
    } finally {
      // Outside a transaction at once; inside one, when it has committed or rolled back.
      db.whenSettled(() => {
        this.#unsettled--;
        this.#drop(key);
      });
    }
  }

  /** Rows held now (tests). */
  get size(): number {
    return this.#rows.size;
  }

  #drop(key: K | undefined): void {
    this.#generation++;
    if (key === undefined) this.#rows.clear();
    else this.#rows.delete(key);
  }
}
