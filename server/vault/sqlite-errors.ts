/**
 * Maps sqlite3's errors (an `Error` with `code: 'SQLITE_FULL'` etc. and a numeric `errno`, the
 * primary result code) onto the vault's typed errors. Extended codes (SQLITE_IOERR_WRITE…) share
 * the primary code in the low byte, so matching on the prefix covers them.
 */
import {
  VaultConstraintError,
  VaultCorruptError,
  VaultError,
  VaultFullError,
  VaultIoError,
  VaultLockedError,
  VaultOpenError,
  VaultReadonlyError,
  VaultSqlError,
} from './errors.js';

type Ctor = new (message: string, options?: { cause?: unknown }) => VaultError;

const BY_CODE: readonly [prefix: string, ctor: Ctor, what: string][] = [
  ['SQLITE_FULL', VaultFullError, 'the disk or the database page limit is full; nothing was written'],
  ['SQLITE_IOERR', VaultIoError, 'an I/O error below SQLite'],
  ['SQLITE_CORRUPT', VaultCorruptError, 'the database file is damaged'],
  ['SQLITE_NOTADB', VaultCorruptError, 'the file is not a SQLite database'],
  ['SQLITE_BUSY', VaultLockedError, 'another connection holds the database lock'],
  ['SQLITE_LOCKED', VaultLockedError, 'a table is locked by another statement'],
  ['SQLITE_CONSTRAINT', VaultConstraintError, 'a constraint refused the write'],
  ['SQLITE_CANTOPEN', VaultOpenError, 'the database file cannot be opened'],
  ['SQLITE_READONLY', VaultReadonlyError, 'the database is read-only'],
];

/**
 * Turns an error from sqlite3 into a {@link VaultError}; `context` (the SQL or the operation) is
 * put in the message, never bound parameter values, which may be secret.
 */
export function mapSqliteError(err: unknown, context: string): VaultError {
  if (err instanceof VaultError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : '';
  const text = err instanceof Error ? err.message : String(err);
  const ctx = context.length > 120 ? `${context.slice(0, 117)}...` : context;
  for (const [prefix, Ctor, what] of BY_CODE) {
    if (code.startsWith(prefix)) return new Ctor(`${what} (${text}) in: ${ctx}`, { cause: err });
  }
  return new VaultSqlError(`SQLite error (${text}) in: ${ctx}`, { cause: err });
}
