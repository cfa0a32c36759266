/**
 * The pragmas every connection of `Db.open` runs with (db.ts): page size, cache and checkpoint
 * interval when asked for, and the security-relevant ones, read back and checked.
 */
import { VaultPragmaError } from './errors.js';
import type { DbOpenOptions } from './db-types.js';

/** Runs one pragma on the connection being opened: `exec`, or `get` for the row it answers. */
export type PragmaRunner = <T>(method: 'exec' | 'get', sql: string) => Promise<T>;

/**
 * Applies `journal_mode=WAL` (unless `readonly`), `secure_delete=ON`, `temp_store=MEMORY`,
 * `foreign_keys=ON`, `synchronous=FULL` and the sizes of `opts`, then reads back the
 * security-relevant ones.
 *
 * @throws RangeError if a size of `opts` is not a positive integer; VaultPragmaError if
 *   secure_delete / WAL / foreign keys do not read back as set.
 */
export async function applyPragmas(raw: PragmaRunner, readonly: boolean, opts: DbOpenOptions): Promise<void> {
  const positive = (n: number | undefined, what: string): number | undefined => {
    if (n === undefined) return undefined;
    if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`Db.open: ${what} must be a positive integer, got ${n}`);
    return n;
  };
  const pageSize = positive(opts.pageSize, 'pageSize');
  const cacheKiB = positive(opts.cacheKiB, 'cacheKiB');
  const checkpointPages = positive(opts.walAutocheckpointPages, 'walAutocheckpointPages');
  // Only takes effect on a new, still empty file, before it switches to WAL.
  if (pageSize !== undefined && !readonly) await raw('exec', `PRAGMA page_size = ${pageSize}`);
  if (cacheKiB !== undefined) await raw('exec', `PRAGMA cache_size = -${cacheKiB}`);
  if (checkpointPages !== undefined && !readonly) await raw('exec', `PRAGMA wal_autocheckpoint = ${checkpointPages}`);
  // secure_delete zeroes freed cells and pages, so a deleted row's bytes do not survive in the
  // file; it is per connection, hence set (and checked) on every open.
  await raw('exec', 'PRAGMA secure_delete = ON');
  await raw('exec', 'PRAGMA temp_store = MEMORY');
  await raw('exec', 'PRAGMA foreign_keys = ON');
  await raw('exec', 'PRAGMA synchronous = FULL');
  if (!readonly) await raw('get', 'PRAGMA journal_mode = WAL');
  const sd = await raw<{ secure_delete: number }>('get', 'PRAGMA secure_delete');
  if (sd?.secure_delete !== 1) {
    throw new VaultPragmaError(`secure_delete: expected 1, read ${String(sd?.secure_delete)}`);
  }
  const fk = await raw<{ foreign_keys: number }>('get', 'PRAGMA foreign_keys');
  if (fk?.foreign_keys !== 1) {
    throw new VaultPragmaError(`foreign_keys: expected 1, read ${String(fk?.foreign_keys)}`);
  }
  const jm = await raw<{ journal_mode: string }>('get', 'PRAGMA journal_mode');
  if (!readonly && jm?.journal_mode !== 'wal') {
    throw new VaultPragmaError(`journal_mode: expected wal, read ${String(jm?.journal_mode)}`);
  }
}
