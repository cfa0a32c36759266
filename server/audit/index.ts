/**
 * Public API of the audit trail: RFC 9162 Merkle hashing and proofs, the append-only log in
 * vault.db, signed checkpoints, the room access register, and offline verification.
 */
export * from './errors.js';
export {
  EMPTY_ROOT,
  HASH_BYTES,
  consistencyProof,
  inclusionProof,
  leafHash,
  memoryNodeSource,
  nodeHash,
  rootHash,
  subtreeRoot,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
export type { Hash, NodeSource, ProofResult } from './merkle.js';
export { entryLeafData } from './entry.js';
export type { AuditEntry, AuditEvent, AuditRow } from './entry.js';
export { AuditLog } from './log.js';
export type { AuditLogOptions, AuditQuery } from './log.js';
export { LogVerifier, verifyLog } from './verify.js';
export type { LogFailureReason, LogVerification } from './verify.js';
export { checkpointTime, formatCheckpoint, parseCheckpoint, signCheckpoint, verifyCheckpoint } from './checkpoint.js';
export type {
  CheckpointBody,
  CheckpointFailureReason,
  CheckpointTrust,
  CheckpointVerification,
  SignCheckpointParams,
  SignedCheckpoint,
} from './checkpoint.js';
export { Checkpointer, listCheckpoints } from './checkpointer.js';
export type { CheckpointerOptions, StoredCheckpoint } from './checkpointer.js';
export { RoomAccessSchema, recordRoomAccess } from './room-access.js';
export type { RoomAccessInput, RoomAccessRecord } from './room-access.js';
export { AuditTrail, auditOrigin, createAuditTrail, openAuditTrail, verifyAuditTrail } from './trail.js';
export type { AuditTrailOptions, TrailVerification, VerifyAuditTrailOptions } from './trail.js';
