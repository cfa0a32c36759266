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
import {
  VaultCheckpointError,
  VaultClosedError,
  VaultPragmaError,
  VaultSqlError,
  type VaultError,
} from './errors.js';
import { mapSqliteError } from './sqlite-errors.js';
import { ensurePrivateFile, fileSize, onlineBackup } from './db-files.js';

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

/** Default busy timeout: long enough for a checkpoint of another process, short enough to surface. */
const DEFAULT_BUSY_TIMEOUT_MS = 5000;

type Task<T> = () => Promise<T>;

/**
 * A transaction or savepoint in progress. `root` is the outermost transaction (itself for one):
 * what {@link Queryable.whenSettled} asks for waits in its `settled` list until it has ended.
 */
interface TxState {
  done: boolean;
  root: { done: boolean; settled: (() => void)[] };
}

/** See {@link Queryable.whenSettled}. */
function whenSettled(state: TxState | undefined, fn: () => void): void {
  if (state && !state.root.done) state.root.settled.push(fn);
  else fn();
}

/** Runs the callbacks of an ended transaction; one that throws does not stop the others. */
function runSettled(list: (() => void)[]): void {
  for (const fn of list.splice(0)) {
    try {
      fn();
    } catch {
      // A cache callback has nothing to report; the transaction's outcome is what matters.
    }
  }
}

