/**
 * Putting a rebuilt vault.db in place of the live one (restore and repack), with the server stopped:
 * the old file's WAL is folded in first, so no stale WAL meets the new file, and the old file is
 * overwritten before it is unlinked, so its pages do not stay readable in free blocks.
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Db, VAULT_DB_FILE } from '../vault/index.js';
import { secureRemoveDb } from './secure-remove.js';

/** Replaces vault.db in `vaultDir` with `work`: checkpoint the old one, rename it aside, rename `work` in, shred the old. */
export async function swapIn(vaultDir: string, work: string): Promise<void> {
  const target = join(vaultDir, VAULT_DB_FILE);
  const aside = `${work}.old`;
  if (existsSync(target)) {
    // Folds the WAL into the file and deletes it on close, so no stale WAL meets the new file.
    const old = await Db.open(target);
    try {
      await old.checkpointTruncate();
    } finally {
      await old.close();
    }
    renameSync(target, aside);
    for (const side of ['-wal', '-shm']) if (existsSync(target + side)) renameSync(target + side, aside + side);
  }
  renameSync(work, target);
  await secureRemoveDb(aside);
}
