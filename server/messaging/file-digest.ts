/**
 * A file's SHA-384 as vault.db stores it: sealed with the file's own key, like its chunks. In
 * clear, the digest of a file's plaintext let anyone holding vault.db — or a backup and the
 * master key, long after the file was destroyed — confirm a guessed document (a template, a
 * leaked copy), with who sent it where and when. Sealed, it goes when the file key goes.
 *
 * Stored as `sealed:<base64 of seal(file key, 48 digest bytes, digestAad)>`; '' while the upload
 * runs (discardIncompleteUploads looks for it). A plain base64 digest is a row written before
 * this: read as it is, and sealed at the next start ({@link sealLegacyDigests}).
 */
import { open, seal, type CryptoKey } from '../vault/index.js';
import { fileKeyId, type Ctx } from './context.js';

const SEALED = 'sealed:';

function digestAad(fileId: string): string {
  return `sigil-file-digest:${fileId}`;
}

/** The stored form of `sha384` (base64) for file `fileId`. */
export async function sealDigest(key: CryptoKey, fileId: string, sha384: string, random?: (n: number) => Uint8Array): Promise<string> {
  const sealed = await seal(key, Buffer.from(sha384, 'base64'), digestAad(fileId), random);
  return SEALED + Buffer.from(sealed).toString('base64');
}

/** The base64 SHA-384 from its stored form. @throws VaultDecryptError when it does not open. */
export async function openDigest(key: CryptoKey, fileId: string, stored: string): Promise<string> {
  if (!stored.startsWith(SEALED)) return stored;
  const plain = await open(key, Buffer.from(stored.slice(SEALED.length), 'base64'), digestAad(fileId));
  return Buffer.from(plain).toString('base64');
}

/**
 * Seals the digests still stored in clear (files uploaded before digests were sealed). Run at
 * start, before anything reads files; a file whose key is gone is left to the sweeps that
 * destroy it. Answers how many were sealed.
 */
export async function sealLegacyDigests(ctx: Ctx): Promise<number> {
  const rows = await ctx.db.all<{ id: string; sha384: string }>(`SELECT id, sha384 FROM msg_files WHERE sha384 != '' AND sha384 NOT LIKE 'sealed:%'`);
  let n = 0;
  for (const r of rows) {
    const key = await ctx.keys.messageKey(fileKeyId(r.id)).catch(() => undefined);
    if (!key) continue;
    const done = await ctx.db.run('UPDATE msg_files SET sha384 = ? WHERE id = ? AND sha384 = ?', [await sealDigest(key, r.id, r.sha384, ctx.random), r.id, r.sha384]);
    n += done.changes;
  }
  // The clear digests sit in freed pages and the WAL until overwritten: secure_delete zeroes the
  // pages, the checkpoint empties the WAL.
  if (n > 0) await ctx.db.checkpointTruncate();
  return n;
}
