/**
 * A promise wrapper over one `sqlite3` connection with Sigil's security pragmas, typed errors,
 * a transaction mutex, prepared statements, WAL truncation and online backup.
 *
 * Why a mutex: a sqlite3 connection has one transaction state. If request A opens
 * `BEGIN IMMEDIATE` and request B's unrelated `INSERT` is issued on the same connection while A
 * awaits, B silently joins A's transaction (and is rolled back with it). So every statement
 * issued outside a transaction waits while one is open. Statements issued *inside* the
 * transaction's async context (found with AsyncLocalStorage) go straight through, whether they
 * use the `tx` handle or the `Db` itself, so code shared between both paths cannot deadlock.
 *
 * Why a second, read-only connection (`reader: true`): with one connection, every lookup of a
 * request (its session, its account) queued behind whole write transactions — under message load
 * the vault connection was the server's serial bottleneck (bench/README.md). In WAL mode a reader
 * sees every committed transaction and never waits for the writer, so plain SELECTs issued outside
 * a transaction go to it. Reads inside a transaction stay on the writer (they must see its writes).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import sqlite3 from 'sqlite3';
import { VaultClosedError, type VaultError } from './errors.js';
import { mapSqliteError } from './sqlite-errors.js';
import { ensurePrivateFile, onlineBackup, truncateWal } from './db-files.js';
import type { DbOpenOptions, DbTx, Queryable, RunResult, SqlParams, Stmt } from './db-types.js';
import { applyPragmas } from './db-pragmas.js';
import { openReader, ReaderGate, SELECT } from './db-reader.js';
import { compileStatement, StatementCache, stmtHandle } from './db-statements.js';
import { runSettled, whenSettled, type TxState } from './db-tx-state.js';
import { applyMigrations, type MigrationHook } from './db-migrations.js';

export type { DbOpenOptions, DbTx, Queryable, RunResult, SqlParams, Stmt } from './db-types.js';
export type { MigrationHook } from './db-migrations.js';

/** Default busy timeout: long enough for a checkpoint of another process, short enough to surface. */
const DEFAULT_BUSY_TIMEOUT_MS = 5000;

type Task<T> = () => Promise<T>;

/**
 * One connection to one SQLite file. Create with {@link Db.open}.
 *
 * @example
 * const db = await Db.open('/var/lib/sigil/vault.db');
 * await db.transaction(async (tx) => {
 *   const ins = await tx.prepare('INSERT INTO t(a) VALUES (?)');
 *   for (const a of rows) await ins.run([a]);
 *   await ins.finalize();
 * });
 */
export class Db implements Queryable {
  readonly path: string;
  readonly readonly: boolean;
  readonly #conn: sqlite3.Database;
  /** Tail of the FIFO of exclusive sections (transactions, checkpoint, backup, close). */
  #tail: Promise<void> = Promise.resolve();
  #closed = false;
  /** Which transaction (if any) the current async context runs inside. */
  readonly #ctx = new AsyncLocalStorage<TxState>();
  readonly #stmts = new Set<sqlite3.Statement>();
  #savepoints = 0;
  /** The read-only connection (`reader: true`), and its reads in flight and pauses (checkpoint). */
  #reader: sqlite3.Database | undefined;
  readonly #readerGate = new ReaderGate();
  /** Prepared statements by connection and SQL text (see StatementCache.call). */
  readonly #cache = new StatementCache();

  private constructor(path: string, conn: sqlite3.Database, readonly: boolean) {
    this.path = path;
    this.#conn = conn;
    this.readonly = readonly;
  }

