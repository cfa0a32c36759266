/**
 * Prepared statements of a `Db` (db.ts): the cache behind every `run`/`get`/`all` — idle
 * statements per connection and SQL text, bounded, each serving one caller at a time — and the
 * `Stmt` handles a caller prepares itself with `Db.prepare` for batches and finalizes when done.
 */
import sqlite3 from 'sqlite3';
import { VaultClosedError, VaultSqlError, type VaultError } from './errors.js';
import { mapSqliteError } from './sqlite-errors.js';
import type { RunResult, SqlParams, Stmt } from './db-types.js';

/** Idle instances kept per SQL text: about the concurrency of the busiest query. */
const IDLE_PER_SQL = 8;

/** SQL texts with cached statements per connection (dynamic `IN (?,?,…)` lists make many distinct texts). */
const STATEMENT_CACHE = 256;

/** A write that returns rows: its statement must be reset so the write is complete and released. */
const RETURNING = /\bRETURNING\b/i;

/** Prepared statements by connection and SQL text, for one `Db` and its connections. */
export class StatementCache {
  readonly #cache = new Map<sqlite3.Database, Map<string, sqlite3.Statement[]>>();

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
  async call<T>(conn: sqlite3.Database, method: 'run' | 'get' | 'all', sql: string, params?: SqlParams): Promise<T> {
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
  async drop(conn: sqlite3.Database): Promise<void> {
    const cache = this.#cache.get(conn);
    this.#cache.delete(conn);
    if (!cache) return;
    for (const idle of cache.values()) for (const st of idle) await new Promise<void>((r) => st.finalize(() => r()));
  }
}

/** The parameters in the shape `sqlite3` binds: an array, or an object of named parameters. */
export function toBind(params: SqlParams | undefined): unknown {
  if (params === undefined) return [];
  if (Array.isArray(params)) return params;
  if (typeof params !== 'object' || params === null) {
    throw new VaultSqlError('SQL parameters must be an array or an object of named parameters');
  }
  return params;
}

/** Compiles `sql` on `conn`. @throws VaultError subclasses (see `errors.ts`) if it does not compile. */
export function compileStatement(conn: sqlite3.Database, sql: string): Promise<sqlite3.Statement> {
  return new Promise<sqlite3.Statement>((resolve, reject) => {
    const s: sqlite3.Statement = conn.prepare(sql, (err: Error | null) =>
      err ? reject(mapSqliteError(err, sql)) : resolve(s),
    );
  });
}

/**
 * The handle of the compiled `st`: each use runs through `schedule` (the Db's mutex, or straight
 * through inside its transaction); `finalize` calls `onFinalize` once, then finalizes `st`.
 */
export function stmtHandle(
  st: sqlite3.Statement,
  sql: string,
  schedule: <T>(task: () => Promise<T>) => Promise<T>,
  onFinalize: () => void,
): Stmt {
  let finalized = false;
  const use = <T>(method: 'run' | 'get' | 'all', params?: SqlParams): Promise<T> => {
    if (finalized) return Promise.reject(new VaultClosedError('prepared statement already finalized'));
    return schedule(
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
      onFinalize();
      await new Promise<void>((r) => st.finalize(() => r()));
    },
  };
}
