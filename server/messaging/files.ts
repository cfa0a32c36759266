/**
 * Attachments (issue 4, "Files"): streamed in, digested, cut into chunks, each chunk sealed with
 * the file's own key (a DEK in keys.db under the conversation's CK) and stored in vault.db —
 * never as a file in the file system. An upload stays `pending` until a signed message names it
 * by id, digest and size; a failed, truncated or oversized upload leaves nothing behind.
 *
 * SHA-384 here uses node:crypto's incremental hash: WebCrypto's digest is one-shot and a file may
 * be 100 MiB. It hashes 1 MiB chunks (about a millisecond each), not the per-message hot path.
 */
import { createHash } from 'node:crypto';
import { open, seal } from '../vault/index.js';
import {
  chunkAad,
  fileKeyId,
  newId,
  principalClearance,
  rank,
  requireMember,
  type Ctx,
} from './context.js';
import { FileCorruptError, FileNotFoundError, FileTooLargeError, UploadTruncatedError } from './errors.js';
import { messageRow } from './message-lookup.js';
import type { Principal } from './ports.js';
import { errorFields } from '../log.js';

/** What an upload answers. */
export interface UploadResult {
  fileId: string;
  sha384: string;
  size: number;
}

/**
 * Stores an upload. `expectedLength` (Content-Length) lets a short body be told from a complete
 * one; without it, a stream that errors (client abort) is the truncation signal.
 *
 * @throws ConversationNotFoundError | NotAMemberError | FileTooLargeError | UploadTruncatedError
 */
export async function uploadFile(
  ctx: Ctx,
  p: Principal,
  convId: string,
  body: ReadableStream<Uint8Array> | null,
  expectedLength?: number,
): Promise<UploadResult> {
  await requireMember(ctx, p, convId);
  const max = ctx.config.maxFileBytes;
  if (expectedLength !== undefined && expectedLength > max) {
    throw new FileTooLargeError(`the file is ${expectedLength} bytes; the limit is ${max}`);
  }
  const id = newId(ctx.random);
  const keyId = fileKeyId(id);
  const key = (await ctx.keys.createMessageKeys(convId, [keyId])).get(keyId);
  if (!key) throw new FileNotFoundError('could not create the file key');
  const at = ctx.now().toISOString();
  try {
    await ctx.db.run(
      `INSERT INTO msg_files (id, conversation, uploader, state, size, sha384, chunk_count, created_at)
       VALUES (?, ?, ?, 'pending', 0, '', 0, ?)`,
      [id, convId, p.login, at],
    );
    const hash = createHash('sha384');
    const chunkBytes = ctx.config.chunkBytes;
    let buf = new Uint8Array(chunkBytes);
    let fill = 0;
    let total = 0;
    let idx = 0;
    const flush = async (): Promise<void> => {
      const plain = buf.subarray(0, fill);
      hash.update(plain);
      const sealed = await seal(key, plain, chunkAad(id, idx), ctx.random);
      await ctx.db.run('INSERT INTO msg_file_chunks (file, idx, data) VALUES (?, ?, ?)', [id, idx, sealed]);
      idx++;
      buf = new Uint8Array(chunkBytes);
      fill = 0;
    };
    if (body) {
      const reader = body.getReader();
      try {
        for (;;) {
          let r: Awaited<ReturnType<typeof reader.read>>;
          try {
            r = await reader.read();
          } catch (err) {
            throw new UploadTruncatedError(`the upload was aborted after ${total} bytes`, { cause: err });
          }
          if (r.done) break;
          let data = r.value;
          total += data.length;
          if (total > max) throw new FileTooLargeError(`the file exceeds the limit of ${max} bytes`);
          while (data.length) {
            const n = Math.min(data.length, chunkBytes - fill);
            buf.set(data.subarray(0, n), fill);
            fill += n;
            data = data.subarray(n);
            if (fill === chunkBytes) await flush();
          }
        }
      } finally {
        reader.releaseLock();
      }
    }
    if (expectedLength !== undefined && total !== expectedLength) {
      throw new UploadTruncatedError(`the upload ended after ${total} of ${expectedLength} announced bytes`);
    }
    if (fill > 0 || idx === 0) await flush();
    const sha384 = hash.digest('base64');
    await ctx.db.run('UPDATE msg_files SET size = ?, sha384 = ?, chunk_count = ? WHERE id = ?', [total, sha384, idx, id]);
    return { fileId: id, sha384, size: total };
  } catch (err) {
    await discard(ctx, [id]).catch((e: unknown) => ctx.log('messaging.upload-cleanup-failed', errorFields(e)));
    throw err;
  }
}

