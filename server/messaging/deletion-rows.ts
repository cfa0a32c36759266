/**
 * The rows a deletion removes, inside its vault transaction (issue 4, "Irreversible deletion"):
 * single messages with their attachments and replay guards, a whole conversation, one user's
 * correspondence. Each answers what it removed and, where keys must follow, which.
 */
import { fileKeyId, guardSubjects, messageSubject, type Ctx } from './context.js';
import type { KeysToDestroy } from './ports.js';
import { chunks, marks, type DbTx } from '../vault/index.js';

/** Bound parameters per `IN (…)` list: well below SQLite's limit, and one round trip per chunk, not per row. */
const IN_CHUNK = 500;

/** A message row to delete: its rowid (vault.db has no id index; message-lookup.ts), id and signed time. */
export interface MessageRef {
  rid: number;
  id: string;
  sent_at: string;
}

/** The columns of {@link MessageRef}, for the queries that find the rows. */
export const REF_COLS = 'rid, id, sent_at';

/**
 * Rows of the given messages (and their attachments) go, IN_CHUNK per statement; answers what
 * keys must follow (file keys, then one key per given message).
 */
export async function deleteMessageRows(ctx: Ctx, tx: DbTx, rows: readonly MessageRef[]): Promise<string[]> {
  const guardUntil = new Date(ctx.now().getTime() + 2 * ctx.config.clockSkewMs).toISOString();
  const fileKeys: string[] = [];
  for (const chunk of chunks(rows, IN_CHUNK)) {
    const ids = chunk.map((r) => r.id);
    const files = (await tx.all<{ id: string }>(`SELECT id FROM msg_files WHERE message IN (${marks(ids.length)})`, ids)).map((f) => f.id);
    for (const fs of chunks(files, IN_CHUNK)) {
      await tx.run(`DELETE FROM msg_file_chunks WHERE file IN (${marks(fs.length)})`, fs);
      await tx.run(`DELETE FROM msg_files WHERE id IN (${marks(fs.length)})`, fs);
    }
    await tx.run(`DELETE FROM msg_messages WHERE rid IN (${marks(chunk.length)})`, chunk.map((r) => r.rid));
    fileKeys.push(...files.map(fileKeyId));
  }
  await guardReplays(ctx, tx, rows, guardUntil);
  return [...fileKeys, ...rows.map((r) => r.id)];
}

/**
 * Keeps deleted ids from being accepted again. Only messages whose signed sentAt is still inside the
 * clock-skew window could be replayed (older ones fail the skew check), so only those are guarded.
 * Only single messages need this: a destroyed conversation guards its messages by being gone (see
 * {@link deleteConversationRows}).
 */
async function guardReplays(ctx: Ctx, tx: DbTx, rows: readonly { id: string; sent_at: string }[], guardUntil: string): Promise<void> {
  const replayableFrom = ctx.now().getTime() - ctx.config.clockSkewMs;
  const open = rows.filter((r) => Date.parse(r.sent_at) >= replayableFrom);
  await guardSubjects(tx, await Promise.all(open.map((r) => messageSubject(ctx, r.id))), guardUntil);
}

/**
 * Every row of a conversation goes, one statement per table. Answers how many messages it held.
 *
 * No replay guard rows: every message signs the conversation it belongs to, and a destroyed
 * conversation's id (random, never reused) no longer exists, so a resubmission is refused as
 * CONVERSATION_NOT_FOUND (and, were it cached, by the missing conversation key and the foreign key
 * of msg_messages). A keyed hash and a guard row per message made destroying a 100k group take
 * seconds (issue 8).
 */
export async function deleteConversationRows(tx: DbTx, convId: string): Promise<number> {
  await tx.run('DELETE FROM msg_file_chunks WHERE file IN (SELECT id FROM msg_files WHERE conversation = ?)', [convId]);
  await tx.run('DELETE FROM msg_files WHERE conversation = ?', [convId]);
  const { changes } = await tx.run('DELETE FROM msg_messages WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_marks WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_members WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_conversations WHERE id = ?', [convId]);
  return changes;
}

/**
 * Rows of one user's correspondence: their direct conversations whole, every message they sent
 * elsewhere, their pending uploads. Answers how many messages went, by conversation for the others,
 * and the direct conversations with their two members.
 */
export async function correspondenceRows(
  ctx: Ctx,
  tx: DbTx,
  login: string,
  keysGo: (k: KeysToDestroy) => void,
): Promise<{ count: number; byConv: Map<string, string[]>; directs: Map<string, string[]> }> {
  // Read in the transaction, not before it: a direct conversation opened while the deletion
  // waited for the write lock is the user's correspondence too, and must not survive it.
  const pairs = await tx.all<{ id: string; login: string }>(
    `SELECT pair.conversation AS id, pair.login FROM msg_conversations c
     JOIN msg_members m ON m.conversation = c.id JOIN msg_members pair ON pair.conversation = c.id
     WHERE c.kind = 'direct' AND m.login = ?`,
    [login],
  );
  const directs = new Map<string, string[]>();
  for (const { id, login: who } of pairs) directs.set(id, [...(directs.get(id) ?? []), who]);
  let n = 0;
  for (const d of directs.keys()) n += await deleteConversationRows(tx, d);
  const sent = await tx.all<MessageRef & { conversation: string }>(`SELECT ${REF_COLS}, conversation FROM msg_messages WHERE sender = ?`, [login]);
  const pending = (await tx.all<{ id: string }>(`SELECT id FROM msg_files WHERE uploader = ? AND state = 'pending'`, [login])).map((f) => f.id);
  for (const fs of chunks(pending, IN_CHUNK)) {
    await tx.run(`DELETE FROM msg_file_chunks WHERE file IN (${marks(fs.length)})`, fs);
    await tx.run(`DELETE FROM msg_files WHERE id IN (${marks(fs.length)})`, fs);
  }
  const keyIds = await deleteMessageRows(ctx, tx, sent);
  const byConv = new Map<string, string[]>();
  for (const s of sent) {
    const list = byConv.get(s.conversation);
    if (list) list.push(s.id);
    else byConv.set(s.conversation, [s.id]);
  }
  keysGo({ messageIds: [...keyIds, ...pending.map(fileKeyId)], conversationIds: [...directs.keys()] });
  return { count: n + sent.length, byConv, directs };
}