/** Hears of a migration that {@link Db.migrate} applies: before it runs, and after with its duration. */
export type MigrationHook = (id: string, phase: 'start' | 'done', ms?: number) => void;

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
  /** The read-only connection (`reader: true`), its statements in flight, and pauses (checkpoint). */
  #reader: sqlite3.Database | undefined;
  #readsInFlight = 0;
  #readerPaused = 0;
  #readerIdle: (() => void)[] = [];
  /** Prepared statements by connection and SQL text (see #cachedCall). */
  readonly #cache = new Map<sqlite3.Database, Map<string, sqlite3.Statement[]>>();

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
      await db.#applyPragmas(opts);
      if (opts.reader && !ro && path !== ':memory:') db.#reader = await openReader(path, opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
    } catch (err) {
      await new Promise<void>((r) => conn.close(() => r()));
      throw err;
    }
    return db;
  }

  async #applyPragmas(opts: DbOpenOptions): Promise<void> {
    const positive = (n: number | undefined, what: string): number | undefined => {
      if (n === undefined) return undefined;
      if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`Db.open: ${what} must be a positive integer, got ${n}`);
      return n;
    };
    const pageSize = positive(opts.pageSize, 'pageSize');
    const cacheKiB = positive(opts.cacheKiB, 'cacheKiB');
    const checkpointPages = positive(opts.walAutocheckpointPages, 'walAutocheckpointPages');
    // Only takes effect on a new, still empty file, before it switches to WAL.
    if (pageSize !== undefined && !this.readonly) await this.#raw('exec', `PRAGMA page_size = ${pageSize}`);
    if (cacheKiB !== undefined) await this.#raw('exec', `PRAGMA cache_size = -${cacheKiB}`);
    if (checkpointPages !== undefined && !this.readonly) await this.#raw('exec', `PRAGMA wal_autocheckpoint = ${checkpointPages}`);
    // secure_delete zeroes freed cells and pages, so a deleted row's bytes do not survive in the
    // file; it is per connection, hence set (and checked) on every open.
    await this.#raw('exec', 'PRAGMA secure_delete = ON');
    await this.#raw('exec', 'PRAGMA temp_store = MEMORY');
    await this.#raw('exec', 'PRAGMA foreign_keys = ON');
    await this.#raw('exec', 'PRAGMA synchronous = FULL');
    if (!this.readonly) await this.#raw('get', 'PRAGMA journal_mode = WAL');
    const sd = await this.#raw<{ secure_delete: number }>('get', 'PRAGMA secure_delete');
    if (sd?.secure_delete !== 1) {
      throw new VaultPragmaError(`secure_delete: expected 1, read ${String(sd?.secure_delete)}`);
    }
    const fk = await this.#raw<{ foreign_keys: number }>('get', 'PRAGMA foreign_keys');
    if (fk?.foreign_keys !== 1) {
      throw new VaultPragmaError(`foreign_keys: expected 1, read ${String(fk?.foreign_keys)}`);
    }
    const jm = await this.#raw<{ journal_mode: string }>('get', 'PRAGMA journal_mode');
    if (!this.readonly && jm?.journal_mode !== 'wal') {
      throw new VaultPragmaError(`journal_mode: expected wal, read ${String(jm?.journal_mode)}`);
    }
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
    if (!reader || this.#readerPaused > 0 || !SELECT.test(sql)) return undefined;
    const s = this.#ctx.getStore();
    if (s && !s.done) return undefined;
    if (this.#closed) return Promise.reject(new VaultClosedError(`database ${this.path} is closed`));
    this.#readsInFlight++;
    return this.#cachedCall<T>(reader, method, sql, params).finally(() => {
      if (--this.#readsInFlight === 0) for (const wake of this.#readerIdle.splice(0)) wake();
    });
  }

  /** Resolves once no read is in flight on the reader connection. */
  #readsDone(): Promise<void> {
    return this.#readsInFlight === 0 ? Promise.resolve() : new Promise<void>((r) => this.#readerIdle.push(r));
  }

  /** Runs `task` with no read on the reader connection (a reader holding a snapshot blocks a TRUNCATE checkpoint). */
  async #withReaderPaused<T>(task: Task<T>): Promise<T> {
    this.#readerPaused++;
    try {
      await this.#readsDone();
      return await task();
    } finally {
      this.#readerPaused--;
    }
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
    const st = await new Promise<sqlite3.Statement>((resolve, reject) => {
      const s: sqlite3.Statement = this.#conn.prepare(sql, (err: Error | null) =>
        err ? reject(mapSqliteError(err, sql)) : resolve(s),
      );
    });
    this.#stmts.add(st);
    let finalized = false;
    const use = <T>(method: 'run' | 'get' | 'all', params?: SqlParams): Promise<T> => {
      if (finalized) return Promise.reject(new VaultClosedError('prepared statement already finalized'));
      return this.#schedule(
        () =>
          new Promise<T>((resolve, reject) => {
            st[method](toBind(params), function (this: sqlite3.RunResult, err: Error | null, row?: unknown) {
              if (err) reject(mapSqliteError(err, sql));
              else if (method === 'run') resolve({ changes: this.changes, lastID: this.lastID } as T);
              else resolve(row as T);
            });
          }),
      );
    };
    return {
      run: (p) => use<RunResult>('run', p),
      get: <T>(p?: SqlParams) => use<T | undefined>('get', p),
      all: <T>(p?: SqlParams) => use<T[]>('all', p),
      finalize: async () => {
        if (finalized) return;
        finalized = true;
        this.#stmts.delete(st);
        await new Promise<void>((r) => st.finalize(() => r()));
      },
    };
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
    await this.#withReaderPaused(() => this.#checkpointTruncate());
  }

  async #checkpointTruncate(): Promise<void> {
    await this.#schedule(async () => {
      const r = await this.#raw<{ busy: number; log: number; checkpointed: number }>(
        'get',
        'PRAGMA wal_checkpoint(TRUNCATE)',
      );
      if (!r || r.busy !== 0) {
        throw new VaultCheckpointError(
          `wal_checkpoint(TRUNCATE) on ${this.path}: expected busy=0, got busy=${String(r?.busy)} ` +
            `(log=${String(r?.log)}, checkpointed=${String(r?.checkpointed)}); a reader holds the WAL`,
        );
      }
      const size = fileSize(`${this.path}-wal`);
      if (size > 0) {
        throw new VaultCheckpointError(`wal_checkpoint(TRUNCATE) on ${this.path}: WAL still ${size} bytes`);
      }
    });
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
  async migrate(migrations: readonly { id: string; sql: string }[], opts: { onApply?: MigrationHook } = {}): Promise<void> {
    await this.exec(
      'CREATE TABLE IF NOT EXISTS migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL) STRICT',
    );
    for (const m of migrations) {
      await this.transaction(async (tx) => {
        const done = await tx.get('SELECT 1 FROM migrations WHERE id = ?', [m.id]);
        if (done) return;
        const t0 = performance.now();
        opts.onApply?.(m.id, 'start');
        await tx.exec(m.sql);
        await tx.run('INSERT INTO migrations (id, applied_at) VALUES (?, ?)', [m.id, new Date().toISOString()]);
        opts.onApply?.(m.id, 'done', Math.round(performance.now() - t0));
      });
    }
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
        await this.#readsDone();
        await this.#dropCache(reader);
        await new Promise<void>((r) => reader.close(() => r()));
      }
      await this.#dropCache(this.#conn);
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
    return this.#cachedCall<T>(this.#conn, method, sql, params);
  }

  /**
   * Runs `sql` through a cached prepared statement of `conn`. Why: `Database#get(sql)` prepares,
   * steps and finalizes — three thread-pool round trips per query — where a cached statement
   * needs one. `get` runs as `all` and keeps the first row: a statement stepped once stays active
   * until reset, and an active statement holds its connection's read snapshot. Every other read
   * on that connection shares the snapshot, so a row committed meanwhile was invisible to them
   * (a read after its own write missed it), and it blocks TRUNCATE checkpoints. A statement serves one
   * caller at a time: concurrent callers of the same SQL each take their own instance, or the
   * statement's queue would serialize every request's session lookup behind the others.
   */
  async #cachedCall<T>(conn: sqlite3.Database, method: 'run' | 'get' | 'all', sql: string, params?: SqlParams): Promise<T> {
    const bind = toBind(params);
    const st = await this.#acquire(conn, sql);
    return new Promise<T>((resolve, reject) => {
      const finish = (reset: boolean, settle: () => void): void => {
        if (!reset) {
          this.#release(conn, sql, st);
          settle();
          return;
        }
        st.reset(() => {
          this.#release(conn, sql, st);
          settle();
        });
      };
      const done = function (this: sqlite3.RunResult, err: Error | null, rows?: unknown): void {
        if (err) finish(true, () => reject(mapSqliteError(err, sql) satisfies VaultError));
        else if (method === 'run') {
          const r = { changes: this.changes, lastID: this.lastID } as T;
          // A write with RETURNING is stepped once: reset completes and releases it.
          finish(RETURNING.test(sql), () => resolve(r));
        } else finish(false, () => resolve((method === 'get' ? (rows as unknown[])[0] : rows) as T));
      };
      st[method === 'get' ? 'all' : method](bind, done);
    });
  }

  /** An idle prepared statement for `sql` on `conn`, prepared now if none is idle. */
  async #acquire(conn: sqlite3.Database, sql: string): Promise<sqlite3.Statement> {
    let cache = this.#cache.get(conn);
    if (!cache) this.#cache.set(conn, (cache = new Map()));
    const idle = cache.get(sql);
    if (idle) {
      cache.delete(sql); // re-insert: Map order is the LRU order
      cache.set(sql, idle);
      const st = idle.pop();
      if (st) return st;
    }
    return new Promise<sqlite3.Statement>((resolve, reject) => {
      const st: sqlite3.Statement = conn.prepare(sql, (err: Error | null) => {
        // A statement that does not compile is not cached: it might after a migration.
        if (err) reject(mapSqliteError(err, sql) satisfies VaultError);
        else resolve(st);
      });
    });
  }

  /** Returns `st` to the idle list of its SQL (bounded per SQL and in SQL texts), else finalizes it. */
  #release(conn: sqlite3.Database, sql: string, st: sqlite3.Statement): void {
    const cache = this.#cache.get(conn);
    if (!cache) {
      st.finalize(); // the connection is closing
      return;
    }
    let idle = cache.get(sql);
    if (!idle) {
      cache.set(sql, (idle = []));
      if (cache.size > STATEMENT_CACHE) {
        const oldest = cache.keys().next().value as string;
        for (const s of cache.get(oldest) ?? []) s.finalize();
        cache.delete(oldest);
      }
    }
    if (idle.length < IDLE_PER_SQL) idle.push(st);
    else st.finalize();
  }

  /** Finalizes every idle cached statement of `conn` (before closing it; none is in use then). */
  async #dropCache(conn: sqlite3.Database): Promise<void> {
    const cache = this.#cache.get(conn);
    this.#cache.delete(conn);
    if (!cache) return;
    for (const idle of cache.values()) for (const st of idle) await new Promise<void>((r) => st.finalize(() => r()));
  }
}

/** Idle instances kept per SQL text: about the concurrency of the busiest query. */
const IDLE_PER_SQL = 8;

/** SQL texts with cached statements per connection (dynamic `IN (?,?,…)` lists make many distinct texts). */
const STATEMENT_CACHE = 256;

/** A write that returns rows: its statement must be reset so the write is complete and released. */
const RETURNING = /\bRETURNING\b/i;

/** Statements the reader may run: a SELECT (a WITH may end in a write, so it stays on the writer). */
const SELECT = /^\s*SELECT\b/i;

/** The read-only second connection of a `reader: true` Db. */
async function openReader(path: string, busyTimeoutMs: number): Promise<sqlite3.Database> {
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

function toBind(params: SqlParams | undefined): unknown {
  if (params === undefined) return [];
  if (Array.isArray(params)) return params;
  if (typeof params !== 'object' || params === null) {
    throw new VaultSqlError('SQL parameters must be an array or an object of named parameters');
  }
  return params;
}
