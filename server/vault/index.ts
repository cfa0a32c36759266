/**
 * Public API of the vault: the SQLite wrapper, the master key, AEAD, the keyring, the key store
 * of destroyable keys and the vault facade. Other folders import only from here.
 */
export { Db } from './db.js';
export type { DbOpenOptions, DbTx, MigrationHook, Queryable, RunResult, SqlParams, Stmt } from './db.js';
export * from './errors.js';
export type { CryptoKey, KeyUsage } from './crypto-types.js';
export { seal, open, generateDataKey, importDataKey, randomBytes, SEAL_OVERHEAD, SEAL_VERSION } from './aead.js';
export type { RandomBytes } from './aead.js';
export {
  MasterKey,
  createMasterKey,
  prepareMasterKey,
  publishKeyFile,
  unlockMasterKey,
  unlockWithConfig,
  opensWith,
  readVaultKeyJson,
  writeVaultKeyJson,
  ARGON2_MIN,
  MIN_PASSPHRASE_LENGTH,
  VAULT_KEY_FILE,
} from './master-key.js';
export type {
  Argon2Params,
  CreateMasterKeyOptions,
  MasterKeySecret,
  PrepareMasterKeyOptions,
  UnlockMasterKeyOptions,
  VaultKeyJson,
} from './master-key.js';
export { Keyring } from './keyring.js';
export { Lru } from './lru.js';
export { chunks, marks } from './sql-lists.js';
export type { KeyringOptions } from './keyring.js';
export { Keystore, ckAad, dekAad } from './keystore.js';
export type { DestroyedKeys, KeyDestruction, KeyPlace, KeystoreOptions } from './keystore.js';
export { openVault, initVault, unlockVault, VAULT_DB_FILE, KEYS_DB_FILE, VAULT_KEY_NEXT_FILE, VAULT_KEY_PREV_FILE, VAULT_PAGE_SIZE, WRITER_CACHE_KIB, WAL_AUTOCHECKPOINT_PAGES } from './vault.js';
export type { Vault, OpenVaultOptions, InitVaultOptions, RotationHooks, RotationPlan, VaultReserveOptions } from './vault.js';
export { DiskReserve, DISK_RESERVE_FILE, DEFAULT_RESERVE_MARGIN_BYTES, OPEN_ROOM_BYTES, releaseReserveToOpen, reserveIsWhole, type ReserveState } from './disk-reserve.js';
export { RowCache } from './row-cache.js';
export { createFileDurable, linkDurable, renameDurable, replaceFilesAfter, writeSynced, type FileReplacement } from './durable-file.js';
