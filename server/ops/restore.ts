/**
 * `sigil-server restore`: puts a backup's vault.db back, with the server stopped.
 *
 * 1. Reads the header; unwraps the backup key with the current master key, or — for a backup
 *    made before a rotation — with the master key it was made under (its `vault-key.json` is in
 *    the header, the secret comes from the operator).
 * 2. Decrypts every frame into a working file in the data directory, checking each frame's tag,
 *    index and end marker, then `PRAGMA integrity_check` and the vault's tables.
 * 3. Re-seals the restored keyring under the current master key if the backup was under another.
 * 4. Sweeps (restore-sweep.ts), in the working copy, what the live keys.db can no longer open: messages, files and
 *    conversations deleted after the backup (their keys were destroyed, so they must stay gone;
 *    a key whose row the live vault.db no longer has counts as destroyed, its deletion's key step
 *    still pending),
 *    records their ids in the replay guard; carries the replaced vault's security state into it
 *    (restore-carry.ts: revocations, accounts, memberships; every session ended), and appends a
 *    `vault.restored` audit entry.
 * 5. Swaps the working copy in for vault.db (rename), removes the old one (overwrite + unlink),
 *    then destroys keys.db's keys that no restored row needs (messages and conversations made
 *    after the backup: their rows are gone, so are they) — rows before keys, as everywhere.
 *
 * keys.db itself is never replaced: a backup does not contain it.
 *
 * The restore (also a dry run) holds the data directory's claim for its whole run (data-claim.ts);
 * a dry run may run beside the server, a real restore may not. Stopped by a signal before the
 * swap, it removes its working copy and changes nothing; from the swap on it finishes.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { webcrypto } from 'node:crypto';
import { PATHS, type MasterKeySource } from '../appliance.js';
import { AuditLog } from '../audit/index.js';
import {
  Db,
  Keyring,
  Keystore,
  KEYS_DB_FILE,
  createFileDurable,
  VAULT_DB_FILE,
  MasterKeyWrongError,
  open,
  unlockWithConfig,
  VAULT_KEY_FILE,
  VaultDecryptError,
  writeVaultKeyJson,
  type CryptoKey,
  type MasterKey,
  type VaultKeyJson,
} from '../vault/index.js';
import { integrityProblems, PUBLIC_FILES } from './backup.js';
import { backupKeyAad, frameAad, ManifestSchema, readFrames, readPreamble, type BackupHeader } from './backup-format.js';
import { hasTable } from './counts.js';
import { carrySecurityState, type Carried } from './restore-carry.js';
import { keptIds, liveKeyIds, replacedAuditHead, sweepRows } from './restore-sweep.js';
import {
  BackupContentError,
  BackupCorruptError,
  BackupForeignError,
  BackupFormatError,
  BackupKeyError,
  DataMissingError,
  RestoreArgumentError,
} from './errors.js';
import { unlockCurrent } from './master-source.js';
import { claimDataDir } from './data-claim.js';
import { secureRemoveDb } from './secure-remove.js';
import { swapIn } from './swap-in.js';
import type { SweepResult } from './working-copies.js';

/** Options of {@link restoreBackup}. */
export interface RestoreOptions {
  dataDir: string;
  /** The backup file. */
  in: string;
  /** The live vault's master key. */
  masterKey: MasterKeySource;
  /** The master key the backup was made under, when it is not the current one (before a rotation). */
  backupMasterKey?: MasterKeySource;
  /** Verify, decrypt and sweep a working copy, report, and change nothing. Allowed while running. */
  dryRun?: boolean;
  /**
   * keys.db is lost (or this is a new machine): restore accounts, certificates, keyring and audit
   * log, with every message, file and conversation swept (their keys are gone), and start an
   * empty keys.db. Refused while a keys.db exists.
   */
  withoutKeys?: boolean;
  now?: () => Date;
  /** Aborted (by the command's signal handler): stop at the next step before the swap, clean up, throw its reason. */
  signal?: AbortSignal;
  /** Hears what the claim's sweep of leftover working copies did, when anything. */
  onSweep?: (r: SweepResult) => void;
}

/** What was swept from the restored copy and from keys.db. */
export interface RestoreSwept {
  /** Messages in the backup whose key was destroyed after it (deleted since). */
  messages: number;
  files: number;
  conversations: number;
  /** Keys in keys.db with no row in the restored vault (made after the backup), destroyed. */
  orphanMessageKeys: number;
  orphanConversationKeys: number;
}

