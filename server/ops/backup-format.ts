/**
 * The backup file format (Sigil's own; no standard container fits "SQLite file sealed in chunks
 * under a key wrapped by the appliance master key"):
 *
 * ```
 * "SIGILBK1"                      8 bytes magic (format version 1)
 * u32 BE n ‖ header (n bytes)     UTF-8 JSON, see BackupHeader; not secret, authenticated below
 * frames: u32 BE m ‖ sealed (m)   frame 0 = manifest JSON, frames 1.. = vault.db in chunks
 * ```
 *
 * Each frame is `seal(backupKey, plaintext, AAD)` (AES-256-GCM, `0x01 ‖ IV ‖ ct ‖ tag`) with
 * `AAD = sigil-backup:v1:<SHA-256 of the header bytes>:<frame index>:<more|end>`, so a changed
 * header, a dropped, swapped or repeated frame, or a stream cut after any frame fails to open.
 * The backup key is fresh per backup and wrapped under the master key with AAD
 * `sigil-backup:<id>`: the file alone is useless without the master key.
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { z } from 'zod';
import { SEAL_OVERHEAD } from '../vault/index.js';
import { BackupCorruptError, BackupFormatError } from './errors.js';

/** Magic bytes at the start of every backup file. */
export const BACKUP_MAGIC = Buffer.from('SIGILBK1', 'ascii');
/** Plaintext bytes per frame by default (1 MiB: bounded memory whatever vault.db's size). */
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);

/** The header: what restore needs before it can decrypt, plus facts for the report. */
export const BackupHeaderSchema = z.object({
  format: z.literal('sigil-backup'),
  v: z.literal(1),
  /** 16 random bytes, base64url. */
  id: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
  createdAt: z.string(),
  appliance: z.object({ org: z.string(), profile: z.string() }),
  /** `vault-key.json` when the backup was made: re-derives that master key from its secret. */
  vaultKey: z.object({ kind: z.enum(['passphrase', 'keyfile']), check: b64 }).passthrough(),
  /** The backup key wrapped under the master key, base64. */
  wrappedKey: b64,
  chunkBytes: z.number().int().positive().max(MAX_CHUNK_BYTES),
  /** Size of vault.db's snapshot in bytes. */
  dbBytes: z.number().int().nonnegative(),
  /** What the snapshot held (no content). */
  counts: z.record(z.string(), z.number().int().nonnegative()),
  audit: z.object({ size: z.number().int().nonnegative(), root: z.string() }),
});
/** Parsed backup header. */
export type BackupHeader = z.infer<typeof BackupHeaderSchema>;

/** Frame 0: public files of the data directory (certificates, configuration), base64 by path. */
export const ManifestSchema = z.object({ files: z.record(z.string(), b64) });
export type Manifest = z.infer<typeof ManifestSchema>;

/** AAD of the wrapped backup key. */
export const backupKeyAad = (id: string): string => `sigil-backup:${id}`;

/** AAD of frame `idx`. */
export function frameAad(headerDigest: string, idx: number, last: boolean): string {
  return `sigil-backup:v1:${headerDigest}:${idx}:${last ? 'end' : 'more'}`;
}

/** SHA-256 (hex) of the header bytes, bound into every frame. */
export function headerDigest(headerBytes: Uint8Array): string {
  return createHash('sha256').update(headerBytes).digest('hex');
}

/** Encodes magic ‖ length ‖ header. */
export function encodePreamble(header: BackupHeader): { bytes: Buffer; digest: string } {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return { bytes: Buffer.concat([BACKUP_MAGIC, len, json]), digest: headerDigest(json) };
}

/** Encodes one frame's length prefix and body. */
export function encodeFrame(sealed: Uint8Array): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(sealed.length);
  return Buffer.concat([len, sealed]);
}

async function readExactly(fh: FileHandle, pos: number, n: number): Promise<Buffer | undefined> {
  const buf = Buffer.alloc(n);
  let got = 0;
  while (got < n) {
    const { bytesRead } = await fh.read(buf, got, n - got, pos + got);
    if (bytesRead === 0) return got === 0 ? undefined : buf.subarray(0, got);
    got += bytesRead;
  }
  return buf;
}

/**
 * Reads and validates the preamble.
 * @returns the header, its digest and the offset of frame 0.
 * @throws BackupFormatError if the file is not a version-1 Sigil backup.
 */
export async function readPreamble(fh: FileHandle): Promise<{ header: BackupHeader; digest: string; offset: number }> {
  const head = await readExactly(fh, 0, 12);
  if (!head || head.length < 12 || !head.subarray(0, 8).equals(BACKUP_MAGIC)) {
    throw new BackupFormatError('not a Sigil backup: expected the magic "SIGILBK1" at the start of the file');
  }
  const n = head.readUInt32BE(8);
  if (n === 0 || n > MAX_HEADER_BYTES) throw new BackupFormatError(`backup header: expected 1..${MAX_HEADER_BYTES} bytes, got ${n}`);
  const json = await readExactly(fh, 12, n);
  if (!json || json.length !== n) throw new BackupFormatError('backup header is cut short');
  let parsed: unknown;
  try {
    parsed = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new BackupFormatError('backup header is not JSON', { cause: err });
  }
  const r = BackupHeaderSchema.safeParse(parsed);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new BackupFormatError(`backup header: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, { cause: r.error });
  }
  return { header: r.data, digest: headerDigest(json), offset: 12 + n };
}

/**
 * Iterates the sealed frames from `offset`, each with its index. The caller opens them (the AAD
 * marks the last one); this only enforces sizes and that the file ends on a frame boundary.
 * @throws BackupCorruptError on a cut or oversized frame.
 */
export async function* readFrames(fh: FileHandle, offset: number, chunkBytes: number): AsyncGenerator<{ idx: number; sealed: Buffer }> {
  let pos = offset;
  const max = Math.max(chunkBytes, MAX_HEADER_BYTES * 16) + SEAL_OVERHEAD;
  for (let idx = 0; ; idx++) {
    const len = await readExactly(fh, pos, 4);
    if (!len) return;
    if (len.length < 4) throw new BackupCorruptError(`backup frame ${idx}: length prefix cut short`);
    const m = len.readUInt32BE(0);
    if (m < SEAL_OVERHEAD || m > max) throw new BackupCorruptError(`backup frame ${idx}: expected ${SEAL_OVERHEAD}..${max} bytes, got ${m}`);
    const sealed = await readExactly(fh, pos + 4, m);
    if (!sealed || sealed.length !== m) throw new BackupCorruptError(`backup frame ${idx}: expected ${m} bytes, the file ends first`);
    yield { idx, sealed };
    pos += 4 + m;
  }
}
