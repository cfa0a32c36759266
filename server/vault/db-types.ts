/**
 * The shapes of the SQLite wrapper (db.ts): its open options, statement parameters and results,
 * and `Queryable`, what both a `Db` and a transaction handle can do.
 */

/** Positional (`?`) or named (`$name`, `:name`, `@name`; the key includes the prefix) parameters. */
export type SqlParams = readonly unknown[] | Record<string, unknown>;

/** Options of {@link Db.open}. */
export interface DbOpenOptions {
  /** Open read-only (no journal-mode change, writes fail with `VAULT_READONLY`). Default false. */
  readonly?: boolean;
  /** How long to wait for another connection's lock before `VAULT_LOCKED`. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * Also open a read-only connection for SELECTs issued outside a transaction, so they do not
   * wait for write transactions. Default false.
   */
  reader?: boolean;
  /**
   * Page size for a file created by this open (a power of two, 512–65536). It cannot change once
   * the file has tables and is in WAL mode, so an existing file keeps its own. Default: SQLite's
   * (4096).
   */
  pageSize?: number;
  /**
   * The page cache of the (writing) connection, in KiB (`PRAGMA cache_size = -N`). Default: SQLite's
   * 2,000 KiB. Memory is taken only as pages are read.
   */
  cacheKiB?: number;
  /** WAL pages after which a commit checkpoints (`PRAGMA wal_autocheckpoint`). Default: SQLite's 1,000. */
  walAutocheckpointPages?: number;
}

/** Result of a write statement. */
export interface RunResult {
  changes: number;
  lastID: number;
}

/** A prepared statement; reuse it for batches and `finalize()` it when done. */
export interface Stmt {
  run(params?: SqlParams): Promise<RunResult>;
  get<T>(params?: SqlParams): Promise<T | undefined>;
  all<T>(params?: SqlParams): Promise<T[]>;
  finalize(): Promise<void>;
}

/** What both a `Db` and a transaction handle can do. */
export interface Queryable {
  run(sql: string, params?: SqlParams): Promise<RunResult>;
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined>;
  all<T>(sql: string, params?: SqlParams): Promise<T[]>;
  exec(sql: string): Promise<void>;
  prepare(sql: string): Promise<Stmt>;
  /**
   * Runs `fn` once the transaction this handle (or the current async context) is part of has
   * ended — committed or rolled back — or at once outside a transaction. For caches over tables
   * (row-cache.ts): what a read stored while a write was still uncommitted is dropped again.
   */
  whenSettled(fn: () => void): void;
}

/** The handle passed to a {@link Db.transaction} callback; invalid once the callback settles. */
export type DbTx = Queryable;