/** What {@link restoreBackup} answers. */
export interface RestoreResult {
  dryRun: boolean;
  backup: { id: string; createdAt: string; dbBytes: number; counts: Record<string, number>; audit: BackupHeader['audit'] };
  /** True when the backup was made under an earlier master key and its keyring was re-sealed. */
  rewrapped: boolean;
  swept: RestoreSwept;
  /** Security state of the replaced vault carried into the restored one (restore-carry.ts). */
  carried: Carried;
  /** Public files (certificates, configuration) that were missing and were written from the backup. */
  restoredFiles: string[];
}

const randomBytes = (n: number): Uint8Array => webcrypto.getRandomValues(new Uint8Array(n));

/**
 * Restores `opts.in` into `opts.dataDir`.
 * @throws DataInUseError, ServerRunningError (unless dryRun), the abort reason of `opts.signal`, DataMissingError (no keys.db or appliance without withoutKeys), RestoreArgumentError,
 *   BackupFormatError, BackupKeyError, BackupCorruptError, BackupContentError, vault errors.
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const dataDir = resolve(opts.dataDir);
  const now = opts.now ?? (() => new Date());
  const dryRun = opts.dryRun ?? false;
  const withoutKeys = opts.withoutKeys ?? false;
  const vaultDir = join(dataDir, PATHS.vault);
  const keysDb = join(vaultDir, KEYS_DB_FILE);
  const fresh = !existsSync(join(dataDir, PATHS.meta));
  const keysMissing = !existsSync(keysDb);
  const vaultKeyMissing = !existsSync(join(vaultDir, VAULT_KEY_FILE));
  if ((fresh || keysMissing || vaultKeyMissing) && !withoutKeys) {
    const what = fresh ? `${dataDir} holds no appliance` : `${keysMissing ? keysDb : join(vaultDir, VAULT_KEY_FILE)} is missing`;
    throw new DataMissingError(
      `${what}; restoring without the live keys.db brings back accounts, certificates and the audit log but no message: ` +
        'pass --without-keys to accept that',
    );
  }
  if (withoutKeys && !keysMissing) {
    throw new RestoreArgumentError(`--without-keys: ${keysDb} exists; it is never replaced (restore without the flag)`);
  }
  const claim = await claimDataDir(dataDir, dryRun ? 'restore --dry-run' : 'restore', {
    besideServer: dryRun,
    ...(opts.onSweep ? { onSweep: opts.onSweep } : {}),
  });
  try {
    return await restoreClaimed(opts, { dataDir, now, dryRun, vaultDir, keysDb, keysMissing, vaultKeyMissing });
  } finally {
    claim.release();
  }
}

async function restoreClaimed(
  opts: RestoreOptions,
  c: { dataDir: string; now: () => Date; dryRun: boolean; vaultDir: string; keysDb: string; keysMissing: boolean; vaultKeyMissing: boolean },
): Promise<RestoreResult> {
  const { dataDir, now, dryRun, vaultDir, keysDb, keysMissing, vaultKeyMissing } = c;
  const step = (): void => opts.signal?.throwIfAborted();
  step();
  const fh = await openFile(resolve(opts.in), 'r').catch((err: unknown) => {
    throw new BackupFormatError(`cannot read ${opts.in}`, { cause: err });
  });
  mkdirSync(vaultDir, { recursive: true, mode: 0o700 });
  const work = join(vaultDir, `.restore-${Buffer.from(randomBytes(9)).toString('base64url')}.db`);
  let swapped = false;
  try {
    const { header, digest, offset } = await readPreamble(fh);
    // Without vault-key.json (a new machine), the backup's own describes the master key.
    const mk = vaultKeyMissing
      ? await unlockWithConfig(header.vaultKey as VaultKeyJson, opts.masterKey as Parameters<typeof unlockWithConfig>[1]).catch((err: unknown) => {
          throw err instanceof MasterKeyWrongError ? new BackupKeyError(`the master key given does not match backup ${header.id}`, { cause: err }) : err;
        })
      : await unlockCurrent(dataDir, opts.masterKey);
    const { key, backupMk } = await backupKey(header, mk, opts.backupMasterKey);
    const manifest = await decryptInto(fh, offset, header, digest, key, work, step);
    assertSameAppliance(dataDir, header, manifest);
    step();

    // Keys that still open a row of the vault being replaced: one whose row a deletion already
    // took must not keep the backup's copy of it.
    const live = keysMissing ? { messageKeyIds: new Set<string>(), convIds: new Set<string>() } : await liveKeyIds(keysDb, join(vaultDir, VAULT_DB_FILE));
    const replaced = await replacedAuditHead(join(vaultDir, VAULT_DB_FILE));
    const db = await Db.open(work);
    let swept: Omit<RestoreSwept, 'orphanMessageKeys' | 'orphanConversationKeys'>;
    let keep: { messageKeyIds: Set<string>; convIds: Set<string> };
    let carried: Carried;
    try {
      const problems = await integrityProblems(db);
      if (problems.length > 0) throw new BackupContentError(`restored vault.db fails PRAGMA integrity_check: ${problems.slice(0, 3).join('; ')}`);
      for (const t of ['keyring', 'migrations', 'accounts']) {
        if (!(await hasTable(db, t))) throw new BackupContentError(`restored database has no table ${t}: not a Sigil vault`);
      }
      if (backupMk) {
        const ring = await Keyring.open(db, backupMk);
        await ring.rewrapAll(mk).catch((err: unknown) => {
          throw new BackupContentError('a keyring row of the backup opens under neither master key', { cause: err });
        });
      }
      step();
      swept = await sweepRows(db, mk, live, now);
      keep = await keptIds(db);
      carried = await carrySecurityState(db, join(vaultDir, VAULT_DB_FILE), now);
      await (await AuditLog.open(db, { now })).append([
        {
          type: 'vault.restored',
          actor: 'system',
          data: { backup: header.id, backupCreatedAt: header.createdAt, ...swept, carried, ...(replaced ? { replacedAuditSize: replaced.size, replacedAuditRoot: replaced.root } : {}) },
        },
      ]);
      await db.checkpointTruncate();
    } finally {
      await db.close();
    }

    const orphanMessageKeys = [...live.messageKeyIds].filter((id) => !keep.messageKeyIds.has(id)).length;
    const orphanConvs = [...live.convIds].filter((id) => !keep.convIds.has(id));
    const result: RestoreResult = {
      dryRun,
      backup: { id: header.id, createdAt: header.createdAt, dbBytes: header.dbBytes, counts: header.counts, audit: header.audit },
      rewrapped: backupMk !== undefined,
      swept: { ...swept, orphanMessageKeys, orphanConversationKeys: orphanConvs.length },
      carried,
      restoredFiles: [],
    };
    if (dryRun) return result;

    step(); // the last point where an interruption changes nothing; from the swap on it finishes
    await swapIn(vaultDir, work);
    swapped = true;
    if (vaultKeyMissing) writeVaultKeyJson(join(vaultDir, VAULT_KEY_FILE), header.vaultKey as VaultKeyJson);
    // The public files before keys.db, and durably: with --without-keys, opening keys.db creates
    // it, and a restore killed after that but before appliance.json existed could be neither
    // started (no appliance) nor run again (`--without-keys` refuses an existing keys.db, and
    // without the flag a directory with no appliance is refused). Written first, a kill anywhere
    // before keys.db exists leaves the same command to finish the job.
    for (const rel of PUBLIC_FILES) {
      const content = manifest.files[rel];
      const p = join(dataDir, rel);
      if (content === undefined || existsSync(p)) continue;
      mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
      // Whole or absent after a crash, and never replacing a file.
      createFileDurable(p, Buffer.from(content, 'base64'), rel === PATHS.config || rel === PATHS.meta ? 0o600 : 0o644);
      result.restoredFiles.push(rel);
    }
    const keys = await Keystore.open(keysDb, mk, { cacheSize: 1 });
    try {
      await keys.sweepOrphans(keep.messageKeyIds);
      // The same keys as orphanConvs above, in one transaction rather than one per conversation.
      await keys.sweepOrphanConversations(keep.convIds);
    } finally {
      await keys.close();
    }
    return result;
  } finally {
    await fh.close();
    if (!swapped) await secureRemoveDb(work);
  }
}

/**
 * Refuses a backup of another appliance, before anything is changed. Its keys open under the
 * master key the operator gives for it (`--backup-master-key-file`, which BACKUP_KEY_WRONG asks
 * for), and nothing else told the two apart: the restore swapped in that appliance's keyring
 * under this one's certificates, swept its messages (no key here) and then destroyed every
 * message and conversation key of the live keys.db as "made after the backup" — this
 * appliance's whole correspondence, irreversibly. The root CA certificate is the appliance's
 * identity (made at init, never replaced: renew-issuing renews the issuing CA only), and every
 * backup's manifest carries it. Where the data directory has none (a new machine), the backup's
 * is written.
 * @throws BackupForeignError.
 */
