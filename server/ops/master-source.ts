/**
 * Where the ops commands get master keys from, with the same precedence as `sigil-server start`
 * (main.ts): `--master-key-file PATH`, else env `SIGIL_MASTER_PASSPHRASE`, else the generated key
 * file `DIR/secrets/master.key`. A second, optional source names the master key a backup was made
 * under when it differs (a backup taken before a rotation).
 */
import { join, resolve } from 'node:path';
import { PATHS, type MasterKeySource } from '../appliance.js';
import { unlockMasterKey, type MasterKey } from '../vault/index.js';

/** The current master key's source, as `start` chooses it. */
export function currentMasterKeySource(dataDir: string, flag: string | undefined, env: NodeJS.ProcessEnv): MasterKeySource {
  if (flag) return { keyFilePath: resolve(flag) };
  const passphrase = env.SIGIL_MASTER_PASSPHRASE;
  if (passphrase) return { passphrase };
  return { keyFilePath: join(dataDir, PATHS.masterKeyFile) };
}

/** The backup's own master key source, if the operator gave one (`--backup-master-key-file`, env `SIGIL_BACKUP_MASTER_PASSPHRASE`). */
export function backupMasterKeySource(flag: string | undefined, env: NodeJS.ProcessEnv): MasterKeySource | undefined {
  if (flag) return { keyFilePath: resolve(flag) };
  const passphrase = env.SIGIL_BACKUP_MASTER_PASSPHRASE;
  return passphrase ? { passphrase } : undefined;
}

/** Unlocks the live vault's master key (checked against `DIR/vault/vault-key.json`). */
export function unlockCurrent(dataDir: string, source: MasterKeySource): Promise<MasterKey> {
  return unlockMasterKey({ dir: join(dataDir, PATHS.vault), ...source } as Parameters<typeof unlockMasterKey>[0]);
}
