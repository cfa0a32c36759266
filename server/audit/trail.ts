/**
 * The audit trail as the appliance runs it: the Merkle log, the checkpointer with the audit-signing
 * identity, and the server-side verifier (`sigil-server` tools and tests; auditors use the CLI,
 * which trusts nothing the server computed).
 */
import type { Certificate, CryptoKey } from '../../pki/index.js';
import type { Db } from '../vault/index.js';
import { verifyCheckpoint, type CheckpointTrust } from './checkpoint.js';
import { Checkpointer, listCheckpoints, type StoredCheckpoint } from './checkpointer.js';
import { AuditLog } from './log.js';
import type { LogFailureReason } from './verify.js';

/** What {@link openAuditTrail} needs from the appliance. */
export interface AuditTrailOptions {
  db: Db;
  auditCert: Certificate;
  auditKey: CryptoKey;
  issuingCert: Certificate;
  rootCert: Certificate;
  /** Organisation name: the checkpoint origin is `sigil/<org>/audit`. */
  org: string;
  now?: () => Date;
  /** Checkpoint interval while entries arrive. Default 2000 ms. */
  checkpointIntervalMs?: number;
  onError?: (err: unknown) => void;
}

/** Outcome of {@link AuditTrail.verify}. `seq` names the first failing entry when one can be named. */
export type TrailVerification =
  | { ok: true; size: number; checkpoints: number }
  | {
      ok: false;
      reason: LogFailureReason | 'checkpoint-invalid' | 'checkpoint-mismatch';
      detail: string;
      seq?: number;
      /** For checkpoint failures: the first entry and the end of the range the failure lies in. */
      range?: { from: number; to: number };
    };

/** The checkpoint origin line for an organisation (line breaks cannot occur in it). */
export function auditOrigin(org: string): string {
  return `sigil/${org.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 120)}/audit`;
}

/** The running audit trail. */
export class AuditTrail {
  constructor(
    readonly log: AuditLog,
    readonly checkpointer: Checkpointer,
    /** Audit certificate, then issuing CA, then root (PEM): what auditors need to verify. */
    readonly chainPem: string,
    readonly trust: CheckpointTrust,
  ) {}

  /** Starts periodic checkpoints. */
  start(): void {
    this.checkpointer.start();
  }

  /** Stops them (before the vault closes). */
  stop(): Promise<void> {
    return this.checkpointer.stop();
  }

  /**
   * Verifies the stored trail: every entry against its leaf hash and the stored tree
   * (`AuditLog.verify`), every stored checkpoint's signature and chain, and that the log's root at
   * each checkpoint's size is the signed one. A checkpoint that disagrees places the change in the
   * entries it added over the previous one. Same as {@link verifyAuditTrail}.
   */
  verify(): Promise<TrailVerification> {
    return verifyTrailWith(this.log, (after) => this.checkpointer.list(after), this.trust);
  }
}

/** What {@link verifyAuditTrail} needs: the vault and the CA of the audit certificate, no key. */
export interface VerifyAuditTrailOptions {
  db: Db;
  issuingCert: Certificate;
  rootCert: Certificate;
  /** Organisation name: checkpoints must name origin `sigil/<org>/audit`. */
  org: string;
  /** An already opened log on `db` (the appliance's); default: opened here. */
  log?: AuditLog;
}

/**
 * Verifies the trail stored in vault.db without the audit key, with the server stopped or running
 * (`sigil-server check`): {@link AuditTrail.verify} over a log opened on `db` and the checkpoints
 * stored beside it. O(n) in the entries; never throws for a finding.
 *
 * @example
 * const v = await verifyAuditTrail({ db, issuingCert, rootCert, org: meta.org });
 * if (!v.ok) console.log(v.reason, v.seq, v.detail);
 */
export async function verifyAuditTrail(o: VerifyAuditTrailOptions): Promise<TrailVerification> {
  const log = o.log ?? (await AuditLog.open(o.db));
  return verifyTrailWith(log, (after) => listCheckpoints(o.db, after), {
    trustAnchors: [o.rootCert],
    intermediates: [o.issuingCert],
    origin: auditOrigin(o.org),
  });
}

async function verifyTrailWith(log: AuditLog, list: (after: number) => Promise<StoredCheckpoint[]>, trust: CheckpointTrust): Promise<TrailVerification> {
  const structure = await log.verify();
  // Edited index columns leave the tree intact: the checkpoints are still checked, and a history
  // rewritten under a signed checkpoint (which leaves its old columns behind too) is named as that.
  if (!structure.ok && structure.reason !== 'index-mismatch') return structure;
  const stored = structure.ok ? structure.size : await log.size();
  let prevSize = 0;
  let count = 0;
  for (let after = 0; ; ) {
    const page = await list(after);
    if (page.length === 0) break;
    for (const cp of page) {
      after = cp.id;
      count++;
      const v = await verifyCheckpoint(cp.note, cp.signature, trust);
      if (!v.ok) return { ok: false, reason: 'checkpoint-invalid', detail: `checkpoint #${cp.id} (size ${cp.size}): ${v.reason}: ${v.detail}` };
      // The signed note's size, not the table's column (which nothing signed).
      const size = v.checkpoint.size;
      if (size > stored) {
        return {
          ok: false,
          reason: 'sequence-gap',
          seq: stored,
          detail: `checkpoint #${cp.id} signed ${size} entries, only ${stored} are stored`,
        };
      }
      const root = (await log.root(size)).root;
      if (Buffer.compare(Buffer.from(root), Buffer.from(v.checkpoint.root)) !== 0) {
        const from = Math.min(prevSize, size - 1);
        return {
          ok: false,
          reason: 'checkpoint-mismatch',
          seq: from,
          range: { from, to: size - 1 },
          detail: `checkpoint #${cp.id} signed a different root for size ${size}: entries ${from}..${size - 1} were changed after it was signed`,
        };
      }
      prevSize = Math.max(prevSize, size);
    }
  }
  return structure.ok ? { ok: true, size: structure.size, checkpoints: count } : structure;
}

/**
 * The trail over an already opened log (the appliance's `auditLog`), synchronously, so it can be
 * built inside a routes factory; the checkpoint table is created before its first use. Does not
 * start the timer.
 */
export function createAuditTrail(o: AuditTrailOptions & { log: AuditLog }): AuditTrail {
  const now = o.now ?? (() => new Date());
  const log = o.log;
  const checkpointer = new Checkpointer({
    db: o.db,
    log,
    origin: auditOrigin(o.org),
    cert: o.auditCert,
    key: o.auditKey,
    chain: [o.issuingCert],
    now,
    ...(o.checkpointIntervalMs !== undefined ? { intervalMs: o.checkpointIntervalMs } : {}),
    ...(o.onError ? { onError: o.onError } : {}),
  });
  const chainPem = [o.auditCert, o.issuingCert, o.rootCert].map((c) => c.pem.trimEnd() + '\n').join('');
  return new AuditTrail(log, checkpointer, chainPem, {
    trustAnchors: [o.rootCert],
    intermediates: [o.issuingCert],
    origin: checkpointer.origin,
  });
}

/** Opens the log and the checkpointer over vault.db (does not start the timer). */
export async function openAuditTrail(o: AuditTrailOptions): Promise<AuditTrail> {
  const log = await AuditLog.open(o.db, o.now ? { now: o.now } : {});
  const trail = createAuditTrail({ ...o, log });
  await trail.checkpointer.ready();
  return trail;
}
