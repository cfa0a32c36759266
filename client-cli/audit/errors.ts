/**
 * Failure modes of the auditor's commands (`sigil audit …`). Each has a stable `code` mapped to an
 * exit code in client-cli/exit-codes.ts: AUDIT_VERIFY_FAILED is "verification said no" (3).
 */
import { CliError } from '../errors.js';

/** The trail did not verify: a checkpoint, an entry, a proof or the history does not hold. */
export class AuditVerifyFailedError extends CliError {
  constructor(
    readonly reason: string,
    detail: string,
    /** The first failing entry, when one can be named. */
    readonly seq?: number,
  ) {
    super('AUDIT_VERIFY_FAILED', `audit trail does not verify: ${reason}${seq !== undefined ? ` at entry ${seq}` : ''}: ${detail}`);
  }
}

/** A saved checkpoint or an export folder file is missing, unreadable or malformed. */
export class AuditFileError extends CliError {
  constructor(readonly path: string, problem: string, cause?: unknown) {
    super('AUDIT_FILE', `${path} ${problem}`, cause === undefined ? undefined : { cause });
  }
}

/** `audit export --out DIR` would write into a folder that already has files. */
export class AuditExportExistsError extends CliError {
  constructor(dir: string) {
    super('AUDIT_EXPORT_EXISTS', `${dir} is not empty; choose a new folder (an export is never merged into another)`);
  }
}