  /**
   * Opens (creating if missing, mode 0600) the database at `path` and applies the pragmas
   * `journal_mode=WAL`, `secure_delete=ON`, `temp_store=MEMORY`, `foreign_keys=ON`,
   * `synchronous=FULL` and `busy_timeout`, then reads back the security-relevant ones.
   *
   * @throws VaultOpenError if the file cannot be opened; VaultCorruptError if it is not a database;
   *   VaultPragmaError if secure_delete / WAL / foreign keys do not read back as set.
   */
  static async open(path: string, opts: DbOpenOptions = {}): Promise<Db> {
    const ro = opts.readonly ?? false;
    if (!ro) ensurePrivateFile(path);
    const mode = ro ? sqlite3.OPEN_READONLY : sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE;
    const conn = await new Promise<sqlite3.Database>((resolve, reject) => {
      const c: sqlite3.Database = new sqlite3.Database(path, mode, (err) =>
        err ? reject(mapSqliteError(err, `open ${path}`)) : resolve(c),
      );
    });
    const db = new Db(path, conn, ro);
    try {
      conn.configure('busyTimeout', opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
      await applyPragmas((method, sql) => db.#raw(method, sql), ro, opts);
      if (opts.reader && !ro && path !== ':memory:') db.#reader = await openReader(path, opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
    } catch (err) {
      await new Promise<void>((r) => conn.close(() => r()));
      throw err;
    }
    return db;
  }

  /** Runs a write statement. @throws VaultError subclasses (see `errors.ts`). */
  run(sql: string, params?: SqlParams): Promise<RunResult> {
    return this.#schedule(() => this.#raw<RunResult>('run', sql, params));
  }

  /** First row of a query, or undefined. */
  get<T>(sql: string, params?: SqlParams): Promise<T | undefined> {
    return this.#read('get', sql, params) ?? this.#schedule(() => this.#raw<T | undefined>('get', sql, params));
  }

  /** All rows of a query. */
  all<T>(sql: string, params?: SqlParams): Promise<T[]> {
    return this.#read('all', sql, params) ?? this.#schedule(() => this.#raw<T[]>('all', sql, params));
  }

  /**
   * A plain SELECT outside a transaction, on the reader connection; undefined when it must run on
   * the writer (no reader, inside a transaction, not a SELECT — e.g. `INSERT … RETURNING` — or
   * the reader paused for a checkpoint).
   */
  #read<T>(method: 'get' | 'all', sql: string, params?: SqlParams): Promise<T> | undefined {
    const reader = this.#reader;
    if (!reader || this.#readerGate.paused || !SELECT.test(sql)) return undefined;
    const s = this.#ctx.getStore();
    if (s && !s.done) return undefined;
    if (this.#closed) return Promise.reject(new VaultClosedError(`database ${this.path} is closed`));
    return this.#readerGate.track(() => this.#cache.call<T>(reader, method, sql, params));
  }

  /** Runs one or more statements without parameters (schema scripts). */
  exec(sql: string): Promise<void> {
    return this.#schedule(() => this.#raw<void>('exec', sql));
  }

  /**
   * Prepares a statement for repeated use (batched inserts: a 1,000-row batch in one transaction
   * compiles the SQL once). Uses of the statement obey the same transaction mutex as `run`.
   */
  async prepare(sql: string): Promise<Stmt> {
    this.#assertOpen();
    const st = await compileStatement(this.#conn, sql);
    this.#stmts.add(st);
    return stmtHandle(st, sql, (task) => this.#schedule(task), () => this.#stmts.delete(st));
  }

  /**
   * Runs `fn` inside `BEGIN IMMEDIATE … COMMIT`, rolling back if it throws. Only one
   * transaction runs at a time per Db; other statements wait. A nested call (from inside `fn`)
   * becomes a SAVEPOINT, rolled back on its own if its callback throws.
   */
  async transaction<T>(fn: (tx: DbTx) => Promise<T>): Promise<T> {
    const outer = this.#ctx.getStore();
    if (outer && !outer.done) return this.#savepoint(outer, fn);
    return this.#exclusive(async () => {
      const root = { done: false, settled: [] as (() => void)[] };
      const state: TxState = { done: false, root };
      return this.#ctx.run(state, async () => {
        await this.#raw('exec', 'BEGIN IMMEDIATE');
        const tx = this.#txHandle(state);
        try {
          const out = await fn(tx);
          await this.#raw('exec', 'COMMIT');
          return out;
        } catch (err) {
          // ROLLBACK can itself fail if SQLite already rolled back (e.g. SQLITE_FULL); the
          // original error is the one the caller needs.
          await this.#raw('exec', 'ROLLBACK').catch(() => undefined);
          throw err;
        } finally {
          state.done = true;
          root.done = true;
          runSettled(root.settled);
        }
      });
    });
  }

  /** See {@link Queryable.whenSettled}. */
  whenSettled(fn: () => void): void {
    whenSettled(this.#ctx.getStore(), fn);
  }

  /**
   * Runs `fn` as part of the transaction in progress, without a savepoint of its own — two
   * round trips fewer than a nested {@link transaction}. Only for callers whose failure fails the
   * whole enclosing transaction (they let the error through), since a half-done `fn` is not
   * rolled back on its own. Outside a transaction it is {@link transaction}.
   */
  within<T>(fn: (tx: DbTx) => Promise<T>): Promise<T> {
    const outer = this.#ctx.getStore();
    return outer && !outer.done ? fn(this.#txHandle(outer)) : this.transaction(fn);
  }

  async #savepoint<T>(outer: TxState, fn: (tx: DbTx) => Promise<T>): Promise<T> {
    const name = `sp${++this.#savepoints}`;
    const state: TxState = { done: false, root: outer.root };
    await this.#raw('exec', `SAVEPOINT ${name}`);
    try {
      const out = await this.#ctx.run(state, () => fn(this.#txHandle(state)));
      await this.#raw('exec', `RELEASE ${name}`);
      return out;
    } catch (err) {
      await this.#raw('exec', `ROLLBACK TO ${name}; RELEASE ${name}`).catch(() => undefined);
      throw err;
    } finally {
      state.done = true;
    }
  }

  #txHandle(state: TxState): DbTx {
    const guard = <T>(f: () => Promise<T>): Promise<T> =>
      state.done ? Promise.reject(new VaultClosedError('transaction handle used after the transaction ended')) : f();
    return {
      run: (sql, p) => guard(() => this.#raw<RunResult>('run', sql, p)),
      get: <T>(sql: string, p?: SqlParams) => guard(() => this.#raw<T | undefined>('get', sql, p)),
      all: <T>(sql: string, p?: SqlParams) => guard(() => this.#raw<T[]>('all', sql, p)),
      exec: (sql) => guard(() => this.#raw<void>('exec', sql)),
      prepare: (sql) => guard(() => this.prepare(sql)),
      // A savepoint's writes are settled when its outermost transaction is, not when it is released.
      whenSettled: (fn) => whenSettled(state, fn),
    };
  }

  /** The file's page size in bytes (`PRAGMA page_size`; see {@link DbOpenOptions.pageSize}). */
  async pageSize(): Promise<number> {
    return (await this.get<{ page_size: number }>('PRAGMA page_size'))?.page_size ?? 0;
  }

  /** The page size, the pages of the file and how many of them are free (zeroed, on the freelist). */
  async pageCounts(): Promise<{ pageSize: number; pages: number; freePages: number }> {
    const r = await this.get<{ s: number; n: number; f: number }>(
      'SELECT (SELECT page_size FROM pragma_page_size) AS s, (SELECT page_count FROM pragma_page_count) AS n, (SELECT freelist_count FROM pragma_freelist_count) AS f',
    );
    return { pageSize: r?.s ?? 0, pages: r?.n ?? 0, freePages: r?.f ?? 0 };
  }

  /**
   * `PRAGMA wal_checkpoint(TRUNCATE)`: copies the WAL into the database and truncates the WAL
   * file to zero bytes, so old page images (holding deleted rows) no longer exist in it.
   *
   * @throws VaultCheckpointError if a reader kept the checkpoint from completing (busy=1) or the
   *   WAL file is not empty afterwards.
   */
  async checkpointTruncate(): Promise<void> {
    await this.#readerGate.whilePaused(() => this.#checkpointTruncate());
  }

  async #checkpointTruncate(): Promise<void> {
    await this.#schedule(() => truncateWal((sql) => this.#raw('get', sql), this.path));
  }

  /**
   * Copies the database to `destPath` with SQLite's online backup API: a consistent snapshot
   * even while writers are active. The destination is created with mode 0600.
   *
   * @throws VaultBackupError if the backup did not complete.
   */
  async backupTo(destPath: string): Promise<void> {
    ensurePrivateFile(destPath);
    await this.#schedule(() => onlineBackup(this.#conn, destPath));
  }

  /**
   * Applies, in order, each migration whose `id` is not yet in table `migrations`, each in its
   * own transaction together with its bookkeeping row. Running it twice is a no-op.
   * `onApply` hears of each migration that runs, before (so a long rebuild at an upgraded
   * appliance's first start is announced, not silent) and after, with its duration.
   */
  migrate(migrations: readonly { id: string; sql: string }[], opts: { onApply?: MigrationHook } = {}): Promise<void> {
    return applyMigrations(this, migrations, opts);
  }

  /** Waits for running work, finalizes open statements and closes. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#exclusive(async () => {
      this.#closed = true;
      for (const st of this.#stmts) await new Promise<void>((r) => st.finalize(() => r()));
      this.#stmts.clear();
      const reader = this.#reader;
      this.#reader = undefined;
      if (reader) {
        await this.#readerGate.readsDone();
        await this.#cache.drop(reader);
        await new Promise<void>((r) => reader.close(() => r()));
      }
      await this.#cache.drop(this.#conn);
      await new Promise<void>((resolve, reject) =>
        this.#conn.close((err) => (err ? reject(mapSqliteError(err, 'close')) : resolve())),
      );
    });
  }

  /** True once {@link close} has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  #assertOpen(): void {
    if (this.#closed) throw new VaultClosedError(`database ${this.path} is closed`);
  }

  /** Runs inside the current transaction if we are in one, else waits for the mutex. */
  #schedule<T>(task: Task<T>): Promise<T> {
    const s = this.#ctx.getStore();
    if (s && !s.done) return task();
    return this.#exclusive(task);
  }

  /** FIFO mutex: `task` starts once everything queued before it has settled. */
  #exclusive<T>(task: Task<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new VaultClosedError(`database ${this.path} is closed`));
    const run = this.#tail.then(() => {
      if (this.#closed) throw new VaultClosedError(`database ${this.path} is closed`);
      return task();
    });
    this.#tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  #raw<T>(method: 'run' | 'get' | 'all' | 'exec', sql: string, params?: SqlParams): Promise<T> {
    if (method === 'exec') {
      return new Promise<T>((resolve, reject) =>
        this.#conn.exec(sql, (err) => (err ? reject(mapSqliteError(err, sql) satisfies VaultError) : resolve(undefined as T))),
      );
    }
    return this.#cache.call<T>(this.#conn, method, sql, params);
  }
}