function assertSameAppliance(dataDir: string, header: BackupHeader, manifest: { files: Record<string, string> }): void {
  const live = join(dataDir, PATHS.rootCert);
  const theirs = manifest.files[PATHS.rootCert];
  if (theirs === undefined || !existsSync(live)) return;
  const norm = (pem: string): string => pem.replace(/\s+/g, '');
  if (norm(Buffer.from(theirs, 'base64').toString('utf8')) !== norm(readFileSync(live, 'utf8'))) {
    throw new BackupForeignError(
      `backup ${header.id} (${header.createdAt}, organisation ${JSON.stringify(header.appliance.org)}) is of another appliance: ` +
        `its root CA certificate is not ${live}; nothing was changed`,
    );
  }
}

/** Unwraps the backup key with the current master key, else with the backup's own. */
async function backupKey(
  header: BackupHeader,
  mk: MasterKey,
  source: MasterKeySource | undefined,
): Promise<{ key: CryptoKey; backupMk?: MasterKey }> {
  const wrapped = new Uint8Array(Buffer.from(header.wrappedKey, 'base64'));
  try {
    return { key: await mk.unwrapKey(wrapped, backupKeyAad(header.id)) };
  } catch (err) {
    if (!(err instanceof VaultDecryptError)) throw err;
  }
  if (!source) {
    throw new BackupKeyError(
      `backup ${header.id} (${header.createdAt}) was made under another master key (before a rotation?): ` +
        'give it with --backup-master-key-file PATH or SIGIL_BACKUP_MASTER_PASSPHRASE',
    );
  }
  let backupMk: MasterKey;
  try {
    backupMk = await unlockWithConfig(header.vaultKey as VaultKeyJson, source as Parameters<typeof unlockWithConfig>[1]);
  } catch (err) {
    if (err instanceof MasterKeyWrongError) throw new BackupKeyError(`the backup master key given does not match backup ${header.id}`, { cause: err });
    throw err;
  }
  try {
    return { key: await backupMk.unwrapKey(wrapped, backupKeyAad(header.id)), backupMk };
  } catch (err) {
    throw new BackupKeyError(`backup ${header.id}: its key does not unwrap under the backup master key given`, { cause: err });
  }
}

