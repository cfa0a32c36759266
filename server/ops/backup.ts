/**
 * `sigil-server backup`: an online, consistent, encrypted copy of vault.db.
 *
 * 1. SQLite's online backup API copies vault.db into a working file inside the data directory
 *    (`vault/.backup-<id>.db`, 0600 in a 0700 directory) — a consistent snapshot even while the
 *    server writes, since WAL lets a reader hold a snapshot beside the writer.
 * 2. The snapshot is checked (`PRAGMA integrity_check`) and counted, and its audit tree head read.
 * 3. It is sealed frame by frame (1 MiB, AES-256-GCM, see backup-format.ts) under a fresh backup
 *    key wrapped under the master key, into `FILE.<id>.partial`, then linked to FILE (never
 *    replacing). A backup killed outright leaves that file (sealed, a cut backup that no restore
 *    accepts); it never stops the next backup.
 * 4. The snapshot is overwritten and unlinked when the backup ends, fails, or is stopped by a
 *    signal (the command aborts `signal`, the next step throws, `finally` removes it). A process
 *    killed outright leaves it: the next command or `start` that claims the data directory
 *    removes it (data-claim.ts), and `check` fails while it is there.
 *
 * The backup holds the data directory's claim for its whole run (beside a running server, but not
 * beside another backup, restore, repack or rotation).
 *
 * keys.db is never read: the destroyable keys are in no backup (ARCHITECTURE.md).
 *
 * Refused (ROTATION_PENDING) while a master-key rotation is unfinished (`vault-key.next.json`).
 */
import { existsSync } from 'node:fs';
import { link, open, readFile, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { webcrypto } from 'node:crypto';
import { PATHS, readMeta, type MasterKeySource } from '../appliance.js';
import { AuditLog } from '../audit/index.js';
import { ApplianceMissingError, RotationPendingError } from '../errors.js';
import { Db, readVaultKeyJson, seal, VAULT_DB_FILE, VAULT_KEY_NEXT_FILE, type RandomBytes } from '../vault/index.js';
import {
  backupKeyAad,
  DEFAULT_CHUNK_BYTES,
  encodeFrame,
  encodePreamble,
  frameAad,
  type BackupHeader,
  type Manifest,
} from './backup-format.js';
import { countRows, type ApplianceCounts } from './counts.js';
import { BackupContentError, BackupExistsError, DataMissingError } from './errors.js';
import { unlockCurrent } from './master-source.js';
import { claimDataDir } from './data-claim.js';
import { secureRemoveDb } from './secure-remove.js';
import type { SweepResult } from './working-copies.js';

/**
 * Public files of the data directory carried in the manifest (certificates, the root CRL and
 * configuration). A file absent when the backup was made (a root CRL before root CRLs) is skipped.
 */
export const PUBLIC_FILES = [PATHS.meta, PATHS.config, PATHS.rootCert, PATHS.issuingCert, PATHS.chain, PATHS.rootCrl, PATHS.tlsCert, PATHS.auditCert] as const;

/** Options of {@link createBackup}. */
export interface BackupOptions {
  dataDir: string;
  /** Output file; must not exist. */
  out: string;
  masterKey: MasterKeySource;
  /** Plaintext bytes per frame; default 1 MiB. */
  chunkBytes?: number;
  now?: () => Date;
  random?: RandomBytes;
  /** Aborted (by the command's SIGINT/SIGTERM/SIGHUP handler): stop at the next step, clean up, throw its reason. */
  signal?: AbortSignal;
  /** Hears what the claim's sweep of leftover working copies did, when anything. */
  onSweep?: (r: SweepResult) => void;
}

/** What {@link createBackup} answers (and `backup --json` prints). */
export interface BackupResult {
  file: string;
  id: string;
  createdAt: string;
  /** Size of the backup file. */
  bytes: number;
  /** Size of the vault.db snapshot inside it. */
  dbBytes: number;
  counts: ApplianceCounts;
  audit: { size: number; root: string };
}

const defaultRandom: RandomBytes = (n) => webcrypto.getRandomValues(new Uint8Array(n));

/**
 * Makes an encrypted backup of `DIR/vault/vault.db`. Safe while the server runs.
 * @throws DataInUseError (another ops command holds the directory), the abort reason of
 *   `opts.signal`, ApplianceMissingError, RotationPendingError, DataMissingError, BackupExistsError, BackupContentError (the
 *   snapshot fails its integrity check), vault errors (MASTER_KEY_WRONG, VAULT_BACKUP_FAILED, …).
 */
export async function createBackup(opts: BackupOptions): Promise<BackupResult> {
  const dataDir = resolve(opts.dataDir);
  const out = resolve(opts.out);
  const now = opts.now ?? (() => new Date());
  const random = opts.random ?? defaultRandom;
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!existsSync(join(dataDir, PATHS.meta))) throw new ApplianceMissingError(dataDir);
  const vaultDir = join(dataDir, PATHS.vault);
  const vaultDb = join(vaultDir, VAULT_DB_FILE);
  if (!existsSync(vaultDb)) throw new DataMissingError(`${vaultDb} is missing: nothing to back up`);
  if (existsSync(out)) throw new BackupExistsError(`${out} exists; a backup never overwrites a file (choose another --out)`);
  const claim = await claimDataDir(dataDir, 'backup', { besideServer: true, ...(opts.onSweep ? { onSweep: opts.onSweep } : {}) });
  try {
    return await backupClaimed(opts, { dataDir, out, now, random, chunkBytes, vaultDir, vaultDb });
  } finally {
    claim.release();
  }
}

