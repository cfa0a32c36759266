/**
 * File-level helpers of `Db`: private (0600) database files, the WAL's truncation checked on
 * the file, and SQLite's online backup.
 */
import { chmodSync, closeSync, openSync, statSync } from 'node:fs';
import type sqlite3 from 'sqlite3';
import { VaultBackupError, VaultCheckpointError } from './errors.js';

/** The part of sqlite3's (untyped) Backup object we use; see sqlite3's src/backup.h. */
interface BackupHandle {
  readonly completed: boolean;
  readonly failed: boolean;
  step(pages: number, cb: (err: Error | null) => void): void;
  finish(cb: () => void): void;
}

/**
 * Copies the connection's main database to `destPath` with `sqlite3_backup_*` in one step
 * (-1 = all pages): a consistent snapshot. The caller holds the Db's mutex.
 * @throws VaultBackupError if the backup cannot start or does not complete.
 */
export function onlineBackup(conn: sqlite3.Database, destPath: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const c = conn as unknown as { backup: (dest: string, cb: (err: Error | null) => void) => BackupHandle };
    const b: BackupHandle = c.backup(destPath, (err) => {
      if (err) return reject(new VaultBackupError(`backup to ${destPath} could not start`, { cause: err }));
      b.step(-1, (stepErr) => {
        const completed = b.completed;
        b.finish(() => {
          if (stepErr || !completed) {
            reject(new VaultBackupError(`backup to ${destPath} did not complete`, { cause: stepErr ?? undefined }));
          } else resolve();
        });
      });
    });
  });
}

/** Creates the file with mode 0600 if missing and tightens it if it exists (SQLite copies it to -wal/-shm). */
export function ensurePrivateFile(path: string): void {
  // ':memory:' and '' are SQLite's in-memory and temporary databases, not files.
  if (path === ':memory:' || path === '') return;
  try {
    closeSync(openSync(path, 'a', 0o600));
    chmodSync(path, 0o600);
  } catch {
    // Let SQLite report the failure with its own code (VAULT_OPEN) on open.
  }
}

/** Size of a file, 0 if it does not exist. */
export function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Runs `PRAGMA wal_checkpoint(TRUNCATE)` through `get` on the writer of the database at `path`
 * and checks that it completed and left the WAL file empty. The caller holds the Db's mutex with
 * its reader paused (see `Db.checkpointTruncate`).
 * @throws VaultCheckpointError if a reader kept the checkpoint from completing (busy=1) or the
 *   WAL file is not empty afterwards.
 */
export async function truncateWal(get: <T>(sql: string) => Promise<T>, path: string): Promise<void> {
  const r = await get<{ busy: number; log: number; checkpointed: number } | undefined>('PRAGMA wal_checkpoint(TRUNCATE)');
  if (!r || r.busy !== 0) {
    throw new VaultCheckpointError(
      `wal_checkpoint(TRUNCATE) on ${path}: expected busy=0, got busy=${String(r?.busy)} ` +
        `(log=${String(r?.log)}, checkpointed=${String(r?.checkpointed)}); a reader holds the WAL`,
    );
  }
  const size = fileSize(`${path}-wal`);
  if (size > 0) {
    throw new VaultCheckpointError(`wal_checkpoint(TRUNCATE) on ${path}: WAL still ${size} bytes`);
  }
}
