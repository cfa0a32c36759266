/**
 * The vault facade: the data directory with `vault.db` (ciphertexts, keyring, audit log),
 * `keys.db` (destroyable keys) and `vault-key.json` (how to re-derive the master key).
 * The directory is kept at mode 0700 and every file in it at 0600.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Db } from './db.js';
import { Keyring } from './keyring.js';
import { Keystore, type KeystoreOptions } from './keystore.js';
import {
  VAULT_KEY_FILE,
  createMasterKey,
  prepareMasterKey,
  readVaultKeyJson,
  unlockMasterKey,
  unlockWithConfig,
  writeVaultKeyJson,
  type CreateMasterKeyOptions,
  type MasterKey,
  type MasterKeySecret,
  type PrepareMasterKeyOptions,
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
/** Where a master-key rotation keeps the new `vault-key.json` until every key is re-wrapped. */
export const VAULT_KEY_NEXT_FILE = 'vault-key.next.json';

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
   * Rotates the master key to a new passphrase or key file: writes `vault-key.next.json`,
   * re-wraps every keyring row and every conversation key (DEKs are under CKs and stay), then
   * renames it over `vault-key.json`. Resumable: if a previous rotation was interrupted, pass the
   * same new secret (for a key file, the key file that rotation wrote) and it completes.
   * @returns how many keyring rows and conversation keys were re-wrapped now.
   */
  rotateMasterKey(next: PrepareMasterKeyOptions): Promise<{ keyring: number; conversationKeys: number }>;
  /** `wal_checkpoint(TRUNCATE)` on both databases (end of every deletion). */
  checkpointAll(): Promise<void>;
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
}

function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
}

/** Opens both databases of an initialised data directory with an unlocked master key. */
export async function openVault(opts: OpenVaultOptions): Promise<Vault> {
  ensurePrivateDir(opts.dir);
  // A reader connection: request lookups must not queue behind message-writing transactions.
  const db = await Db.open(join(opts.dir, VAULT_DB_FILE), { reader: true, pageSize: VAULT_PAGE_SIZE });
  let keys: Keystore | undefined;
  try {
    keys = await Keystore.open(join(opts.dir, KEYS_DB_FILE), opts.masterKey, { now: opts.now, ...opts.keystore });
    const keyring = await Keyring.open(db, opts.masterKey, { now: opts.now });
    const k = keys;
    let mk = opts.masterKey;
    const pendingPath = join(opts.dir, VAULT_KEY_NEXT_FILE);
    return {
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
      async rotateMasterKey(next: PrepareMasterKeyOptions) {
        let nextMk: MasterKey;
        if (existsSync(pendingPath)) {
          nextMk = await unlockWithConfig(readVaultKeyJson(opts.dir, VAULT_KEY_NEXT_FILE), next);
        } else {
          const prepared = await prepareMasterKey(next);
          writeVaultKeyJson(pendingPath, prepared.config);
          nextMk = prepared.masterKey;
        }
        const ring = await keyring.rewrapAll(nextMk);
        await db.checkpointTruncate(); // old wrappings must not linger in the WAL either
        const cks = await k.rewrapAll(nextMk);
        renameSync(pendingPath, join(opts.dir, VAULT_KEY_FILE));
        mk = nextMk;
        return { keyring: ring, conversationKeys: cks };
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
    throw err;
  }
}

/** Options of {@link initVault}: the data directory, the unlock secret, and the master-key options. */
export type InitVaultOptions = CreateMasterKeyOptions & { keystore?: KeystoreOptions };

/**
 * Initialises a new vault in `dir` (created 0700): writes `vault-key.json`, creates both
 * databases, and returns it open.
 * @throws MasterKeyExistsError if `dir` already holds a vault.
 */
export async function initVault(opts: InitVaultOptions): Promise<Vault> {
  ensurePrivateDir(opts.dir);
  const masterKey = await createMasterKey(opts);
  return openVault({ dir: opts.dir, masterKey, keystore: opts.keystore, now: opts.now });
}

/** Unlocks the master key (passphrase or key file) and opens the vault. */
export async function unlockVault(
  opts: MasterKeySecret & { dir: string; keystore?: KeystoreOptions; now?: () => Date },
): Promise<Vault> {
  const masterKey = await unlockMasterKey(opts);
  return openVault({ dir: opts.dir, masterKey, keystore: opts.keystore, now: opts.now });
}
