/**
 * Audit-log failure modes: one class per mode with a stable `code`. Verification outcomes are
 * not errors (they are `{ok:false, reason, detail}` results); these are for misuse and damage.
 */

/** Base class of every audit error. */
export abstract class AuditError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A sequence number or tree size outside the log (e.g. a proof for a size not yet reached). */
export class AuditRangeError extends AuditError {
  readonly code = 'AUDIT_RANGE';
}

/** An event to append failed its schema (empty type, non-JSON data, invalid date). */
export class AuditEventInvalidError extends AuditError {
  readonly code = 'AUDIT_EVENT_INVALID';
}

/** A stored tree node or leaf needed for a proof is missing: the log's tables were damaged. */
export class AuditTreeDamagedError extends AuditError {
  readonly code = 'AUDIT_TREE_DAMAGED';
}
