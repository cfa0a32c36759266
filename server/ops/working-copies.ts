/**
 * Working copies of vault.db that the ops commands make in the vault directory — backup's
 * snapshot `.backup-<id>.db`, restore's `.restore-<rand>.db`, repack's `.repack-<rand>.db`, with
 * SQLite's `-journal`, `-wal` and `-shm` side files, and the old vault.db a swap set aside as
 * `<copy>.db.old` — hold the vault's pages in the clear of the file system (the rows are sealed,
 * but names, members and ciphertext of conversations are there). A command that is killed, or a
 * machine that loses power, skips the `finally` that removes them, and a copy left behind keeps
 * correspondence that is destroyed later: it would break irreversible deletion.
 *
 * So whoever takes the data directory's claim (data-claim.ts: `start` and every ops command that
 * makes a copy) first removes every such file with {@link secureRemove}; while it holds the claim
 * nobody else can be writing one. `check` reports one as a failure.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { VAULT_DB_FILE } from '../vault/index.js';
import { secureRemove } from './secure-remove.js';

/** A working copy or one of its side files (only the names the ops commands make). */
export const WORKING_COPY_NAME = /^\.(backup|restore|repack)-[A-Za-z0-9_-]+\.db(\.old)?(-journal|-wal|-shm)?$/;

/** Names (not paths) of the working copies in `vaultDir`, sorted. */
export function findWorkingCopies(vaultDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(vaultDir);
  } catch {
    return [];
  }
  return names.filter((n) => WORKING_COPY_NAME.test(n)).sort();
}

/** What {@link sweepWorkingCopies} did. */
export interface SweepResult {
  /** Names removed (overwritten, synced, unlinked). */
  removed: string[];
  /**
   * Names kept because vault.db is missing: a swap (restore, repack) was cut between its two
   * renames, and these may be the only whole vault. Left for the administrator.
   */
  kept: string[];
}

/**
 * Securely removes every working copy in `vaultDir`. Call it only while holding the data
 * directory's claim. When vault.db itself is missing, restore's and repack's copies (and the
 * old file a swap set aside) are kept: one of them is the vault.
 */
export async function sweepWorkingCopies(vaultDir: string): Promise<SweepResult> {
  const names = findWorkingCopies(vaultDir);
  const vaultMissing = !existsSync(join(vaultDir, VAULT_DB_FILE));
  const result: SweepResult = { removed: [], kept: [] };
  for (const name of names) {
    if (vaultMissing && !name.startsWith('.backup-')) {
      result.kept.push(name);
      continue;
    }
    await secureRemove(join(vaultDir, name));
    result.removed.push(name);
  }
  return result;
}
