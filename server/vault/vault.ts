/**
 * The vault facade: the data directory with `vault.db` (ciphertexts, keyring, audit log),
 * `keys.db` (destroyable keys) and `vault-key.json` (how to re-derive the master key).
 * The directory is kept at mode 0700 and every file in it at 0600.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { Db } from './db.js';
import { DiskReserve, OPEN_ROOM_BYTES, releaseReserveToOpen } from './disk-reserve.js';
import { renameDurable, tempPathOf } from './durable-file.js';
import { MasterKeyExistsError, RotationKeyUnreadableError, VaultFullError } from './errors.js';
import { dropReplacedKey, keepReplacedKey, readReplacedKey } from './rotation-record.js';
import { Keyring, type KeyCensus } from './keyring.js';
import { Keystore, type KeystoreOptions } from './keystore.js';
import {
  VAULT_KEY_FILE,
  VAULT_KEY_NEXT_FILE,
  VAULT_KEY_PREV_FILE,
  createMasterKey,
  prepareMasterKey,
  publishKeyFile,
  readVaultKeyJson,
  unlockMasterKey,
  unlockWithConfig,
  writeVaultKeyJson,
  type CreateMasterKeyOptions,
  type MasterKey,
  type MasterKeySecret,
  type PrepareMasterKeyOptions,
  type VaultKeyJson,
} from './master-key.js';

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

/** What a rotation re-wraps in this run, known before it changes anything. */
export interface RotationPlan {
  /** True when this run finishes an interrupted rotation (vault-key.next.json was there). */
  resumed: boolean;
  /** Keyring rows (vault.db) still under the current master key. */
  keyring: number;
  /** Conversation keys (keys.db) still under the current master key. */
  conversationKeys: number;
}

/** Hooks of {@link Vault.rotateMasterKey}. */
export interface RotationHooks {
  /**
   * Runs inside the vault.db transaction that re-wraps the keyring, so what it writes there (the
   * audit entry) commits with it. Once per rotation: not when resuming a rotation whose keyring
   * step had already committed (it ran then). An empty keyring cannot tell, so there it may run
   * again on a resume (only a bare vault has one; an appliance's holds its CA and TLS keys).
   */
  inKeyringTransaction?: (plan: RotationPlan) => Promise<void>;
  /**
   * Runs once the rotation is committed — `vault-key.json` names the new key — with the
   * `vault-key.json` it replaced, before the record of that (`vault-key.prev.json`) is removed:
   * the caller's clean-up (the ops command checks the old secret is refused and shreds the old
   * key file). If it throws, or the process dies in it, the record stays, and
   * {@link Vault.finishRotation} on the vault opened with the new key runs it again. Throwing is
   * also how a caller refuses to finish: it may first check that it is the rotation's own operator
   * (the secret it holds opens `replaced`).
   */
  afterCommit?: (replaced: VaultKeyJson) => Promise<void>;
}

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

/** The open parts a rotation works on. */
interface RotationTarget {
  dir: string;
  db: Db;
  keyring: Keyring;
  keys: Keystore;
}

/**
 * The rotation (see {@link Vault.rotateMasterKey}) up to its commit. Order matters for a power cut
 * (or a kill -9) at any point: nothing is re-wrapped before the new key file and
 * vault-key.next.json are on disk (fsynced, directories too); vault-key.json is replaced only
 * after both databases committed, and only once the record of the key it replaces is on disk
 * (rotation-record.ts), so that a death after the rename leaves a rotation known to be committed
 * and a clean-up that {@link finishCommitted} can still run.
 */
async function rotate(
  t: RotationTarget,
  next: PrepareMasterKeyOptions,
  hooks: RotationHooks,
): Promise<{ next: MasterKey; counts: { keyring: number; conversationKeys: number } }> {
  const pendingPath = join(t.dir, VAULT_KEY_NEXT_FILE);
  rmSync(tempPathOf(pendingPath), { force: true }); // a killed write's leftover; never read
  rmSync(tempPathOf(join(t.dir, VAULT_KEY_PREV_FILE)), { force: true }); // the same
  const resumed = existsSync(pendingPath);
  const { nextMk, plan, keyringDone } = resumed ? await resumeRotation(t, next) : await startRotation(t, next);
  const hook = hooks.inKeyringTransaction;
  const within = hook && !keyringDone ? () => hook(plan) : undefined;
  const ring = await t.keyring.rewrapAll(nextMk, within);
  await t.db.checkpointTruncate(); // old wrappings must not linger in the WAL either
  const cks = await t.keys.rewrapAll(nextMk);
  keepReplacedKey(t.dir);
  renameDurable(pendingPath, join(t.dir, VAULT_KEY_FILE)); // the commit
  return { next: nextMk, counts: { keyring: ring, conversationKeys: cks } };
}

