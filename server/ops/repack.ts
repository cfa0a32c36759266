/**
 * `sigil-server repack`, with the server stopped: rewrites vault.db with the page size a new vault
 * gets (VAULT_PAGE_SIZE, 8 KiB) and without its free pages. SQLite fixes a WAL database's page
 * size when the file is created, so an appliance initialised before that size was chosen keeps
 * 4 KiB pages, and its destroys stay slower (100k in a vault of 1.1M: ~2.2 s instead of ~1.7 s,
 * bench/README.md). And a file never shrinks by itself: what deletions and the rebuilding
 * migrations (messaging-003 doubles a vault's file once) free stays in it as zeroed free pages.
 *
 * 1. Checkpoints vault.db, asks for the new page size and `VACUUM INTO` a working file in the
 *    vault directory (0700). Only live rows are copied: what deletions freed was already zeroed
 *    by secure_delete and is not carried over.
 * 2. The copy must pass `PRAGMA integrity_check` and have the new page size; it is switched to WAL
 *    and gets a `vault.repacked` audit entry.
 * 3. It is swapped in as a restore does (swap-in.ts): the old file is overwritten, then unlinked.
 *
 * No master key is needed: rows are copied as they are (sealed), keys.db is not touched. A vault
 * that already has the page size and less than a quarter of its pages (or under 64 MiB) free is
 * left alone. Any failure leaves the live vault.db as it was
 * and removes the working file.
 *
 * The repack holds the data directory's claim for its whole run (data-claim.ts). Stopped by a
 * signal before the swap, it removes its working copy and changes nothing; from the swap on it
 * finishes.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PATHS } from '../appliance.js';
import { AuditLog } from '../audit/index.js';
import { ApplianceMissingError } from '../errors.js';
import { Db, VAULT_DB_FILE, VAULT_PAGE_SIZE } from '../vault/index.js';
import { integrityProblems } from './backup.js';
import { DataMissingError, RepackFailedError } from './errors.js';
import { claimDataDir } from './data-claim.js';
import { secureRemoveDb } from './secure-remove.js';
import { swapIn } from './swap-in.js';
import type { SweepResult } from './working-copies.js';

/** Options of {@link repackVault}. */
export interface RepackOptions {
  dataDir: string;
  now?: () => Date;
  /** Aborted (by the command's signal handler): stop at the next step before the swap, clean up, throw its reason. */
  signal?: AbortSignal;
  /** Hears what the claim's sweep of leftover working copies did, when anything. */
  onSweep?: (r: SweepResult) => void;
}

/** vault.db's page size, file size and pages (all, and free). */
export interface VaultLayout {
  pageSize: number;
  bytes: number;
  pages: number;
  freePages: number;
}

/** A vault with the right page size is rewritten once this share of its pages is free… */
export const REPACK_FREE_SHARE = 0.25;
/** …and they add up to at least this much (a young vault's few free pages are not worth a rewrite). */
export const REPACK_MIN_FREE_BYTES = 64 * 2 ** 20;

/** Why vault.db wants a repack, or undefined. */
export function repackReason(l: Omit<VaultLayout, 'bytes'>): string | undefined {
  if (l.pageSize !== VAULT_PAGE_SIZE) return `vault.db has ${l.pageSize}-byte pages (made before ${VAULT_PAGE_SIZE}); destroys are slower`;
  if (l.freePages >= l.pages * REPACK_FREE_SHARE && l.freePages * l.pageSize >= REPACK_MIN_FREE_BYTES) {
    return `${Math.round((l.freePages / l.pages) * 100)} % of vault.db's pages are free (${l.freePages} of ${l.pages}, zeroed)`;
  }
  return undefined;
}

/** What {@link repackVault} answers. */
export interface RepackResult {
  /** False when vault.db wanted no repack ({@link repackReason}): nothing was changed. */
  repacked: boolean;
  before: VaultLayout;
  after: VaultLayout;
}

/**
 * Rewrites vault.db with {@link VAULT_PAGE_SIZE} pages and no free pages, when {@link repackReason} says so.
 * @throws ApplianceMissingError, DataMissingError (no vault.db), DataInUseError, ServerRunningError, RepackFailedError,
 *   the abort reason of `opts.signal`,
 *   vault errors (e.g. VAULT_FULL when the disk cannot hold the copy).
 */
export async function repackVault(opts: RepackOptions): Promise<RepackResult> {
  const dataDir = resolve(opts.dataDir);
  if (!existsSync(join(dataDir, PATHS.meta))) throw new ApplianceMissingError(dataDir);
  const vaultDir = join(dataDir, PATHS.vault);
  const target = join(vaultDir, VAULT_DB_FILE);
  if (!existsSync(target)) throw new DataMissingError(`${target} is missing`);
  const claim = await claimDataDir(dataDir, 'repack', opts.onSweep ? { onSweep: opts.onSweep } : {});
  try {
    return await repackClaimed(opts, vaultDir, target);
  } finally {
    claim.release();
  }
}

async function repackClaimed(opts: RepackOptions, vaultDir: string, target: string): Promise<RepackResult> {
  const now = opts.now ?? (() => new Date());
  const step = (): void => opts.signal?.throwIfAborted();
  step();

  const src = await Db.open(target);
  let before: VaultLayout;
  const work = join(vaultDir, `.repack-${randomBytes(9).toString('base64url')}.db`);
  try {
    // Folds the WAL in first: the size reported, and the copy, are of the whole database.
    await src.checkpointTruncate();
    before = { ...(await src.pageCounts()), bytes: statSync(target).size };
    if (repackReason(before) === undefined) return { repacked: false, before, after: before };
    step();
    // VACUUM INTO takes a pending page_size, even from a WAL database (whose own size is fixed).
    await src.run(`PRAGMA page_size = ${VAULT_PAGE_SIZE}`);
    await src.run('VACUUM INTO ?', [work]);
  } catch (err) {
    await secureRemoveDb(work);
    throw err;
  } finally {
    await src.close();
  }

  let swapped = false;
  let after: Omit<VaultLayout, 'bytes'> = { pageSize: 0, pages: 0, freePages: 0 };
  try {
    step();
    const db = await Db.open(work); // switches the copy to WAL, like every vault file
    try {
      const problems = await integrityProblems(db);
      if (problems.length > 0) throw new RepackFailedError(`the rewritten vault.db fails PRAGMA integrity_check: ${problems.slice(0, 3).join('; ')}`);
      const size = await db.pageSize();
      if (size !== VAULT_PAGE_SIZE) throw new RepackFailedError(`the rewritten vault.db has ${size}-byte pages, expected ${VAULT_PAGE_SIZE}`);
      await (await AuditLog.open(db, { now })).append([
        {
          type: 'vault.repacked',
          actor: 'system',
          data: { pageSizeBefore: before.pageSize, pageSizeAfter: size, bytesBefore: before.bytes, freePagesBefore: before.freePages },
        },
      ]);
      await db.checkpointTruncate();
      after = await db.pageCounts();
    } finally {
      await db.close();
    }
    step(); // the last point where an interruption changes nothing; from the swap on it finishes
    await swapIn(vaultDir, work);
    swapped = true;
  } finally {
    if (!swapped) await secureRemoveDb(work);
  }
  return { repacked: true, before, after: { ...after, bytes: statSync(target).size } };
}
