/**
 * `sigil-server rotate-master-key`, with the server stopped: re-wraps every keyring row
 * (vault.db) and every conversation key (keys.db) under a new master key, each database in one
 * transaction followed by `wal_checkpoint(TRUNCATE)` (with secure_delete the old wrappings are
 * zeroed), then replaces vault-key.json. DEKs sit under CKs and do not change.
 *
 * Resumable: the vault writes `vault-key.next.json` first; an interrupted rotation is finished
 * by running the command again with the same old and new secrets (for a key file: the file the
 * first attempt wrote).
 *
 * Afterwards the old secret is checked to be refused (MASTER_KEY_WRONG). Backups made before the
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
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PATHS, type MasterKeySource } from '../appliance.js';
import { AuditLog } from '../audit/index.js';
import { ApplianceMissingError } from '../errors.js';
import { MasterKeyArgumentError, MasterKeyWrongError, unlockVault, VAULT_KEY_NEXT_FILE, type Argon2Params, type RotationHooks } from '../vault/index.js';
import { RotateArgumentError } from './errors.js';
import { unlockCurrent } from './master-source.js';
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
  /** True when this run finished an earlier, interrupted rotation. */
  resumed: boolean;
  /** The old secret was tried after the rotation and refused. */
  oldSecretRefused: true;
  oldKeyFileShredded: boolean;
}

/**
 * Rotates the master key.
 * @throws DataInUseError, ServerRunningError, ApplianceMissingError, the abort reason of `opts.signal`, RotateArgumentError (same secret again,
 *   shred without a key file), vault errors (MASTER_KEY_WRONG for the current secret,
 *   MASTER_KEY_EXISTS for an existing new key file outside a resumed rotation, …).
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
  const vault = await unlockVault({ dir: vaultDir, ...current, ...(opts.now ? { now: opts.now } : {}) } as Parameters<typeof unlockVault>[0]);
  const kind = next.passphrase !== undefined ? 'passphrase' : 'keyfile';
  let counts: { keyring: number; conversationKeys: number };
  try {
    const hooks = auditHooks(await AuditLog.open(vault.db, opts.now ? { now: opts.now } : {}), kind);
    opts.signal?.throwIfAborted(); // once the re-wrapping starts, it finishes
    counts = await vault.rotateMasterKey(
      { ...next, ...(opts.argon2 ? { argon2: opts.argon2 } : {}), ...(opts.now ? { now: opts.now } : {}) } as Parameters<typeof vault.rotateMasterKey>[0],
      hooks,
    );
  } finally {
    await vault.close();
  }
  // Prove it: the old secret must now be refused by vault-key.json.
  const refused = await unlockCurrent(dataDir, current).then(
    () => false,
    // Wrong key, or (passphrase <-> key file) a secret of a kind the vault no longer takes.
    (err: unknown) => err instanceof MasterKeyWrongError || err instanceof MasterKeyArgumentError,
  );
  if (!refused) throw new Error('internal: the old master key still unlocks the vault after rotation');
  let shredded = false;
  if (opts.shredOldKeyFile && current.keyFilePath !== undefined) {
    await secureRemove(current.keyFilePath);
    shredded = true;
  }
  return {
    kind,
    ...(next.keyFilePath !== undefined ? { keyFile: resolve(next.keyFilePath) } : {}),
    ...counts,
    resumed,
    oldSecretRefused: true,
    oldKeyFileShredded: shredded,
  };
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
