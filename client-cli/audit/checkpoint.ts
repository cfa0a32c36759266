/**
 * Checkpoints on the auditor's side: the note (`<origin>\n<size>\n<base64 root>\n<RFC 3339
 * time>\n`, C2SP signed-note style), its detached CMS signature (RFC 5652 §5) by the appliance's
 * audit-signing certificate, checked against the pinned CA with the audit usage (EKU
 * sigilAuditSigning), and the saved copy an auditor keeps (`<profile>/audit/checkpoint.json`).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { Certificate, Crl, validateCertificate, verifyDetached } from '../../pki/index.js';
import { writeFileAtomic } from '../output-file.js';
import { SAVED_CHECKPOINT } from '../profile.js';
import { AuditFileError } from './errors.js';
import { HASH_BYTES, type Hash } from './merkle.js';

/** What a checkpoint states. */
export interface Checkpoint {
  origin: string;
  size: number;
  root: Hash;
  time: Date;
}

/** A checkpoint as carried: the note text and the signature (DER). */
export interface SignedNote {
  note: string;
  signature: Uint8Array;
}

/** What verifying a checkpoint trusts. */
export interface Trust {
  /** Pinned CA certificates (the profile's ca.pem, or `--ca`). */
  anchors: Certificate[];
  /** Served CA certificates offered as intermediates (they must chain to an anchor). */
  intermediates: Certificate[];
  crls: Crl[];
}

export type CheckpointCheck = { ok: true; checkpoint: Checkpoint; signer: Certificate } | { ok: false; detail: string };

/** Parses a note; `undefined` when it is not exactly in the one accepted form. */
export function parseNote(note: string): Checkpoint | undefined {
  const lines = note.split('\n');
  if (lines.length !== 5 || lines[4] !== '') return undefined;
  const [origin, sizeText, rootText, timeText] = lines as [string, string, string, string];
  if (!/^[^\x00-\x1f\x7f]{1,200}$/.test(origin) || !/^(0|[1-9]\d{0,15})$/.test(sizeText)) return undefined;
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== HASH_BYTES || root.toString('base64') !== rootText) return undefined;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(timeText) || Number.isNaN(Date.parse(timeText))) return undefined;
  return { origin, size: Number(sizeText), root: new Uint8Array(root), time: new Date(timeText) };
}

/**
 * Verifies a checkpoint: note form, CMS signature over exactly the note bytes, signingTime equal
 * to the note's time, and the signer valid for the audit usage at that time under `trust`.
 */
export async function checkCheckpoint(s: SignedNote, trust: Trust): Promise<CheckpointCheck> {
  const cp = parseNote(s.note);
  if (!cp) return { ok: false, detail: 'the checkpoint note is not in the expected form' };
  const sig = await verifyDetached(s.signature, new TextEncoder().encode(s.note));
  if (!sig.ok) return { ok: false, detail: `signature: ${sig.reason}: ${sig.detail}` };
  if (sig.signingTime?.getTime() !== cp.time.getTime()) return { ok: false, detail: "the signature's signingTime differs from the note's time" };
  const chain = await validateCertificate(sig.signer, {
    trustAnchors: trust.anchors,
    intermediates: trust.intermediates,
    crls: trust.crls,
    at: cp.time,
    usage: 'audit',
  });
  if (!chain.ok) return { ok: false, detail: `audit certificate ${sig.signer.subjectString}: ${chain.reason}: ${chain.detail}` };
  return { ok: true, checkpoint: cp, signer: sig.signer };
}

/** Trust from PEM texts: pinned anchors, served chain, optional CRL. */
export function trustFrom(pinnedPem: string, chainPem: string, crlPem?: string): Trust {
  const anchors = Certificate.fromPemBundle(pinnedPem);
  const intermediates = chainPem.trim() ? Certificate.fromPemBundle(chainPem).filter((c) => c.isCA) : [];
  return { anchors, intermediates, crls: crlPem && crlPem.trim() ? [Crl.fromPem(crlPem)] : [] };
}

/** The saved checkpoint file. */
export const SavedCheckpointSchema = z.object({
  version: z.literal(1),
  origin: z.string(),
  size: z.number().int().min(0),
  root: z.string(),
  time: z.string(),
  note: z.string(),
  signature: z.string(),
  savedAt: z.string(),
});
export type SavedCheckpoint = z.infer<typeof SavedCheckpointSchema>;

/** Default saved location inside a profile folder. */
export function savedCheckpointPath(profileDir: string): string {
  return join(profileDir, SAVED_CHECKPOINT);
}

/** Reads a saved checkpoint; undefined when the file does not exist. @throws AuditFileError when unreadable. */
export async function readSaved(path: string): Promise<SavedCheckpoint | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AuditFileError(path, 'cannot be read', err);
  }
  try {
    return SavedCheckpointSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new AuditFileError(path, 'is not a saved checkpoint', err);
  }
}

/**
 * Writes a saved checkpoint through a new hidden file with an unpredictable name, created
 * exclusively (never through a link planted at a guessable name), flushed, then renamed over it.
 */
export async function writeSaved(path: string, s: SignedNote, cp: Checkpoint, now: Date): Promise<SavedCheckpoint> {
  const saved: SavedCheckpoint = {
    version: 1,
    origin: cp.origin,
    size: cp.size,
    root: Buffer.from(cp.root).toString('base64'),
    time: cp.time.toISOString(),
    note: s.note,
    signature: Buffer.from(s.signature).toString('base64'),
    savedAt: now.toISOString(),
  };
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFileAtomic(path, JSON.stringify(saved, null, 2) + '\n', { mode: 0o644 });
  return saved;
}

/** The note and signature of a saved checkpoint. */
export function savedNote(s: SavedCheckpoint): SignedNote {
  return { note: s.note, signature: new Uint8Array(Buffer.from(s.signature, 'base64')) };
}