async function backupClaimed(
  opts: BackupOptions,
  c: { dataDir: string; out: string; now: () => Date; random: RandomBytes; chunkBytes: number; vaultDir: string; vaultDb: string },
): Promise<BackupResult> {
  const { dataDir, out, now, random, chunkBytes, vaultDir, vaultDb } = c;
  const step = (): void => opts.signal?.throwIfAborted();
  step();
  // Half-rotated, the keyring may be under the new key while vault-key.json (the header's copy)
  // still describes the old one: such a backup could never be restored. Checked under the claim,
  // which a running rotation holds.
  if (existsSync(join(vaultDir, VAULT_KEY_NEXT_FILE))) {
    throw new RotationPendingError(dataDir, 'making a backup (its keyring would not match the vault-key.json it carries)');
  }
  const meta = await readMeta(dataDir);
  const vaultKey = readVaultKeyJson(vaultDir);
  const mk = await unlockCurrent(dataDir, opts.masterKey);

  const id = Buffer.from(random(16)).toString('base64url');
  const snapshot = join(vaultDir, `.backup-${id}.db`);
  // Named by this backup's id, and removed only once this run created it: a fixed `FILE.partial`
  // left by a backup killed outright made the next backup to the same --out fail (EEXIST), and
  // its clean-up then removed that file, which it had not created (another backup's, perhaps
  // still being written).
  const partial = `${out}.${id}.partial`;
  let created = false;
  try {
    const source = await Db.open(vaultDb);
    try {
      await source.backupTo(snapshot);
    } finally {
      await source.close();
    }
    step();
    const facts = await inspectSnapshot(snapshot, now());
    step();
    const dbBytes = (await stat(snapshot)).size;

    const { key, wrapped } = await mk.wrapNewKey(backupKeyAad(id));
    const header: BackupHeader = {
      format: 'sigil-backup',
      v: 1,
      id,
      createdAt: now().toISOString(),
      appliance: { org: meta.org, profile: meta.profile },
      vaultKey,
      wrappedKey: Buffer.from(wrapped).toString('base64'),
      chunkBytes,
      dbBytes,
      counts: { ...facts.counts },
      audit: facts.audit,
    };
    const { bytes: preamble, digest } = encodePreamble(header);
    const manifest: Manifest = { files: {} };
    for (const rel of PUBLIC_FILES) {
      const p = join(dataDir, rel);
      if (existsSync(p)) manifest.files[rel] = (await readFile(p)).toString('base64');
    }
    const frames = 1 + Math.ceil(dbBytes / chunkBytes);

    const outFh = await open(partial, 'wx', 0o600);
    created = true;
    try {
      let pos = 0;
      const write = async (b: Uint8Array): Promise<void> => {
        await outFh.write(b, 0, b.length, pos);
        pos += b.length;
      };
      await write(preamble);
      const manifestBytes = new TextEncoder().encode(JSON.stringify(manifest));
      await write(encodeFrame(await seal(key, manifestBytes, frameAad(digest, 0, frames === 1), random)));
      const inFh = await open(snapshot, 'r');
      const buf = Buffer.alloc(chunkBytes);
      try {
        for (let idx = 1, offset = 0; idx < frames; idx++) {
          const want = Math.min(chunkBytes, dbBytes - offset);
          const { bytesRead } = await inFh.read(buf, 0, want, offset);
          if (bytesRead !== want) throw new BackupContentError(`snapshot shrank while being read (${offset + bytesRead} of ${dbBytes} bytes)`);
          await write(encodeFrame(await seal(key, buf.subarray(0, want), frameAad(digest, idx, idx === frames - 1), random)));
          offset += want;
          step();
        }
      } finally {
        buf.fill(0);
        await inFh.close();
      }
      await outFh.sync();
    } finally {
      await outFh.close();
    }
    step(); // the last point where an interruption leaves no backup behind
    // link() fails if `out` appeared meanwhile: a backup never replaces a file.
    try {
      await link(partial, out);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new BackupExistsError(`${out} appeared during the backup; not replaced`, { cause: err });
      throw err;
    }
    return {
      file: out,
      id,
      createdAt: header.createdAt,
      bytes: (await stat(out)).size,
      dbBytes,
      counts: facts.counts,
      audit: facts.audit,
    };
  } finally {
    if (created) await rm(partial, { force: true });
    await secureRemoveDb(snapshot);
  }
}

/** Integrity check, counts and audit tree head of a snapshot. */
async function inspectSnapshot(path: string, now: Date): Promise<{ counts: ApplianceCounts; audit: { size: number; root: string } }> {
  const db = await Db.open(path);
  try {
    const problems = await integrityProblems(db);
    if (problems.length > 0) {
      throw new BackupContentError(`vault.db fails PRAGMA integrity_check: ${problems.slice(0, 3).join('; ')}`);
    }
    const counts = await countRows(db, now);
    const audit = await (await AuditLog.open(db)).root();
    return { counts, audit: { size: audit.size, root: Buffer.from(audit.root).toString('hex') } };
  } finally {
    await db.close();
  }
}

/** `PRAGMA integrity_check` rows other than "ok" (at most 100). */
export async function integrityProblems(db: Db): Promise<string[]> {
  const rows = await db.all<{ integrity_check: string }>('PRAGMA integrity_check(100)');
  return rows.map((r) => r.integrity_check).filter((s) => s !== 'ok');
}
