/**
 * Public API of server/ops: the appliance's operations — encrypted online backup and restore,
 * integrity check, status, master-key rotation, repack — the run file that tells offline commands
 * whether the server runs, and the data directory's claim that lets one command at a time work on it. main.ts adds the subcommands with {@link registerOpsCommands}.
 */
export { registerOpsCommands } from './commands.js';
export * from './errors.js';
export { createBackup, PUBLIC_FILES, type BackupOptions, type BackupResult } from './backup.js';
export { BACKUP_MAGIC, DEFAULT_CHUNK_BYTES, type BackupHeader } from './backup-format.js';
export { restoreBackup, type RestoreOptions, type RestoreResult, type RestoreSwept } from './restore.js';
export { checkAppliance, MAX_LISTED, type CheckItem, type CheckOptions, type CheckReport, type CheckStatus, type CheckFailure } from './check.js';
export { applianceStatus, sigilVersion, CERT_WARN_DAYS, CRL_WARN_HOURS, type StatusReport, type CertificateStatus } from './status.js';
export { rotateMasterKey, type RotateOptions, type RotateResult } from './rotate.js';
export { repackVault, type RepackOptions, type RepackResult, type VaultLayout } from './repack.js';
export { RUN_FILE, claimRunFile, readRunState, readClaimState, assertNotRunning, type RunInfo, type RunState } from './run-file.js';
export { OPS_FILE, claimDataDir, readOpsState, sweepLine, type ClaimingCommand, type DataClaim, type DataClaimOptions } from './data-claim.js';
export { WORKING_COPY_NAME, findWorkingCopies, sweepWorkingCopies, type SweepResult } from './working-copies.js';
export { countRows, type ApplianceCounts } from './counts.js';
export { currentMasterKeySource, backupMasterKeySource } from './master-source.js';
