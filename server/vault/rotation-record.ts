/**
 * The record a master-key rotation keeps of the key it replaces: `vault-key.prev.json`, a durable
 * copy of the `vault-key.json` of before, written just before the final rename (the commit) and
 * removed once the caller's clean-up after the commit has run.
 *
 * Why: once `vault-key.next.json` is renamed over `vault-key.json` nothing else on disk says that
 * a rotation happened, nor which secret it replaced. A process killed after that rename but
 * before its clean-up (the check that the old secret is refused, the shred of the old key file)
 * left a vault that only the new key opens and a command that, run again with the old key,
 * answered MASTER_KEY_WRONG — and never shredded the old key file. The record says "committed,
 * clean-up pending", and its key-check value proves which key file is the old one, so a file is
 * shredded only when it is that key (never an unrelated key file named by mistake).
 *
 * It holds nothing secret: the argon2id salt and parameters or "keyfile", and a key-check value,
 * as every backup's header does for its time.
 */
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { syncDir, tempPathOf } from './durable-file.js';
import { readVaultKeyJson, VAULT_KEY_FILE, VAULT_KEY_PREV_FILE, writeVaultKeyJson, type VaultKeyJson } from './master-key.js';

/**
 * Writes the record: `vault-key.json` as it is now, copied durably to `vault-key.prev.json` (an
 * older record, left by a rotation whose clean-up never ran, is replaced). Call it right before
 * the rename that commits a rotation, so that the record is on disk whenever the commit is.
 */
export function keepReplacedKey(dir: string): void {
  writeVaultKeyJson(join(dir, VAULT_KEY_PREV_FILE), readVaultKeyJson(dir, VAULT_KEY_FILE));
}

/** The `vault-key.json` a committed rotation replaced, while its clean-up is unfinished; else undefined. */
export function readReplacedKey(dir: string): VaultKeyJson | undefined {
  return existsSync(join(dir, VAULT_KEY_PREV_FILE)) ? readVaultKeyJson(dir, VAULT_KEY_PREV_FILE) : undefined;
}

/** Removes the record (and a killed write's temp file), then fsyncs the directory: the rotation is over. */
export function dropReplacedKey(dir: string): void {
  const path = join(dir, VAULT_KEY_PREV_FILE);
  rmSync(tempPathOf(path), { force: true });
  rmSync(path, { force: true });
  syncDir(dir);
}
