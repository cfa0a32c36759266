/**
 * A master-key rotation of an open vault (`Vault.rotateMasterKey`, vault.ts; the ops command is
 * server/ops/rotate.ts): every keyring row (vault.db) and conversation key (keys.db) re-wrapped
 * under the new master key, resumable from any point a power cut leaves, and the clean-up after
 * its commit. What each step leaves on disk is said where it happens.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from './db.js';
import { renameDurable, tempPathOf } from './durable-file.js';
import { MasterKeyExistsError, RotationKeyUnreadableError } from './errors.js';
import type { KeyCensus, Keyring } from './keyring.js';
import type { Keystore } from './keystore.js';
import {
  VAULT_KEY_FILE,
  VAULT_KEY_NEXT_FILE,
  VAULT_KEY_PREV_FILE,
  prepareMasterKey,
  publishKeyFile,
  readVaultKeyJson,
  unlockWithConfig,
  writeVaultKeyJson,
  type MasterKey,
  type PrepareMasterKeyOptions,
  type VaultKeyJson,
} from './master-key.js';
import { dropReplacedKey, keepReplacedKey, readReplacedKey } from './rotation-record.js';

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

/** The open parts a rotation works on. */
export interface RotationTarget {
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
export async function rotate(
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
export async function finishCommitted(dir: string, afterCommit: RotationHooks['afterCommit']): Promise<boolean> {
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
