/**
 * Checkpoints a database's WAL from a connection of its own, in the background.
 *
 * Why: SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1,000 pages,
 * on the writer's connection — it copies the whole WAL into the database file and syncs it while
 * every other write waits. Under message load that was an 8 MiB copy every 3–5 s and a stall of
 * ~50–100 ms for every message in flight: the p99 of bench/messages (bench/README.md, eighth
 * session). A PASSIVE checkpoint from another connection copies what is committed while the
 * writer goes on appending, so the writer's own threshold is raised to a backstop
 * (`BACKSTOP_PAGES`) it only reaches if this falls behind.
 *
 * `wal_checkpoint(TRUNCATE)` (the end of every deletion, Db.checkpointTruncate) needs no other
 * checkpoint running: it {@link pause}s this one first.
 */
import sqlite3 from 'sqlite3';
import { mapSqliteError } from './sqlite-errors.js';

/** The writer's automatic-checkpoint threshold (pages) while a checkpointer runs. */
export const BACKSTOP_PAGES = 8192;

function exec(conn: sqlite3.Database, sql: string): Promise<void> {
  return new Promise((resolve, reject) => conn.exec(sql, (err) => (err ? reject(mapSqliteError(err, sql)) : resolve())));
}

export class WalCheckpointer {
  readonly #conn: sqlite3.Database;
  readonly #timer: NodeJS.Timeout;
  /** Something was written since the last checkpoint started. */
  #dirty = false;
  #running: Promise<void> | undefined;
  #paused = 0;
  #closed = false;
  /** Checkpoints run (tests). */
  runs = 0;

  private constructor(conn: sqlite3.Database, intervalMs: number) {
    this.#conn = conn;
    this.#timer = setInterval(() => this.#tick(), intervalMs);
    this.#timer.unref();
  }

  /** Opens a read-write connection to `path` (which must exist, in WAL mode) that checkpoints every `intervalMs` after a write. */
  static async open(path: string, intervalMs: number, busyTimeoutMs: number): Promise<WalCheckpointer> {
    const conn = await new Promise<sqlite3.Database>((resolve, reject) => {
      const c: sqlite3.Database = new sqlite3.Database(path, sqlite3.OPEN_READWRITE, (err) =>
        err ? reject(mapSqliteError(err, `open ${path} (checkpointer)`)) : resolve(c),
      );
    });
    try {
      conn.configure('busyTimeout', busyTimeoutMs);
      // A checkpoint syncs the database file before it lets the WAL be reused; FULL as everywhere.
      await exec(conn, 'PRAGMA synchronous = FULL');
    } catch (err) {
      await new Promise<void>((r) => conn.close(() => r()));
      throw err;
    }
    return new WalCheckpointer(conn, intervalMs);
  }

  /** The writer committed (or may have): the next tick checkpoints. */
  markDirty(): void {
    this.#dirty = true;
  }

  /** Runs `task` with no background checkpoint running or starting. */
  async pause<T>(task: () => Promise<T>): Promise<T> {
    this.#paused++;
    try {
      await this.#running;
      return await task();
    } finally {
      this.#paused--;
    }
  }

  /** Stops the timer, waits for a checkpoint in progress and closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
    await new Promise<void>((r) => this.#conn.close(() => r()));
  }

  #tick(): void {
    if (!this.#dirty || this.#running || this.#paused > 0 || this.#closed) return;
    this.#dirty = false;
    this.runs++;
    // PASSIVE never waits for a lock and never blocks the writer. A failure (a full disk, another
    // checkpoint) leaves the WAL for the next tick, or for the writer's backstop.
    this.#running = exec(this.#conn, 'PRAGMA wal_checkpoint(PASSIVE)')
      .catch(() => {
        this.#dirty = true;
      })
      .finally(() => {
        this.#running = undefined;
      });
  }
}
