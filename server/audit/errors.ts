/**
 * Audit-log failure modes: one class per mode with a stable `code`. Verification outcomes are
 * not errors (they are `{ok:false, reason, detail}` results); these are for misuse and damage.
 */

/** Base class of every audit error. */
export abstract class AuditError extends Error {
  abstract readonly code: string;
  /** HTTP status for input-driven failures (server/errors.ts uses a 4xx `status` it finds). */
  readonly status?: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A sequence number or tree size outside the log (e.g. a proof for a size not yet reached). */
export class AuditRangeError extends AuditError {
  readonly code = 'AUDIT_RANGE';
  override readonly status = 400;
}

/** An event to append failed its schema (empty type, non-JSON data, invalid date). */
export class AuditEventInvalidError extends AuditError {
  readonly code = 'AUDIT_EVENT_INVALID';
  override readonly status = 400;
}

/**
 * A stored tree node or entry needed for a root or proof is missing: the log's tables were
 * damaged (a deleted `audit_log` row, a lost `audit_nodes` row). 409: the request is sound, the
 * stored tree is not; the message names the missing entry or node.
 */
export class AuditTreeDamagedError extends AuditError {
  readonly code = 'AUDIT_TREE_DAMAGED';
  override readonly status = 409;
}

/**
 * The stored tree no longer extends the newest signed checkpoint (its root at that size, or the
 * consistency proof from it, differs), or that checkpoint's signature does not verify: the
 * checkpointer refuses to sign. 409: the appliance's own history conflicts with what it signed.
 */
export class AuditCheckpointMismatchError extends AuditError {
  readonly code = 'AUDIT_CHECKPOINT_MISMATCH';
  override readonly status = 409;
  constructor(
    message: string,
    /** Id and size of the signed checkpoint the stored tree disagrees with. */
    readonly checkpoint: { id: number; size: number },
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A checkpoint note that is not in the one accepted form, or a body that cannot be formatted. */
export class AuditCheckpointInvalidError extends AuditError {
  readonly code = 'AUDIT_CHECKPOINT_INVALID';
}

/** A room access record (pass, person, direction, time) failed its rules, e.g. a time in the future. */
export class AuditRoomAccessInvalidError extends AuditError {
  readonly code = 'AUDIT_ROOM_ACCESS_INVALID';
  override readonly status = 400;
}
