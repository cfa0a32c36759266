/**
 * `sigil-server rotate-master-key`, with the server stopped: re-wraps every keyring row
 * (vault.db) and every conversation key (keys.db) under a new master key, each database in one
 * transaction followed by `wal_checkpoint(TRUNCATE)` (with secure_delete the old wrappings are
 * zeroed), then replaces vault-key.json. DEKs sit under CKs and do not change.
 *
 * Resumable: the vault writes `vault-key.next.json` first; an interrupted rotation is finished
 * by running the command again with the same old and new secrets (for a key file: the file the
 * first attempt wrote). That holds after the commit too — a run killed after the final rename,
 * when the old secret is already refused: the current secret is then refused, the new one opens
 * the vault, and the vault's record of the replaced key (`vault-key.prev.json`) says the clean-up
 * below did not finish; this run does it (`alreadyCommitted: true`) — but only once the current
 * secret is proven to be the key that record describes (see {@link provenReplaced}). "Current
 * refused, new opens" alone proves nothing: two secrets given the wrong way round look exactly
 * the same, and so does a rotation that had finished. Those are refused with the current
 * secret's refusal and a hint, nothing changed.
 *
 * After the commit the old secret is checked to be refused (MASTER_KEY_WRONG), then the old key
 * file shredded (--shred-old-key-file) — only if it opens the replaced description, so that a
 * file named by mistake (another, older key) is never destroyed. Backups made before the
 * rotation stay under the old master key: keep the old secret as long as you keep those backups
 * (restore asks for it with --backup-master-key-file / SIGIL_BACKUP_MASTER_PASSPHRASE).
 *
 * The rotation holds the data directory's claim for its whole run (data-claim.ts). A signal before
 * the re-wrapping starts stops it with nothing changed; once started it finishes (and if killed
 * outright, the same command resumes it).
 *
 * Refused with nothing changed (ROTATION_KEY_UNREADABLE) when a keyring row or conversation key
 * does not open: the vault checks every one before it writes anything.
 *
 * Audit: `vault.master-key-rotated` (the new secret's kind, whether this run resumed, how many
 * keyring rows and conversation keys it re-wraps; never a secret) is appended in the vault.db
 * transaction that re-wraps the keyring, so it commits exactly when the keyring changes. A resume
 * whose keyring step had committed appends nothing: that attempt's entry stands. A resume that
 * re-wraps the keyring appends the one entry, with `resumed: true`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PATHS, type MasterKeySource } from '../appliance.js';
import { AuditLog } from '../audit/index.js';
import { ApplianceMissingError } from '../errors.js';
import {
  MasterKeyArgumentError,
  MasterKeyFileError,
  MasterKeyWrongError,
  opensWith,
  readVaultKeyJson,
  unlockVault,
  unlockWithConfig,
  VaultError,
  VAULT_KEY_NEXT_FILE,
  type Argon2Params,
  type MasterKeySecret,
  type RotationHooks,
  type Vault,
  type VaultKeyJson,
} from '../vault/index.js';
import { RotateArgumentError } from './errors.js';
import { claimDataDir } from './data-claim.js';
import { secureRemove } from './secure-remove.js';
import type { SweepResult } from './working-copies.js';

/** Options of {@link rotateMasterKey}. */
export interface RotateOptions {
  dataDir: string;
  /** The current secret. */
  current: MasterKeySource;
  /** The new secret: a passphrase, or a key file path (written if absent; an existing one only resumes a rotation). */
  next: MasterKeySource;
  /** After success, overwrite and unlink the old key file (only when `current` is a key file). */
  shredOldKeyFile?: boolean;
  /** argon2id parameters for a new passphrase; default the vault's floor. */
  argon2?: Partial<Argon2Params>;
  now?: () => Date;
  /** Aborted (by the command's signal handler): stops before the re-wrapping starts, throwing its reason. */
  signal?: AbortSignal;
  /** Hears what the claim's sweep of leftover working copies did, when anything. */
  onSweep?: (r: SweepResult) => void;
}

