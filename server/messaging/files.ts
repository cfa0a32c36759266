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
import { chunks, KeyNotFoundError, marks, open, seal, VaultConstraintError } from '../vault/index.js';
import {
  chunkAad,
  fileKeyId,
  newId,
  principalClearance,
  rank,
  requireMember,
  requireRoom,
  type Ctx,
} from './context.js';
import {
  ConversationNotFoundError,
  FileAttachedError,
  FileCorruptError,
  FileNotFoundError,
  FileTooLargeError,
  TooManyPendingUploadsError,
  UploadTruncatedError,
} from './errors.js';
import { openDigest, sealDigest } from './file-digest.js';
import { messageRow } from './message-lookup.js';
import type { Principal } from './ports.js';
import { checkRoom, insertPendingRow } from './upload-quota.js';
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
 * Admission comes first (upload-quota.ts): an upload that would pass the uploader's cap on pending
 * uploads is refused before its key or row exists.
 *
 * A destroy of the conversation may land anywhere in the upload (it takes the conversation key, the
 * file row and its chunks, and the file key under the CK): each step that can meet it says so, and
 * the upload answers CONVERSATION_NOT_FOUND, never a vault error or a receipt for a file that is gone.
 *
 * @throws ConversationNotFoundError | NotAMemberError | FileTooLargeError | UploadTruncatedError |
 *   TooManyPendingUploadsError
 */
