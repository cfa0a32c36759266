/**
 * The read-only second connection of a `reader: true` Db (db.ts): opening it, which statements
 * may run on it, and the gate that counts its reads in flight so a checkpoint can pause it.
 */
import sqlite3 from 'sqlite3';
import { mapSqliteError } from './sqlite-errors.js';

/** Statements the reader may run: a SELECT (a WITH may end in a write, so it stays on the writer). */
export const SELECT = /^\s*SELECT\b/i;

/** The read-only second connection of a `reader: true` Db. */
export async function openReader(path: string, busyTimeoutMs: number): Promise<sqlite3.Database> {
  const conn = await new Promise<sqlite3.Database>((resolve, reject) => {
    const c: sqlite3.Database = new sqlite3.Database(path, sqlite3.OPEN_READONLY, (err) =>
      err ? reject(mapSqliteError(err, `open ${path} (reader)`)) : resolve(c),
    );
  });
  conn.configure('busyTimeout', busyTimeoutMs);
  // Temporary b-trees and sorts in memory, as on the writers: never a temp file holding sealed rows.
  await new Promise<void>((resolve, reject) =>
    conn.exec('PRAGMA query_only = ON; PRAGMA temp_store = MEMORY', (err) => (err ? reject(mapSqliteError(err, 'PRAGMA query_only, temp_store')) : resolve())),
  );
  return conn;
}

/**
 * The reads in flight on the reader connection and the pauses asked of it: a reader holding a
 * snapshot blocks a TRUNCATE checkpoint, so a checkpoint pauses new reads and waits for these.
 */
export class ReaderGate {
  #readsInFlight = 0;
  #readerPaused = 0;
  #readerIdle: (() => void)[] = [];

  /** True while a pause is asked for: reads then go to the writer. */
  get paused(): boolean {
    return this.#readerPaused > 0;
  }

  /** Runs `read` counted as in flight until it settles. */
  track<T>(read: () => Promise<T>): Promise<T> {
    this.#readsInFlight++;
    return read().finally(() => {
      if (--this.#readsInFlight === 0) for (const wake of this.#readerIdle.splice(0)) wake();
    });
  }

  /** Resolves once no read is in flight on the reader connection. */
  readsDone(): Promise<void> {
    return this.#readsInFlight === 0 ? Promise.resolve() : new Promise<void>((r) => this.#readerIdle.push(r));
  }

  /** Runs `task` with no read on the reader connection (a reader holding a snapshot blocks a TRUNCATE checkpoint). */
  async whilePaused<T>(task: () => Promise<T>): Promise<T> {
    this.#readerPaused++;
    try {
      await this.readsDone();
      return await task();
    } finally {
      this.#readerPaused--;
    }
  }
}