/** What {@link rotateMasterKey} answers. */
export interface RotateResult {
  kind: 'passphrase' | 'keyfile';
  keyFile?: string;
  /** Keyring rows and conversation keys re-wrapped now (fewer when resuming). */
  keyring: number;
  conversationKeys: number;
  /**
   * True when this run finished an earlier, interrupted rotation: a pending one (re-wrapped what
   * was left), or a committed one whose clean-up had not run (did only that).
   */
  resumed: boolean;
  /**
   * True when vault-key.json already named the new key as this run began: an earlier run had
   * committed the rotation (its record, vault-key.prev.json, describes the current secret) and was
   * stopped before its clean-up, which this run did (the old-secret check, the shred); nothing
   * was re-wrapped now. Always with `resumed`.
   */
  alreadyCommitted: boolean;
  /**
   * An earlier rotation had committed and never finished its clean-up (its record,
   * vault-key.prev.json, was waiting), and this new rotation replaced that record: the key the
   * earlier one replaced was never proven refused nor shredded. The operator destroys it.
   */
  earlierCleanupDropped: boolean;
  /** The old secret was tried after the rotation and refused. */
  oldSecretRefused: true;
  /**
   * The old key file was overwritten and deleted (--shred-old-key-file) by this run — or, finishing
   * a committed rotation whose record is there, found already gone: the interrupted run's shred
   * had got that far. Never for a file merely missing otherwise.
   */
  oldKeyFileShredded: boolean;
}

/**
 * Rotates the master key.
 * @throws DataInUseError, ServerRunningError, ApplianceMissingError, the abort reason of `opts.signal`, RotateArgumentError (same secret again,
 *   shred without a key file), vault errors (MASTER_KEY_WRONG / MASTER_KEY_FILE_INVALID / MASTER_KEY_ARGUMENT
 *   for a current secret the vault refuses — with a hint when the new secret opens it but no committed
 *   rotation of the current one is waiting for its clean-up —, MASTER_KEY_EXISTS for an existing new key
 *   file outside a resumed rotation, …).
 */
export async function rotateMasterKey(opts: RotateOptions): Promise<RotateResult> {
  const dataDir = resolve(opts.dataDir);
  if (!existsSync(join(dataDir, PATHS.meta))) throw new ApplianceMissingError(dataDir);
  const { current, next } = opts;
  if (current.passphrase !== undefined && current.passphrase === next.passphrase) {
    throw new RotateArgumentError('the new passphrase is the current one; choose another');
  }
  if (current.keyFilePath !== undefined && next.keyFilePath !== undefined && resolve(current.keyFilePath) === resolve(next.keyFilePath)) {
    throw new RotateArgumentError('--new-master-key-file names the current key file; choose a new path');
  }
  if (opts.shredOldKeyFile && current.keyFilePath === undefined) {
    throw new RotateArgumentError('--shred-old-key-file needs the current master key to be a key file');
  }
  const claim = await claimDataDir(dataDir, 'rotate-master-key', opts.onSweep ? { onSweep: opts.onSweep } : {});
  try {
    return await rotateClaimed(opts, dataDir);
  } finally {
    claim.release();
  }
}