/**
 * After the commit: the caller's clean-up with the replaced key's description, then the record
 * removed (last, so that a death in the clean-up leaves it to be run again).
 * @returns false when there was no record.
 */
async function finishCommitted(dir: string, afterCommit: RotationHooks['afterCommit']): Promise<boolean> {
  const replaced = readReplacedKey(dir);
  if (replaced === undefined) return false;
  await afterCommit?.(replaced);
  dropReplacedKey(dir);
  return true;
}

interface Started {
  nextMk: MasterKey;
  plan: RotationPlan;
  /** A resumed rotation whose keyring transaction (with its audit entry) had committed. */
  keyringDone: boolean;
}

/** A new rotation: check every key opens, then the new key durably in place. */
async function startRotation(t: RotationTarget, next: PrepareMasterKeyOptions): Promise<Started> {
  const [ring, cks] = await censusOf(t, undefined);
  const prepared = await prepareMasterKey(next).catch((err: unknown) => {
    if (err instanceof MasterKeyExistsError && next.keyFilePath !== undefined) throw keyFileExists(next.keyFilePath, err);
    throw err;
  });
  writeVaultKeyJson(join(t.dir, VAULT_KEY_NEXT_FILE), prepared.config);
  if (next.keyFilePath !== undefined) publishKeyFile(next.keyFilePath);
  return { nextMk: prepared.masterKey, plan: { resumed: false, keyring: ring.current, conversationKeys: cks.current }, keyringDone: false };
}

/** An interrupted rotation: the same new secret, every key under the current or the new key. */
async function resumeRotation(t: RotationTarget, next: PrepareMasterKeyOptions): Promise<Started> {
  const cfg = readVaultKeyJson(t.dir, VAULT_KEY_NEXT_FILE);
  const path = next.keyFilePath;
  // Cut after vault-key.next.json but before the key file was linked: it is still at PATH.tmp.
  const linkPending = path !== undefined && !existsSync(path) && existsSync(tempPathOf(path));
  const nextMk = await unlockWithConfig(cfg, linkPending ? { keyFilePath: tempPathOf(path) } : next);
  const [ring, cks] = await censusOf(t, nextMk);
  if (path !== undefined) publishKeyFile(path);
  const keyringDone = ring.current === 0 && ring.next > 0;
  return { nextMk, plan: { resumed: true, keyring: ring.current, conversationKeys: cks.current }, keyringDone };
}

/**
 * The read-only pass before a rotation changes anything: every keyring row and conversation key
 * must open under the current master key (or, resuming, the new one). One that does not would
 * stop the rotation half-way — after the keyring was committed under the new key — leaving a
 * vault neither key opens.
 * @throws RotationKeyUnreadableError naming the rows (ids only).
 */
async function censusOf(t: RotationTarget, nextMk: MasterKey | undefined): Promise<[KeyCensus, KeyCensus]> {
  const ring = await t.keyring.census(nextMk);
  const cks = await t.keys.census(nextMk);
  const bad = [...ring.unreadable.map((n) => `keyring row ${n} (vault.db)`), ...cks.unreadable.map((c) => `conversation key ${c} (keys.db)`)];
  if (bad.length > 0) {
    const shown = bad.slice(0, 10).join(', ') + (bad.length > 10 ? `, and ${bad.length - 10} more` : '');
    const under = nextMk ? 'the current or the new master key' : 'the current master key';
    throw new RotationKeyUnreadableError(
      `master-key rotation refused, nothing was changed by it: every keyring row and conversation key must open under ${under}, ` +
        `but ${bad.length} ${bad.length === 1 ? 'does' : 'do'} not: ${shown}. A damaged key cannot be re-wrapped; \`sigil-server check\` lists them`,
    );
  }
  return [ring, cks];
}

/** A fresh rotation's new key file exists: say why that is refused and what to do. */
function keyFileExists(path: string, cause: unknown): MasterKeyExistsError {
  return new MasterKeyExistsError(
    `the new key file ${path} exists and no rotation is pending (no ${VAULT_KEY_NEXT_FILE}); a new master key is never written over a file ` +
      `(it may be an earlier master key that older backups still need, or the leftover of a rotation interrupted before it began, which nothing uses). ` +
      `Nothing was changed: choose another path for --new-master-key-file`,
    { cause },
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
