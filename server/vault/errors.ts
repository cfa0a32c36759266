/**
 * Vault failure modes. One class per mode, each with a stable string `code` that
 * `server/errors.ts` maps to an HTTP status and the CLI maps to an exit code. Domain
 * errors only: nothing here knows about HTTP. The underlying sqlite3 / WebCrypto error is
 * kept as `cause` for the log; messages never contain key material or row contents.
 */

/** Base class of every vault error; `code` is the stable identifier callers switch on. */
export abstract class VaultError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The disk (or the database's page limit) is full: SQLITE_FULL. Nothing was written. */
export class VaultFullError extends VaultError {
  readonly code = 'VAULT_FULL';
}

/** An operating-system I/O error below SQLite: SQLITE_IOERR and its extended codes. */
export class VaultIoError extends VaultError {
  readonly code = 'VAULT_IO';
}

/** The file is not a SQLite database or its pages are damaged: SQLITE_CORRUPT / SQLITE_NOTADB. */
export class VaultCorruptError extends VaultError {
  readonly code = 'VAULT_CORRUPT';
}

/** Another connection held the lock longer than the busy timeout: SQLITE_BUSY / SQLITE_LOCKED. */
export class VaultLockedError extends VaultError {
  readonly code = 'VAULT_LOCKED';
}

/** A UNIQUE, FOREIGN KEY, CHECK or NOT NULL constraint refused the write: SQLITE_CONSTRAINT. */
export class VaultConstraintError extends VaultError {
  readonly code = 'VAULT_CONSTRAINT';
}

/** The database file could not be opened (missing directory, a directory in its place): SQLITE_CANTOPEN. */
export class VaultOpenError extends VaultError {
  readonly code = 'VAULT_OPEN';
}

/** A write was attempted on a connection opened read-only: SQLITE_READONLY. */
export class VaultReadonlyError extends VaultError {
  readonly code = 'VAULT_READONLY';
}

/** Any other SQLite error (syntax error, misuse): a programming error, not an operational one. */
export class VaultSqlError extends VaultError {
  readonly code = 'VAULT_SQL';
}

/** The Db (or a prepared statement, or a finished transaction handle) was used after it closed. */
export class VaultClosedError extends VaultError {
  readonly code = 'VAULT_CLOSED';
}

/** A security pragma (secure_delete, journal_mode, foreign_keys) did not read back as set. */
export class VaultPragmaError extends VaultError {
  readonly code = 'VAULT_PRAGMA';
}

/** `wal_checkpoint(TRUNCATE)` could not complete (a reader pinned the WAL): deleted pages may linger. */
export class VaultCheckpointError extends VaultError {
  readonly code = 'VAULT_CHECKPOINT_INCOMPLETE';
}

/** The online backup did not complete. */
export class VaultBackupError extends VaultError {
  readonly code = 'VAULT_BACKUP_FAILED';
}

/** AES-GCM authentication failed or the sealed blob is malformed: tampering, wrong key or wrong AAD. */
export class VaultDecryptError extends VaultError {
  readonly code = 'VAULT_DECRYPT_FAILED';
}

/** A key that was asked for does not exist: never created, or destroyed (indistinguishable by design). */
export class KeyNotFoundError extends VaultError {
  readonly code = 'VAULT_KEY_NOT_FOUND';
}

/** A key with that id already exists; keys are never silently replaced. */
export class KeyExistsError extends VaultError {
  readonly code = 'VAULT_KEY_EXISTS';
}

/** The passphrase or key file does not match the vault's key-check value. */
export class MasterKeyWrongError extends VaultError {
  readonly code = 'MASTER_KEY_WRONG';
}

/** `createMasterKey` found a `vault-key.json` already: refusing to overwrite the only way in. */
export class MasterKeyExistsError extends VaultError {
  readonly code = 'MASTER_KEY_EXISTS';
}

/** `unlockMasterKey` found no `vault-key.json` in the data directory. */
export class MasterKeyMissingError extends VaultError {
  readonly code = 'MASTER_KEY_MISSING';
}

/** `vault-key.json` is not valid (bad JSON, unknown version, parameters below the floor). */
export class MasterKeyConfigError extends VaultError {
  readonly code = 'MASTER_KEY_CONFIG_INVALID';
}

/** The key file is unreadable, not 32 bytes of base64, or readable by group/others. */
export class MasterKeyFileError extends VaultError {
  readonly code = 'MASTER_KEY_FILE_INVALID';
}

/** Neither or both of `passphrase` and `keyFilePath` were given, or the passphrase is too short. */
export class MasterKeyArgumentError extends VaultError {
  readonly code = 'MASTER_KEY_ARGUMENT';
}

/**
 * A master-key rotation was refused before it changed anything: a keyring row or conversation
 * key opens under no master key it could be under (damaged, or sealed under another key).
 */
export class RotationKeyUnreadableError extends VaultError {
  readonly code = 'ROTATION_KEY_UNREADABLE';
}