async function rotateClaimed(opts: RotateOptions, dataDir: string): Promise<RotateResult> {
  const { current, next } = opts;
  opts.signal?.throwIfAborted();
  const vaultDir = join(dataDir, PATHS.vault);
  const resumed = existsSync(join(vaultDir, VAULT_KEY_NEXT_FILE));
  const { vault, refused } = await openForRotation(vaultDir, opts, resumed);
  const committed = refused !== undefined;
  const kind = next.passphrase !== undefined ? 'passphrase' : 'keyfile';
  let counts = { keyring: 0, conversationKeys: 0 };
  let shredded = false;
  // A new rotation of a vault whose previous one never finished its clean-up replaces that
  // rotation's record at its commit: said in the result (and the log), never silently.
  const earlierCleanupDropped = !committed && !resumed && vault.rotationCleanupPending;
  // What is left once vault-key.json names the new key; the vault runs it before it drops its
  // record of the replaced key, so a death (or a refusal) in here leaves it to the next run.
  const afterCommit = async (replaced: VaultKeyJson): Promise<void> => {
    await requireOldRefused(vaultDir, current);
    if (opts.shredOldKeyFile && current.keyFilePath !== undefined) {
      const removed = await shredReplacedKeyFile(current.keyFilePath, replaced);
      // Gone already: the killed run's shred unlinked it (provenReplaced allowed that only here).
      shredded = removed || committed;
    }
  };
  try {
    opts.signal?.throwIfAborted(); // once the re-wrapping (or the clean-up) starts, it finishes
    if (refused !== undefined) {
      // Finishing an earlier run's commit: only for the secret that run replaced. The proof comes
      // first, so a refusal changes nothing, the record included. No record at all: no committed
      // rotation is waiting for its clean-up, whatever the new secret opens.
      const finished = await vault.finishRotation(async (replaced) => {
        if (!(await provenReplaced(replaced, opts))) throw notThisRotation(refused, true);
        await afterCommit(replaced);
      });
      if (!finished) throw notThisRotation(refused, false);
    } else {
      const hooks: RotationHooks = { ...auditHooks(await AuditLog.open(vault.db, opts.now ? { now: opts.now } : {}), kind), afterCommit };
      counts = await vault.rotateMasterKey(
        { ...next, ...(opts.argon2 ? { argon2: opts.argon2 } : {}), ...(opts.now ? { now: opts.now } : {}) } as Parameters<typeof vault.rotateMasterKey>[0],
        hooks,
      );
    }
  } finally {
    await vault.close();
  }
  return {
    kind,
    ...(next.keyFilePath !== undefined ? { keyFile: resolve(next.keyFilePath) } : {}),
    ...counts,
    resumed: resumed || committed,
    alreadyCommitted: committed,
    earlierCleanupDropped,
    oldSecretRefused: true,
    oldKeyFileShredded: shredded,
  };
}

/**
 * The vault, unlocked with the current secret — or, when that is refused and no rotation is
 * pending, with the new one, together with the current secret's refusal (`refused`): perhaps an
 * earlier run of this very rotation committed it and was killed before its clean-up. Whether it
 * was is decided on the vault's record of the replaced key ({@link provenReplaced}, in the
 * clean-up); a new secret that does not open the vault keeps the current secret's refusal.
 */
async function openForRotation(vaultDir: string, opts: RotateOptions, resumed: boolean): Promise<{ vault: Vault; refused?: Error }> {
  const unlock = (secret: MasterKeySource): Promise<Vault> =>
    unlockVault({ dir: vaultDir, ...secret, ...(opts.now ? { now: opts.now } : {}) } as Parameters<typeof unlockVault>[0]);
  try {
    return { vault: await unlock(opts.current) };
  } catch (err) {
    if (resumed || !isRefusal(err)) throw err;
    const vault = await unlock(opts.next).catch(() => {
      throw err;
    });
    return { vault, refused: err as Error };
  }
}

/**
 * Is the current secret the key a committed rotation replaced? It opens `replaced` (the record,
 * vault-key.prev.json) — or, the one exception, the rotation replaced a key file, this run was told
 * to shred it, and the file holds no key any more: the killed run's shred got that far (unlinked,
 * or zeroed and not yet unlinked), and finishing it destroys nothing.
 */
async function provenReplaced(replaced: VaultKeyJson, opts: RotateOptions): Promise<boolean> {
  if (await opensWith(replaced, opts.current as MasterKeySecret)) return true;
  const path = opts.current.keyFilePath;
  return opts.shredOldKeyFile === true && replaced.kind === 'keyfile' && path !== undefined && holdsNoKey(path);
}