/** Removes uploads (rows, then keys). */
async function discard(ctx: Ctx, ids: readonly string[]): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    for (const id of ids) {
      await tx.run('DELETE FROM msg_file_chunks WHERE file = ?', [id]);
      await tx.run('DELETE FROM msg_files WHERE id = ?', [id]);
    }
  });
  await ctx.keys.destroyMessageKeys(ids.map(fileKeyId));
}

interface FileRow {
  id: string;
  conversation: string;
  uploader: string;
  state: 'pending' | 'final';
  message: string | null;
  size: number;
  sha384: string;
  chunk_count: number;
}

/** A download: size and digest known up front, bytes streamed chunk by chunk. */
export interface Download {
  fileId: string;
  size: number;
  sha384: string;
  stream: ReadableStream<Uint8Array>;
}

/**
 * Opens a file for reading: members of its conversation cleared for the message that carries it,
 * or its uploader while it is pending. The SHA-384 is re-checked as the last chunk goes out; on a
 * mismatch the stream errors instead of ending, so the client sees a broken transfer.
 *
 * @throws FileNotFoundError
 */
export async function downloadFile(ctx: Ctx, p: Principal, fileId: string): Promise<Download> {
  const notFound = (): FileNotFoundError => new FileNotFoundError(`file ${fileId} does not exist or is not visible to you`);
  const f = await ctx.db.get<FileRow>(
    'SELECT id, conversation, uploader, state, message, size, sha384, chunk_count FROM msg_files WHERE id = ?',
    [fileId],
  );
  if (!f) throw notFound();
  if (f.state === 'pending') {
    if (f.uploader !== p.login || f.chunk_count === 0) throw notFound();
  } else {
    const conv = await ctx.members.get(f.conversation);
    if (!conv?.members.has(p.login)) throw notFound();
    const msg = f.message === null ? undefined : await messageRow<{ id: string; label_rank: number }>(ctx.keys, ctx.db, f.message, 'id, label_rank');
    if (!msg || msg.label_rank > rank(principalClearance(p))) throw notFound();
  }
  const key = await ctx.keys.messageKey(fileKeyId(f.id)).catch(() => {
    throw notFound();
  });
  const hash = createHash('sha384');
  let idx = 0;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const row = await ctx.db.get<{ data: Uint8Array }>('SELECT data FROM msg_file_chunks WHERE file = ? AND idx = ?', [f.id, idx]);
        if (!row) throw new FileCorruptError(`file ${f.id}: chunk ${idx} of ${f.chunk_count} is missing`);
        const plain = await open(key, row.data, chunkAad(f.id, idx));
        hash.update(plain);
        idx++;
        if (idx === f.chunk_count) {
          if (hash.digest('base64') !== f.sha384) throw new FileCorruptError(`file ${f.id}: SHA-384 differs from the stored digest`);
          controller.enqueue(plain);
          controller.close();
        } else {
          controller.enqueue(plain);
        }
      } catch (err) {
        ctx.log('messaging.download-failed', { file: f.id, ...errorFields(err) });
        controller.error(err);
      }
    },
  });
  return { fileId: f.id, size: f.size, sha384: f.sha384, stream };
}

/**
 * Destroys uploads that never finished: a row whose digest was never written was cut off mid-stream
 * by a crash (kill -9, power loss), since a live upload that fails cleans up after itself. Only
 * called at start, when no upload can be in flight. Answers how many went.
 */
export async function discardIncompleteUploads(ctx: Ctx): Promise<number> {
  const cut = await ctx.db.all<{ id: string }>(`SELECT id FROM msg_files WHERE state = 'pending' AND sha384 = ''`);
  if (cut.length === 0) return 0;
  await discard(ctx, cut.map((o) => o.id));
  await ctx.db.checkpointTruncate();
  return cut.length;
}

/** Destroys pending uploads older than the TTL. Answers how many went. */
export async function sweepPendingFiles(ctx: Ctx): Promise<number> {
  const cutoff = new Date(ctx.now().getTime() - ctx.config.pendingFileTtlMs).toISOString();
  const old = await ctx.db.all<{ id: string }>(`SELECT id FROM msg_files WHERE state = 'pending' AND created_at < ?`, [cutoff]);
  if (old.length === 0) return 0;
  await discard(ctx, old.map((o) => o.id));
  await ctx.db.checkpointTruncate();
  return old.length;
}
