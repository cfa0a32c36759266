/**
 * Signed checkpoints of the audit log: a text note in the style of C2SP signed-note / tlog-checkpoint
 *
 *     <origin>\n<tree size>\n<base64 root hash>\n<RFC 3339 time>\n
 *
 * signed as a detached CMS SignedData (RFC 5652 §5) by the appliance's audit-signing certificate,
 * so an auditor can check it with Sigil's CLI or with
 * `openssl cms -verify -binary -inform DER -content note.txt -CAfile chain.pem -purpose any`
 * (`-purpose any` because the certificate carries Sigil's audit EKU, not S/MIME's).
 *
 * The body is the whole signed statement: the root of RFC 9162 §2.1.1 over the first `size`
 * entries, the origin naming the log, and the time the appliance vouches for it.
 */
import { Certificate, signDetached, validateCertificate, verifyDetached, type Crl, type CryptoKey } from '../../pki/index.js';
import { AuditCheckpointInvalidError } from './errors.js';
import { HASH_BYTES, type Hash } from './merkle.js';

/** What a checkpoint states. */
export interface CheckpointBody {
  /** Names the log (one appliance), e.g. `sigil/Ministry/audit`. One line, no control characters. */
  origin: string;
  /** Tree size: the number of entries covered. */
  size: number;
  /** RFC 9162 root hash over entries `0..size-1`. */
  root: Hash;
  /** When the appliance signed it (whole seconds). */
  time: Date;
}

/** A checkpoint with its note text and detached CMS signature (DER). */
export interface SignedCheckpoint extends CheckpointBody {
  note: string;
  signature: Uint8Array;
}

const enc = new TextEncoder();
const ORIGIN = /^[^\x00-\x1f\x7f]{1,200}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

/** RFC 3339 in UTC with whole seconds: the form the note carries and CMS signingTime can hold. */
export function checkpointTime(d: Date): string {
  return new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The note text of a checkpoint.
 * @throws AuditCheckpointInvalidError for an origin with line breaks, a bad size or root.
 */
export function formatCheckpoint(b: CheckpointBody): string {
  if (!ORIGIN.test(b.origin)) throw new AuditCheckpointInvalidError('origin: one line of 1..200 printable characters expected');
  if (!Number.isSafeInteger(b.size) || b.size < 0) throw new AuditCheckpointInvalidError(`size: expected a non-negative integer, got ${b.size}`);
  if (!(b.root instanceof Uint8Array) || b.root.length !== HASH_BYTES) throw new AuditCheckpointInvalidError(`root: expected ${HASH_BYTES} bytes`);
  return `${b.origin}\n${b.size}\n${Buffer.from(b.root).toString('base64')}\n${checkpointTime(b.time)}\n`;
}

/**
 * Parses a note made by {@link formatCheckpoint}; anything else (extra lines, a non-canonical
 * number, a short hash) is refused, so one statement has exactly one text.
 * @throws AuditCheckpointInvalidError naming the line that is wrong.
 */
export function parseCheckpoint(note: string): CheckpointBody {
  const lines = note.split('\n');
  if (lines.length !== 5 || lines[4] !== '') throw new AuditCheckpointInvalidError('expected 4 lines, each ended by a newline');
  const [origin, sizeText, rootText, timeText] = lines as [string, string, string, string];
  if (!ORIGIN.test(origin)) throw new AuditCheckpointInvalidError('line 1 (origin) is empty or has control characters');
  if (!/^(0|[1-9]\d{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw new AuditCheckpointInvalidError('line 2 (tree size) is not a canonical decimal integer');
  }
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== HASH_BYTES || root.toString('base64') !== rootText) {
    throw new AuditCheckpointInvalidError(`line 3 (root) is not the base64 of ${HASH_BYTES} bytes`);
  }
  if (!RFC3339.test(timeText) || Number.isNaN(Date.parse(timeText))) {
    throw new AuditCheckpointInvalidError('line 4 (time) is not an RFC 3339 UTC time with whole seconds');
  }
  return { origin, size: Number(sizeText), root: new Uint8Array(root), time: new Date(timeText) };
}

/** Parameters of {@link signCheckpoint}. */
export interface SignCheckpointParams extends CheckpointBody {
  /** The audit-signing certificate (EKU sigilAuditSigning). */
  cert: Certificate;
  key: CryptoKey;
  /** CA certificates to embed (issuing CA), so `openssl cms -verify` finds the path. Default none. */
  chain?: Certificate[];
}

/** Signs a checkpoint note as detached CMS whose signingTime equals the note's time. */
export async function signCheckpoint(p: SignCheckpointParams): Promise<SignedCheckpoint> {
  const note = formatCheckpoint(p);
  const time = new Date(checkpointTime(p.time));
  const signature = await signDetached({
    content: enc.encode(note),
    signerCert: p.cert,
    signerKey: p.key,
    signingTime: time,
    ...(p.chain ? { chain: p.chain } : {}),
  });
  return { origin: p.origin, size: p.size, root: p.root, time, note, signature };
}

/** Why a checkpoint was refused. */
export type CheckpointFailureReason = 'malformed' | 'bad-signature' | 'untrusted' | 'time-mismatch' | 'origin-mismatch';

/** Outcome of {@link verifyCheckpoint}. */
export type CheckpointVerification =
  | { ok: true; checkpoint: CheckpointBody; signer: Certificate }
  | { ok: false; reason: CheckpointFailureReason; detail: string };

/** Trust for {@link verifyCheckpoint}. */
export interface CheckpointTrust {
  /** Pinned CA certificates (the root). */
  trustAnchors: Certificate[];
  /** Candidate intermediates (the issuing CA). */
  intermediates?: Certificate[];
  crls?: Crl[];
  /** The origin the checkpoint must name, when known. */
  origin?: string;
}

/**
 * Verifies a checkpoint: the note parses, the CMS signature is good over exactly the note bytes,
 * the signer chains to a trust anchor with the `audit` usage (EKU sigilAuditSigning) at the
 * checkpoint's time, and signingTime equals the note's time.
 */
export async function verifyCheckpoint(note: string, signature: Uint8Array, trust: CheckpointTrust): Promise<CheckpointVerification> {
  let body: CheckpointBody;
  try {
    body = parseCheckpoint(note);
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  if (trust.origin !== undefined && body.origin !== trust.origin) {
    return { ok: false, reason: 'origin-mismatch', detail: `checkpoint is of log "${body.origin}", expected "${trust.origin}"` };
  }
  const sig = await verifyDetached(signature, enc.encode(note));
  if (!sig.ok) return { ok: false, reason: sig.reason === 'malformed' ? 'malformed' : 'bad-signature', detail: sig.detail };
  if (sig.signingTime === undefined || sig.signingTime.getTime() !== body.time.getTime()) {
    return { ok: false, reason: 'time-mismatch', detail: `signingTime ${sig.signingTime?.toISOString() ?? '(none)'} differs from the note's ${checkpointTime(body.time)}` };
  }
  const chain = await validateCertificate(sig.signer, {
    trustAnchors: trust.trustAnchors,
    intermediates: trust.intermediates ?? [],
    ...(trust.crls ? { crls: trust.crls } : {}),
    at: body.time,
    usage: 'audit',
  });
  if (!chain.ok) return { ok: false, reason: 'untrusted', detail: `audit certificate: ${chain.reason}: ${chain.detail}` };
  return { ok: true, checkpoint: body, signer: sig.signer };
}
