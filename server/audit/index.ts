/**
 * Public API of the audit trail core: RFC 9162 Merkle hashing and proofs, the append-only log
 * in vault.db, and offline verification. Signed checkpoints come with the audit issue.
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
export { AuditLog, entryLeafData } from './log.js';
export type { AuditEntry, AuditEvent, AuditLogOptions, AuditRow } from './log.js';
export { LogVerifier, verifyLog } from './verify.js';
export type { LogFailureReason, LogVerification } from './verify.js';