/** The file is gone, or every byte of it is zero (a shred cut between its overwrite and its unlink). */
function holdsNoKey(path: string): boolean {
  try {
    return readFileSync(path).every((b) => b === 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/**
 * The current secret's refusal, when the new secret opens the vault but no committed rotation of
 * the current one waits for its clean-up: the rotation had finished (a run killed after its last
 * step, or one from a sigil-server before the record), or the secrets are swapped or mistaken.
 * None can be told apart from another, so none is taken for success; the same error (code and
 * exit code) with a hint.
 */
function notThisRotation(refused: Error, recordKept: boolean): Error {
  const hint = recordKept
    ? 'the new secret already opens this vault, but the current one is not the master key its rotation replaced ' +
      '(vault-key.prev.json): give the key that rotation started from to finish its clean-up, or start with the new key; nothing was changed'
    : 'the new secret already opens this vault: the rotation has finished, or the two secrets are swapped; nothing was changed';
  if (!(refused instanceof VaultError)) return refused;
  const Refusal = refused.constructor as new (message: string, options?: { cause?: unknown }) => VaultError;
  return new Refusal(`${refused.message}; ${hint}`, { cause: refused });
}

/**
 * A secret the vault does not take: wrong, of the other kind (passphrase / key file), or a key
 * file that no longer holds a key (shredded, or cut while being shredded).
 */
function isRefusal(err: unknown): boolean {
  return err instanceof MasterKeyWrongError || err instanceof MasterKeyArgumentError || err instanceof MasterKeyFileError;
}

/**
 * Proves the commit: vault-key.json must now refuse the old secret. Checked against vault-key.json
 * alone — not through unlockMasterKey, whose refusal would derive the secret once more against
 * vault-key.prev.json (which it opens) only to word a message this throws away.
 */
async function requireOldRefused(vaultDir: string, current: MasterKeySource): Promise<void> {
  const refused = await Promise.resolve()
    .then(() => unlockWithConfig(readVaultKeyJson(vaultDir), current as MasterKeySecret))
    .then(
      () => false,
      (err: unknown) => isRefusal(err),
    );
  if (!refused) throw new Error('internal: the old master key still unlocks the vault after rotation');
}

/**
 * `--shred-old-key-file`: overwrites and unlinks `path`, but only if it is the key the rotation
 * replaced — it opens `replaced`, the vault's record of that key — or holds no key any more (all
 * zero bytes: a shred killed before its unlink). A key file named by mistake may be an earlier
 * master key that older backups still need: it is never destroyed on a guess. (The callers have
 * proven the file already — it opened vault-key.json before the commit, or the record since — so
 * this is the last line, not the first.)
 * @returns false when the file was already gone (nothing removed now).
 * @throws RotateArgumentError naming the file, which is left as it was.
 */
async function shredReplacedKeyFile(path: string, replaced: VaultKeyJson): Promise<boolean> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  if (!bytes.every((b) => b === 0) && !(await opensWith(replaced, { keyFilePath: path }))) {
    throw new RotateArgumentError(
      `--shred-old-key-file: ${path} was not shredded: it is not the master key this rotation replaced; name the key file ` +
        'the rotation started from. The vault is under the new master key',
    );
  }
  await secureRemove(path);
  return true;
}

/** The rotation's audit entry, appended inside the vault's keyring transaction (see the module comment). */
function auditHooks(audit: AuditLog, kind: RotateResult['kind']): RotationHooks {
  return {
    async inKeyringTransaction(plan) {
      await audit.append([
        {
          type: 'vault.master-key-rotated',
          actor: 'system',
          data: { kind, resumed: plan.resumed, keyringRows: plan.keyring, conversationKeys: plan.conversationKeys },
        },
      ]);
    },
  };
}
