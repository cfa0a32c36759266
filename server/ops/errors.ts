/**
 * Failure modes of the operations commands (backup, restore, check, status, rotate-master-key,
 * repack).
 * One class per mode with a stable `code`; the cause is kept for the log. Messages name paths and
 * counts, never key material, passphrases or row contents.
 */

/** Base class of every ops error. */
export abstract class OpsError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server is running on this data directory (its run file names a live process). */
export class ServerRunningError extends OpsError {
  readonly code = 'OPS_SERVER_RUNNING';
}

/**
 * Another command holds the data directory (its ops claim, `sigil-server.ops.json`, names a live
 * process): a restore, repack, rotation or backup is running, or a server is starting.
 */
export class DataInUseError extends OpsError {
  readonly code = 'OPS_DATA_IN_USE';
}

/**
 * The command was stopped by a signal (SIGINT, SIGTERM, SIGHUP) and cleaned up after itself: its
 * working copy was removed, the live files were left as they were. Exit 128 + the signal's number.
 */
export class InterruptedError extends OpsError {
  readonly code = 'OPS_INTERRUPTED';
  /** 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP. */
  readonly exitCode: number;
  constructor(readonly signal: string, exitCode: number, message: string) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** A file the command needs in the data directory is missing (vault.db, keys.db, vault-key.json). */
export class DataMissingError extends OpsError {
  readonly code = 'OPS_DATA_MISSING';
}

/** `backup --out FILE`: FILE exists; a backup never overwrites anything. */
export class BackupExistsError extends OpsError {
  readonly code = 'BACKUP_EXISTS';
}

/** The file is not a Sigil backup: bad magic, unknown version, or a header that fails its schema. */
export class BackupFormatError extends OpsError {
  readonly code = 'BACKUP_FORMAT_INVALID';
}

/** A chunk failed authentication, is out of order, or the stream ends before its last chunk. */
export class BackupCorruptError extends OpsError {
  readonly code = 'BACKUP_CORRUPT';
}

/** No master key given opens the backup's key (a backup taken before a rotation needs the old key). */
export class BackupKeyError extends OpsError {
  readonly code = 'BACKUP_KEY_WRONG';
}

/**
 * The backup is of another appliance: its root CA certificate is not this data directory's
 * `ca/root.pem`. Restoring it would put that appliance's keyring under this one's certificates and
 * destroy every live message key as "made after the backup".
 */
export class BackupForeignError extends OpsError {
  readonly code = 'BACKUP_FOREIGN';
}

/** The decrypted database is not a healthy Sigil vault (integrity check or tables missing). */
export class BackupContentError extends OpsError {
  readonly code = 'BACKUP_CONTENT_INVALID';
}

/** `restore` without `--yes`: it replaces vault.db. */
export class RestoreNotConfirmedError extends OpsError {
  readonly code = 'RESTORE_NOT_CONFIRMED';
}

/** `restore --without-keys` while a keys.db exists: the live destroyable keys are never replaced. */
export class RestoreArgumentError extends OpsError {
  readonly code = 'RESTORE_ARGUMENT';
}

/** `rotate-master-key` needs exactly one new secret (SIGIL_NEW_MASTER_PASSPHRASE or --new-master-key-file). */
export class RotateArgumentError extends OpsError {
  readonly code = 'ROTATE_ARGUMENT';
}

/** `check` found at least one failing item (the report says which). */
export class CheckFailedError extends OpsError {
  readonly code = 'CHECK_FAILED';
}

/** `repack`: the rewritten copy of vault.db failed its checks; the live file was not touched. */
export class RepackFailedError extends OpsError {
  readonly code = 'REPACK_FAILED';
}

/** Codes that mean "the operator asked for something invalid": exit 2 (main.ts USAGE_CODES). */
export const OPS_USAGE_CODES: readonly string[] = ['BACKUP_EXISTS', 'RESTORE_NOT_CONFIRMED', 'RESTORE_ARGUMENT', 'ROTATE_ARGUMENT'];