/** Opens every frame into `work` (0600); answers the manifest. */
async function decryptInto(
  fh: Awaited<ReturnType<typeof openFile>>,
  offset: number,
  header: BackupHeader,
  digest: string,
  key: CryptoKey,
  work: string,
  step: () => void,
): Promise<{ files: Record<string, string> }> {
  const frames = 1 + Math.ceil(header.dbBytes / header.chunkBytes);
  const out = await openFile(work, 'wx', 0o600);
  let manifest: { files: Record<string, string> } | undefined;
  let seen = 0;
  let pos = 0;
  try {
    for await (const { idx, sealed } of readFrames(fh, offset, header.chunkBytes)) {
      if (idx >= frames) throw new BackupCorruptError(`backup has more than the ${frames} frames its header announces`);
      let plain: Uint8Array;
      try {
        plain = await open(key, sealed, frameAad(digest, idx, idx === frames - 1));
      } catch (err) {
        throw new BackupCorruptError(`backup frame ${idx} of ${frames} fails authentication: modified, moved, or the header was changed`, { cause: err });
      }
      if (idx === 0) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(Buffer.from(plain).toString('utf8'));
        } catch (err) {
          throw new BackupContentError('backup manifest is not JSON', { cause: err });
        }
        const r = ManifestSchema.safeParse(parsed);
        if (!r.success) throw new BackupContentError('backup manifest does not match its schema', { cause: r.error });
        manifest = r.data;
      } else {
        await out.write(plain, 0, plain.length, pos);
        pos += plain.length;
        plain.fill(0);
      }
      seen++;
      step();
    }
    await out.sync();
  } finally {
    await out.close();
  }
  if (seen !== frames || !manifest) throw new BackupCorruptError(`backup ends after ${seen} of ${frames} frames: cut short`);
  if (pos !== header.dbBytes) throw new BackupCorruptError(`backup holds ${pos} database bytes, its header announces ${header.dbBytes}`);
  return manifest;
}
