/**
 * The vault facade: the data directory with `vault.db` (ciphertexts, keyring, audit log),
 * `keys.db` (destroyable keys) and `vault-key.json` (how to re-derive the master key).
 * The directory is kept at mode 0700 and every file in it at 0600.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { Db } from './db.js';
import { DiskReserve, OPEN_ROOM_BYTES, releaseReserveToOpen } from './disk-reserve.js';
import { VaultFullError } from './errors.js';
import { Keyring } from './keyring.js';
import { Keystore, type KeystoreOptions } from './keystore.js';
import {
  VAULT_KEY_FILE,
  VAULT_KEY_NEXT_FILE,
  VAULT_KEY_PREV_FILE,
  createMasterKey,
  unlockMasterKey,
  type CreateMasterKeyOptions,
  type MasterKey,
  type MasterKeySecret,
  type PrepareMasterKeyOptions,
} from './master-key.js';
import { finishCommitted, rotate, type RotationHooks } from './master-key-rotation.js';

/** File names inside the data directory. */
export const VAULT_DB_FILE = 'vault.db';
export const KEYS_DB_FILE = 'keys.db';
/**
 * vault.db's page size when it is created. Destroying a conversation zeroes every page its rows
 * freed (secure_delete), writes each to the WAL and again to the file: with 4 KiB pages that is
 * one write per page and two ~1.5 kB rows per page; 8 KiB pages hold five and halve the writes.
 * Destroying 100k in a vault of 1.1M: 2.2 s → 1.7 s (bench/README.md, "Sixth session").
 */
export const VAULT_PAGE_SIZE = 8192;

/**
 * The writing connections' page cache and checkpoint interval (vault.db and keys.db). SQLite's
 * defaults (2 MiB of cache, a checkpoint every 1,000 WAL pages) made each batch of messages read back
 * pages it had just written (the conversations' and indexes' last pages) and copy the same pages to
 * the file again and again: under bench/messages' 16-per-request load the server read 306 MB and
 * wrote 549 MB for ~35,000 messages, 160 / 444 MB with a 32 MiB cache and 8,000 pages (bench/README.md,
 * "Seventeenth session"). The cache takes memory only as pages are read. The WAL is ciphertext like
 * the file, and every deletion still truncates it (README.md, "Deletion") — which is why the interval
 * is 4,000 pages and not 8,000: the first deletion after a burst copies what the WAL holds (one
 * message deleted right after a fill of 300,000: 17 ms at 1,000 pages, 45 ms at 4,000, 69 ms at 8,000).
 */
export const WRITER_CACHE_KIB = 32 * 1024;
export const WAL_AUTOCHECKPOINT_PAGES = 4000;
/** Both, as vault.db's and keys.db's writing connections open with them. */
const WRITER_DB = { cacheKiB: WRITER_CACHE_KIB, walAutocheckpointPages: WAL_AUTOCHECKPOINT_PAGES } as const;
/**
 * Where a master-key rotation keeps the new `vault-key.json` until every key is re-wrapped, and
 * the replaced one from its commit until its clean-up ran (defined beside VAULT_KEY_FILE).
 */
export { VAULT_KEY_NEXT_FILE, VAULT_KEY_PREV_FILE } from './master-key.js';
export type { RotationHooks, RotationPlan } from './master-key-rotation.js';