export async function uploadFile(
  ctx: Ctx,
  p: Principal,
  convId: string,
  body: ReadableStream<Uint8Array> | null,
  expectedLength?: number,
): Promise<UploadResult> {
  await requireMember(ctx, p, convId);
  requireRoom(ctx);
  const max = ctx.config.maxFileBytes;
  if (expectedLength !== undefined && expectedLength > max) {
    throw new FileTooLargeError(`the file is ${expectedLength} bytes; the limit is ${max}`);
  }
  const { id, key, reserved } = await ctx.uploadAdmissions.run(p.login, () => admit(ctx, p.login, convId, expectedLength));
  // Announced: Content-Length holds the body to it. Not announced: what the cap left is the limit.
  const limit = expectedLength === undefined ? reserved : max;
  try {
    const hash = createHash('sha384');
    const chunkBytes = ctx.config.chunkBytes;
    let buf = new Uint8Array(chunkBytes);
    let fill = 0;
    let total = 0;
    let idx = 0;
    const flush = async (): Promise<void> => {
      // Each chunk, not only at admission: an upload under way when a deletion released the disk
      // reserve would otherwise pour itself into the room that release made for deletions.
      requireRoom(ctx);
      const plain = buf.subarray(0, fill);
      hash.update(plain);
      const sealed = await seal(key, plain, chunkAad(id, idx), ctx.random);
      try {
        await ctx.db.run('INSERT INTO msg_file_chunks (file, idx, data) VALUES (?, ?, ?)', [id, idx, sealed]);
      } catch (err) {
        // The chunk's foreign key: the file row went under the upload.
        if (err instanceof VaultConstraintError) throw await vanished(ctx, convId, id, err);
        throw err;
      }
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
          if (total > limit) throw tooMuch(ctx, limit);
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
    const stored = await sealDigest(key, id, sha384, ctx.random);
    const done = await ctx.db.run('UPDATE msg_files SET size = ?, sha384 = ?, chunk_count = ? WHERE id = ?', [total, stored, idx, id]);
    // No row to complete: answering the id would hand out a file that is already gone.
    if (done.changes !== 1) throw await vanished(ctx, convId, id);
    return { fileId: id, sha384, size: total };
  } catch (err) {
    await discardFailed(ctx, id);
    throw err;
  }
}

/**
 * Checks the uploader's room, then makes the file key and the pending row (keys before rows, as
 * every write here). Runs one at a time per uploader (`ctx.uploadAdmissions`).
 */
async function admit(ctx: Ctx, login: string, convId: string, length: number | undefined) {
  await checkRoom(ctx.db, ctx.config, login, length);
  const id = newId(ctx.random);
  const keyId = fileKeyId(id);
  const key = (
    await ctx.keys.createMessageKeys(convId, [keyId]).catch((err: unknown) => {
      // The conversation key went after the membership check: the conversation was destroyed.
      if (err instanceof KeyNotFoundError) throw destroyedDuring(convId, err);
      throw err;
    })
  ).get(keyId);
  if (!key) throw new FileNotFoundError('could not create the file key');
  try {
    // msg_files has no foreign key to the conversation: the row is written only while it exists,
    // else a destroy between the key and this row would leave an upload in no conversation.
    const row = await insertPendingRow(ctx.db, ctx.config, { id, conversation: convId, uploader: login, at: ctx.now().toISOString(), length });
    if (!row.ok) throw row.error ?? destroyedDuring(convId);
    return { id, key, reserved: row.reserved };
  } catch (err) {
    await discardFailed(ctx, id);
    throw err;
  }
}

/** An unannounced upload that streamed past its limit: the cap's remainder, or the file limit. */
function tooMuch(ctx: Ctx, limit: number): Error {
  if (limit < ctx.config.maxFileBytes) {
    return new TooManyPendingUploadsError(
      `the upload passed the ${limit} bytes left of your limit of ${ctx.config.maxPendingUploadBytes} for uploads not attached to any message; ` +
        'attach those to a message, or wait until they expire',
    );
  }
  return new FileTooLargeError(`the file exceeds the limit of ${limit} bytes`);
}

/**
 * A failed upload's clean-up: rows, then keys. The key goes even when no row did (none written, or
 * taken by a destroy): the upload never completed, so no message can hold it. A key that cannot go
 * now is retried (late-destruction.ts), not left until the next start.
 */
async function discardFailed(ctx: Ctx, id: string): Promise<void> {
  const keyId = fileKeyId(id);
  // Both free space: on a full disk (likely, when the upload failed) through the reserve.
  await ctx.room
    .freeing(() => deletePending(ctx, [id]))
    .then(() => ctx.room.freeing(() => ctx.keys.destroyMessageKeys([keyId])).catch((e: unknown) => {
      ctx.late.keys({ messageIds: [keyId] });
      throw e;
    }))
    .catch((e: unknown) => ctx.log('messaging.upload-cleanup-failed', errorFields(e)));
}

function destroyedDuring(convId: string, cause?: unknown): ConversationNotFoundError {
  return new ConversationNotFoundError(`conversation ${convId} was destroyed during the upload; nothing of it was kept`, { cause });
}

/**
 * Why an upload's file row is gone under it: its conversation was destroyed (the usual case), or,
 * the conversation still there, the row was discarded on its own (the uploader's correspondence
 * destroyed, or an upload outliving the pending TTL met the sweep).
 */
async function vanished(ctx: Ctx, convId: string, id: string, cause?: unknown): Promise<Error> {
  const file = await ctx.db.get('SELECT 1 AS x FROM msg_files WHERE id = ?', [id]);
  if (file) return cause instanceof Error ? cause : new Error(`upload ${id}: the file row was not updated`);
  const conv = await ctx.db.get('SELECT 1 AS x FROM msg_conversations WHERE id = ?', [convId]);
  if (!conv) return destroyedDuring(convId, cause);
  return new FileNotFoundError(`upload ${id} was discarded while it was being written; nothing of it was kept`, { cause });
}

/** Rows per statement when deleting uploads by id. */
const IN_CHUNK = 500;

/**
 * Deletes the rows of those uploads that are still pending, in one transaction, and answers their
 * ids. The state is checked here, not by whoever chose the ids: between a sweep's SELECT and this
 * transaction the writer may have attached an upload to a message (`final`), and it must stay.
 */
async function deletePending(ctx: Ctx, ids: readonly string[]): Promise<string[]> {
  return ctx.db.transaction(async (tx) => {
    const gone: string[] = [];
    for (const part of chunks(ids, IN_CHUNK)) {
      const q = marks(part.length);
      await tx.run(`DELETE FROM msg_file_chunks WHERE file IN (SELECT id FROM msg_files WHERE id IN (${q}) AND state = 'pending')`, part);
      const rows = await tx.all<{ id: string }>(`DELETE FROM msg_files WHERE id IN (${q}) AND state = 'pending' RETURNING id`, part);
      gone.push(...rows.map((r) => r.id));
    }
    return gone;
  });
}

/**
 * Removes uploads that are still pending: rows, then the keys of exactly the rows that went (an
 * upload attached meanwhile keeps its key). Answers how many went.
 */
async function discard(ctx: Ctx, ids: readonly string[]): Promise<number> {
  // Each step frees space: on a full disk, through the reserve (ports.ts SpaceReserve).
  const gone = await ctx.room.freeing(() => deletePending(ctx, ids));
  if (gone.length > 0) await destroyFileKeys(ctx, gone);
  return gone.length;
}

/**
 * Destroys the keys of uploads whose rows {@link deletePending} took. Their rows are gone, so no
 * sweep would find them again: a key that cannot go now is handed to late destruction, which
 * retries it, and the failure is still thrown for the caller to report.
 */
async function destroyFileKeys(ctx: Ctx, ids: readonly string[]): Promise<void> {
  await ctx.room.freeing(() => ctx.keys.destroyMessageKeys(ids.map(fileKeyId))).catch((e: unknown) => {
    ctx.late.keys({ messageIds: ids.map(fileKeyId) });
    throw e;
  });
}

/** What a discard answers. */
export interface Discarded {
  id: string;
  discarded: true;
}

/**
 * The uploader gives up one of their pending uploads (`DELETE /v1/files/:id`; `sigil send` after
 * its message failed), so it stops counting against their cap at once instead of at the sweep.
 * Chunks and row go in one transaction, then the key.
 *
 * Not audited, as uploads and the sweep are not: a pending upload was never part of any message,
 * and the audit trail records messages and their deletions. No TRUNCATE checkpoint of vault.db
 * either, as for a failed upload: what its WAL may still hold of the chunks is ciphertext under a
 * key that keys.db has destroyed and truncated from its own WAL.
 *
 * A message attaching the upload at the same moment: both write on vault.db's one connection, and
 * each checks `state = 'pending'` inside its own statement, so one of them wins. The message wins:
 * the upload stays, and this answers FILE_ATTACHED. The discard wins: the message is refused
 * (MESSAGE_ATTACHMENT_INVALID), never stored naming a file that is gone.
 *
 * @throws FileNotFoundError (no such upload, or another person's: one answer, no existence
 *   oracle) | FileAttachedError
 */
export async function discardUpload(ctx: Ctx, p: Principal, fileId: string): Promise<Discarded> {
  const notFound = (): FileNotFoundError => new FileNotFoundError(`file ${fileId} does not exist or is not visible to you`);
  const attached = (): FileAttachedError =>
    new FileAttachedError(`file ${fileId} is attached to a message; delete the message instead`);
  // Only the uploader may know an upload exists, so only they learn whether it was attached.
  const f = await ctx.db.get<{ uploader: string; state: string }>('SELECT uploader, state FROM msg_files WHERE id = ?', [fileId]);
  if (f?.uploader !== p.login) throw notFound();
  if (f.state !== 'pending') throw attached();
  const gone = await ctx.room.freeing(() => deletePending(ctx, [fileId]));
  if (gone.length === 0) {
    // Changed since the read above: a message attached it, or the sweep or a second discard took it.
    const now = await ctx.db.get<{ state: string }>('SELECT state FROM msg_files WHERE id = ?', [fileId]);
    throw now ? attached() : notFound();
  }
  // The rows are gone: the upload is discarded whatever keys.db does now. A key that fails
  // (a full disk) is retried by late destruction; answering an error would have the client retry
  // a discard that already happened.
  await destroyFileKeys(ctx, gone).catch((e: unknown) => ctx.log('messaging.discard-key-deferred', { file: fileId, ...errorFields(e) }));
  return { id: fileId, discarded: true };
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
  const sha384 = await openDigest(key, f.id, f.sha384);
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
          if (hash.digest('base64') !== sha384) throw new FileCorruptError(`file ${f.id}: SHA-384 differs from the stored digest`);
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
  return { fileId: f.id, size: f.size, sha384, stream };
}

/**
 * Destroys uploads that never finished: a row whose digest was never written was cut off mid-stream
 * by a crash (kill -9, power loss), since a live upload that fails cleans up after itself. Only
 * called at start, when no upload can be in flight. Answers how many went.
 */
export async function discardIncompleteUploads(ctx: Ctx): Promise<number> {
  const cut = await ctx.db.all<{ id: string }>(`SELECT id FROM msg_files WHERE state = 'pending' AND sha384 = ''`);
  if (cut.length === 0) return 0;
  const n = await discard(ctx, cut.map((o) => o.id));
  await ctx.room.freeing(() => ctx.db.checkpointTruncate());
  return n;
}

/**
 * Destroys pending uploads older than the TTL. Answers how many went. The SELECT runs outside any
 * transaction (on the reader), so it only nominates: {@link discard} re-checks the state.
 */
export async function sweepPendingFiles(ctx: Ctx): Promise<number> {
  const cutoff = new Date(ctx.now().getTime() - ctx.config.pendingFileTtlMs).toISOString();
  const old = await ctx.db.all<{ id: string }>(`SELECT id FROM msg_files WHERE state = 'pending' AND created_at < ?`, [cutoff]);
  if (old.length === 0) return 0;
  const n = await discard(ctx, old.map((o) => o.id));
  if (n > 0) await ctx.room.freeing(() => ctx.db.checkpointTruncate());
  return n;
}
