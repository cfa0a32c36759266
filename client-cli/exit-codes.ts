/**
 * The one place that turns failures into process exit codes (ARCHITECTURE.md, error model):
 * 0 ok, 1 failure, 2 usage, 3 verification said no, 4 authentication refused.
 */
import { CliError } from './errors.js';

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  verification: 3,
  auth: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * Error codes, local or from the server, whose exit code is not 1. Anything not listed is a
 * plain failure (1). Keep server codes in the same table as local ones: a script should not care
 * which side noticed.
 */
const TABLE: Readonly<Record<string, ExitCode>> = {
  // usage: the command line (or the missing answer to a prompt) is at fault
  USAGE: EXIT.usage,
  PROMPT_UNAVAILABLE: EXIT.usage,
  PASSWORD_MISMATCH: EXIT.usage,
  KEY_PASSPHRASE_WEAK: EXIT.usage,
  // verification said no: a signature, a chain or a CRL did not check out
  NOT_TRUSTED: EXIT.verification,
  SERVER_UNTRUSTED: EXIT.verification,
  CERT_KEY_MISMATCH: EXIT.verification,
  SIGNATURE_INVALID: EXIT.verification,
  RECEIPT_INVALID: EXIT.verification,
  // messaging (client-cli/messaging/errors.ts): a message or a downloaded file did not verify locally
  MESSAGE_UNVERIFIED: EXIT.verification,
  DOWNLOAD_MISMATCH: EXIT.verification,
  // audit (client-cli/audit/errors.ts): the audit trail, a checkpoint or a proof did not verify
  AUDIT_VERIFY_FAILED: EXIT.verification,
  // …and the appliance's own answers that its stored trail is damaged or was rewritten (409)
  AUDIT_TREE_DAMAGED: EXIT.verification,
  AUDIT_CHECKPOINT_MISMATCH: EXIT.verification,
  // authentication refused: by the server, or locally before we could even ask
  AUTH_FAILED: EXIT.auth,
  ACCOUNT_LOCKED: EXIT.auth,
  ACCOUNT_DISABLED: EXIT.auth,
  NONCE_INVALID: EXIT.auth,
  CERT_REVOKED: EXIT.auth,
  ISSUING_CA_REVOKED: EXIT.auth,
  CERT_EXPIRED: EXIT.auth,
  SESSION_INVALID: EXIT.auth,
  SESSION_EXPIRED: EXIT.auth,
  ENVELOPE_EXPIRED: EXIT.auth,
  AUTH_REQUIRED: EXIT.auth,
  CLIENT_CERT_REQUIRED: EXIT.auth,
  CERT_UNKNOWN: EXIT.auth,
  CERT_NOT_YET_VALID: EXIT.auth,
  PASSWORD_WRONG: EXIT.auth,
  PASSWORD_CHANGE_REQUIRED: EXIT.auth,
  NOT_LOGGED_IN: EXIT.auth,
  CLIENT_CERT_REFUSED: EXIT.auth,
  KEY_PASSPHRASE_WRONG: EXIT.auth,
  P12_OPEN_FAILED: EXIT.auth,
};

/** Commander's own parse errors (`commander.unknownOption`, `commander.invalidArgument`, …). */
function isCommanderUsage(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('commander.');
}

/** Exit code for anything thrown by a command. */
export function exitCodeFor(err: unknown): ExitCode {
  if (err instanceof CliError) return TABLE[err.code] ?? EXIT.failure;
  if (isCommanderUsage(err)) return EXIT.usage;
  return EXIT.failure;
}

/** Codes this table knows, for the help text and its test. */
export function mappedCodes(): ReadonlyArray<[string, ExitCode]> {
  return Object.entries(TABLE);
}