/** An open vault. */
export interface Vault {
  readonly dir: string;
  /** `vault.db`: ciphertexts and everything that is not a destroyable key. */
  readonly db: Db;
  /** `keys.db`: conversation and message keys. */
  readonly keys: Keystore;
  /** Named long-lived keys and secrets in `vault.db`. */
  readonly keyring: Keyring;
  /** The current master key (changes after {@link rotateMasterKey}). */
  readonly masterKey: MasterKey;
  /**
   * True while a master-key rotation has not finished (a crash mid-way): some keys may already
   * be under the new key. The appliance should not serve until `rotateMasterKey` is run again
   * with the same new secret, which resumes it.
   */
  readonly rotationPending: boolean;
  /**
   * True while a committed master-key rotation's clean-up has not run (`vault-key.prev.json`
   * exists, nothing is pending): the vault serves under the new key, but the old secret has not
   * been checked to be refused nor its key file shredded. Running the same rotate command again
   * finishes it ({@link finishRotation}).
   */
  readonly rotationCleanupPending: boolean;
  /**
   * Rotates the master key to a new passphrase or key file: checks that every keyring row and
   * conversation key opens (refused before any change otherwise), writes the new key file and
   * `vault-key.next.json` durably, re-wraps every keyring row and every conversation key (DEKs
   * are under CKs and stay), then renames it over `vault-key.json`. Resumable: if a previous
   * rotation was interrupted, pass the same new secret (for a key file, the path given then) and
   * it completes.
   * @returns how many keyring rows and conversation keys were re-wrapped now.
   * @throws RotationKeyUnreadableError (nothing changed), MasterKeyExistsError, MasterKeyWrongError (resuming with another secret), …
   */
  rotateMasterKey(next: PrepareMasterKeyOptions, hooks?: RotationHooks): Promise<{ keyring: number; conversationKeys: number }>;
  /**
   * Finishes a rotation that was committed (`vault-key.json` names this vault's key) but whose
   * clean-up did not end — the process died after the final rename: runs `afterCommit` with the
   * `vault-key.json` it replaced (from `vault-key.prev.json`), then removes that record. If
   * `afterCommit` throws, the record stays and the error is thrown.
   * @returns false, doing nothing, when there is no such record (no rotation, or it finished), or
   *   while a rotation is pending (rotateMasterKey finishes that one).
   */
  finishRotation(afterCommit?: RotationHooks['afterCommit']): Promise<boolean>;
  /** `wal_checkpoint(TRUNCATE)` on both databases (end of every deletion). */
  checkpointAll(): Promise<void>;
  /**
   * The disk reserve (disk-reserve.ts): deletions run through `reserve.freeing`, new data is refused
   * while `reserve.takesNewData` is false. State 'off' unless {@link OpenVaultOptions.reserve} was given.
   */
  readonly reserve: DiskReserve;
  /**
   * Data backup into `destDir`: an online-backup copy of `vault.db` and `vault-key.json`.
   * `keys.db` is deliberately never copied (see README: a copy would outlive deletions).
   * @returns the paths written.
   */
  backupTo(destDir: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Options of {@link openVault}. */
export interface OpenVaultOptions {
  dir: string;
  masterKey: MasterKey;
  keystore?: KeystoreOptions;
  now?: () => Date;
  /**
   * The disk reserve: made at open when there is room (a size of 0 removes one left from an earlier
   * setting). Without it the vault leaves any reserve file alone (the ops commands).
   */
  reserve?: VaultReserveOptions;
}

/** {@link OpenVaultOptions.reserve}. */
export interface VaultReserveOptions {
  /** Bytes; 0 = off. */
  bytes: number;
  /** Free space kept beyond it when making it. Default 16 MiB. */
  marginBytes?: number;
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** The start released it before its claim ({@link releaseReserveToOpen}): re-made without the margin. */
  heldBefore?: boolean;
  /** Test seam: free bytes on the vault's file system. */
  freeBytes?: (dir: string) => Promise<number>;
}

function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Opens both databases of an initialised data directory with an unlocked master key. */
export async function openVault(opts: OpenVaultOptions): Promise<Vault> {
  ensurePrivateDir(opts.dir);
  const log = opts.reserve?.log;
  // Before SQLite makes its -shm and -wal: on a full disk it could not (disk-reserve.ts).
  const releasedToOpen = opts.reserve ? await releaseReserveToOpen(opts.dir, opts.reserve.bytes, log, opts.reserve.freeBytes) : false;
  // A reader connection: request lookups must not queue behind message-writing transactions.
  const db = await Db.open(join(opts.dir, VAULT_DB_FILE), { reader: true, pageSize: VAULT_PAGE_SIZE, ...WRITER_DB }).catch((err: unknown) =>
    Promise.reject(fullDiskAtOpen(opts.dir, err)),
  );
  let keys: Keystore | undefined;
  try {
    keys = await Keystore.open(join(opts.dir, KEYS_DB_FILE), opts.masterKey, {
      now: opts.now,
      db: WRITER_DB,
      ...opts.keystore,
    });
    const keyring = await Keyring.open(db, opts.masterKey, { now: opts.now });
    const k = keys;
    let mk = opts.masterKey;
    const pendingPath = join(opts.dir, VAULT_KEY_NEXT_FILE);
    const recordPath = join(opts.dir, VAULT_KEY_PREV_FILE);
    const reserve = new DiskReserve({
      dir: opts.dir,
      bytes: opts.reserve?.bytes ?? 0,
      heldBefore: releasedToOpen || opts.reserve?.heldBefore === true,
      ...(opts.reserve?.marginBytes !== undefined ? { marginBytes: opts.reserve.marginBytes } : {}),
      ...(opts.reserve?.freeBytes ? { freeBytes: opts.reserve.freeBytes } : {}),
      ...(log ? { log } : {}),
      // Each on its own: keys.db's may succeed when vault.db's cannot, and the retry says the rest.
      checkpoint: async () => {
        for (const d of [db, k.db]) {
          await d.checkpointTruncate().catch((e: unknown) => log?.('vault.reserve-checkpoint-failed', { file: d.path, errorMessage: e instanceof Error ? e.message : String(e) }));
        }
      },
    });
    if (opts.reserve) await reserve.make();
    return {
      reserve,
      dir: opts.dir,
      db,
      keys: k,
      keyring,
      get masterKey() {
        return mk;
      },
      get rotationPending() {
        return existsSync(pendingPath);
      },
      get rotationCleanupPending() {
        return existsSync(recordPath) && !existsSync(pendingPath);
      },
      async rotateMasterKey(next: PrepareMasterKeyOptions, hooks: RotationHooks = {}) {
        const r = await rotate({ dir: opts.dir, db, keyring, keys: k }, next, hooks);
        mk = r.next; // committed: whatever the clean-up does, this is the vault's key now
        await finishCommitted(opts.dir, hooks.afterCommit);
        return r.counts;
      },
      async finishRotation(afterCommit?: RotationHooks['afterCommit']) {
        if (existsSync(pendingPath)) return false;
        return finishCommitted(opts.dir, afterCommit);
      },
      async checkpointAll() {
        await db.checkpointTruncate();
        await k.db.checkpointTruncate();
      },
      async backupTo(destDir: string) {
        ensurePrivateDir(destDir);
        const dbDest = join(destDir, VAULT_DB_FILE);
        const keyDest = join(destDir, VAULT_KEY_FILE);
        await db.backupTo(dbDest);
        copyFileSync(join(opts.dir, VAULT_KEY_FILE), keyDest);
        chmodSync(keyDest, 0o600);
        return [dbDest, keyDest];
      },
      async close() {
        await k.close();
        await db.close();
      },
    };
  } catch (err) {
    await keys?.close().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw fullDiskAtOpen(opts.dir, err);
  }
}

/**
 * SQLite reports a disk with no room for a -shm or -wal as a bare I/O error ("disk I/O error" in
 * a PRAGMA): said as what it is, the way out named, when the file system is indeed (nearly) full.
 */
function fullDiskAtOpen(dir: string, err: unknown): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (code !== 'VAULT_IO' && code !== 'VAULT_FULL') return err;
  let free: number;
  try {
    const s = statfsSync(dir);
    free = s.bavail * s.bsize;
  } catch {
    return err;
  }
  if (free >= OPEN_ROOM_BYTES) return err;
  return new VaultFullError(
    `the disk holding the vault (${dir}) is full (${free} bytes free): the vault cannot open without room for its -shm and -wal files; free space on that file system and start again`,
    { cause: err },
  );
}

/** Options of {@link initVault}: the data directory, the unlock secret, and the master-key options. */
export type InitVaultOptions = CreateMasterKeyOptions & { keystore?: KeystoreOptions; reserve?: VaultReserveOptions };

/**
 * Initialises a new vault in `dir` (created 0700): writes `vault-key.json`, creates both
 * databases, and returns it open.
 * @throws MasterKeyExistsError if `dir` already holds a vault.
 */
export async function initVault(opts: InitVaultOptions): Promise<Vault> {
  ensurePrivateDir(opts.dir);
  const masterKey = await createMasterKey(opts);
  return openVault({ dir: opts.dir, masterKey, keystore: opts.keystore, now: opts.now, ...(opts.reserve ? { reserve: opts.reserve } : {}) });
}

/** Unlocks the master key (passphrase or key file) and opens the vault. */
export async function unlockVault(
  opts: MasterKeySecret & { dir: string; keystore?: KeystoreOptions; now?: () => Date; reserve?: VaultReserveOptions },
): Promise<Vault> {
  const masterKey = await unlockMasterKey(opts);
  return openVault({ dir: opts.dir, masterKey, keystore: opts.keystore, now: opts.now, ...(opts.reserve ? { reserve: opts.reserve } : {}) });
}
