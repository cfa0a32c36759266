/**
 * Irreversible deletion (issue 4, "Irreversible deletion").
 *
 * Who may delete what: a sender their own message (for everyone); a participant a direct
 * conversation; a group owner the whole group; an officer anything, including all of one user's
 * correspondence. Every deletion is asked for with a `sigil-delete` statement the deleter signs.
 *
 * Order, so that a crash at any point leaves nothing readable behind for long: rows in one
 * vault transaction (secure_delete zeroes their pages) → the keys that opened them destroyed in
 * keys.db (so a copy or backup of vault.db taken earlier holds ciphertext nothing can open) →
 * `wal_checkpoint(TRUNCATE)` on vault.db (the key store truncates keys.db's WAL itself) → a
 * content-free tombstone in the audit trail: what (keyed hash), who, when, why, how many, and the
 * deleter's signature over the statement.
 */
import {
  fileKeyId,
  fromB64,
  messageSubject,
  isOfficer,
  newId,
  principalClearance,
  rank,
  type Ctx,
} from './context.js';
import {
  ClockSkewError,
  ConversationNotFoundError,
  DeleteStatementInvalidError,
  ForbiddenError,
  GroupNotFoundError,
  MessageNotFoundError,
  PeerNotFoundError,
} from './errors.js';
import { parseDeleteStatement } from './header.js';
import type { Principal } from './ports.js';
import type { DbTx } from '../vault/index.js';

/** What a deleter posts. */
export interface DeleteRequest {
  reason: string;
  /** The `sigil-delete` canonical JSON exactly as signed. */
  statement: string;
  /** Detached CMS over the statement, base64. */
  signature: string;
}

/** The content-free record of a deletion (API.md `tombstone`). */
export interface Tombstone {
  id: string;
  /** HMAC of the target (`message:<id>` …) under the appliance's audit key. */
  target: string;
  deletedBy: string;
  at: string;
  reason: string;
  count: number;
  audit?: { index: number };
}

const encoder = new TextEncoder();

/** Checks the deleter's signed statement. @throws DeleteStatementInvalidError | ClockSkewError */
async function checkStatement(ctx: Ctx, p: Principal, req: DeleteRequest, target: string): Promise<string> {
  const st = parseDeleteStatement(req.statement, { target, reason: req.reason });
  const now = ctx.now();
  const skew = Math.abs(Date.parse(st.at) - now.getTime());
  if (skew > ctx.config.clockSkewMs) {
    throw new ClockSkewError(`statement time ${st.at} is ${Math.round(skew / 1000)} s from server time ${now.toISOString()}`);
  }
  const sig = fromB64(req.signature, 'signature', (m) => new DeleteStatementInvalidError(m));
  const check = await ctx.verify(sig, encoder.encode(req.statement), p.certificate);
  if (!check.ok) throw new DeleteStatementInvalidError(`statement signature does not verify: ${check.reason}: ${check.detail}`);
  return req.signature;
}

/** Rows of the given messages (and their attachments) go; answers what keys must follow. */
async function deleteMessageRows(ctx: Ctx, tx: DbTx, ids: readonly string[]): Promise<string[]> {
  const keyIds: string[] = [];
  const guardUntil = new Date(ctx.now().getTime() + 2 * ctx.config.clockSkewMs).toISOString();
  const files = await tx.prepare('SELECT id FROM msg_files WHERE message = ?');
  const delChunks = await tx.prepare('DELETE FROM msg_file_chunks WHERE file = ?');
  const delFile = await tx.prepare('DELETE FROM msg_files WHERE id = ?');
  const delMsg = await tx.prepare('DELETE FROM msg_messages WHERE id = ?');
  const sent: { id: string; sent_at: string }[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500);
    sent.push(...(await tx.all<{ id: string; sent_at: string }>(`SELECT id, sent_at FROM msg_messages WHERE id IN (${chunk.map(() => '?').join(',')})`, [...chunk])));
  }
  await guardReplays(ctx, tx, sent, guardUntil);
  try {
    for (const id of ids) {
      for (const f of await files.all<{ id: string }>([id])) {
        await delChunks.run([f.id]);
        await delFile.run([f.id]);
        keyIds.push(fileKeyId(f.id));
      }
      await delMsg.run([id]);
      keyIds.push(id);
    }
  } finally {
    for (const s of [files, delChunks, delFile, delMsg]) await s.finalize();
  }
  return keyIds;
}

/**
 * Keeps deleted ids from being accepted again. Only messages whose signed sentAt is still inside the
 * clock-skew window could be replayed (older ones fail the skew check), so only those are guarded:
 * destroying a 100k-message group must not hash and insert 100k guard rows (bench/volume, issue 8).
 */
async function guardReplays(ctx: Ctx, tx: DbTx, rows: readonly { id: string; sent_at: string }[], guardUntil: string): Promise<void> {
  const replayableFrom = ctx.now().getTime() - ctx.config.clockSkewMs;
  const open = rows.filter((r) => Date.parse(r.sent_at) >= replayableFrom);
  for (let i = 0; i < open.length; i += 400) {
    const chunk = open.slice(i, i + 400);
    const hashes = await Promise.all(chunk.map((r) => messageSubject(ctx, r.id)));
    await tx.run(
      `INSERT OR REPLACE INTO msg_replay_guard (id_hash, until) VALUES ${chunk.map(() => '(?, ?)').join(',')}`,
      hashes.flatMap((h) => [h, guardUntil]),
    );
  }
}

/** Every row of a conversation goes. Answers how many messages it held. */
async function deleteConversationRows(ctx: Ctx, tx: DbTx, convId: string): Promise<number> {
  const guardUntil = new Date(ctx.now().getTime() + 2 * ctx.config.clockSkewMs).toISOString();
  const ids = await tx.all<{ id: string; sent_at: string }>('SELECT id, sent_at FROM msg_messages WHERE conversation = ?', [convId]);
  await guardReplays(ctx, tx, ids, guardUntil);
  await tx.run('DELETE FROM msg_file_chunks WHERE file IN (SELECT id FROM msg_files WHERE conversation = ?)', [convId]);
  await tx.run('DELETE FROM msg_files WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_messages WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_marks WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_members WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_conversations WHERE id = ?', [convId]);
  return ids.length;
}

/** Writes the tombstone to the audit trail and returns it. */
async function tombstone(
  ctx: Ctx,
  t: { target: string; deletedBy: string; reason: string; count: number; signature?: string },
): Promise<Tombstone> {
  const at = ctx.now();
  const ts: Tombstone = {
    id: newId(ctx.random),
    target: await ctx.keyedHash(t.target),
    deletedBy: t.deletedBy,
    at: at.toISOString(),
    reason: t.reason,
    count: t.count,
  };
  if (ctx.audit) {
    const [entry] = (await ctx.audit.append([
      {
        type: 'deletion',
        actor: t.deletedBy,
        subject: ts.target,
        at,
        data: {
          tombstone: ts.id,
          reason: ts.reason,
          count: ts.count,
          ...(t.signature !== undefined ? { statementSignature: t.signature } : {}),
        },
      },
    ])) ?? [];
    if (entry) ts.audit = { index: Number(entry.seq) };
  }
  return ts;
}

/** After rows are gone: keys, then WAL truncation. */
async function finish(ctx: Ctx, keys: { messages?: string[]; conversations?: string[] }): Promise<void> {
  if (keys.messages?.length) await ctx.keys.destroyMessageKeys(keys.messages);
  for (const c of keys.conversations ?? []) await ctx.keys.destroyConversation(c);
  await ctx.db.checkpointTruncate();
}

/**
 * Deletes one message for everyone: its sender, or an officer.
 *
 * @throws MessageNotFoundError | ForbiddenError | DeleteStatementInvalidError | ClockSkewError
 */
export async function deleteMessage(ctx: Ctx, p: Principal, id: string, req: DeleteRequest): Promise<Tombstone> {
  const row = await ctx.db.get<{ conversation: string; sender: string; label_rank: number }>(
    'SELECT conversation, sender, label_rank FROM msg_messages WHERE id = ?',
    [id],
  );
  const conv = row ? await ctx.members.get(row.conversation) : undefined;
  const visible =
    row && conv && (isOfficer(p) || (conv.members.has(p.login) && row.label_rank <= rank(principalClearance(p))));
  if (!row || !conv || !visible) throw new MessageNotFoundError(`message ${id} does not exist or is not visible to you`);
  if (row.sender !== p.login && !isOfficer(p)) throw new ForbiddenError('only the sender or an officer may delete a message');
  const target = `message:${id}`;
  const signature = await checkStatement(ctx, p, req, target);
  const keyIds = await ctx.db.transaction((tx) => deleteMessageRows(ctx, tx, [id]));
  await finish(ctx, { messages: keyIds });
  ctx.hub.publishDeleted(conv.members.keys(), { conversation: conv.id, ids: [id] });
  return tombstone(ctx, { target, deletedBy: p.login, reason: req.reason, count: 1, signature });
}

/**
 * Destroys a whole conversation, its history and its key: a participant of a direct
 * conversation, a group's owner, or an officer.
 *
 * @throws ConversationNotFoundError | ForbiddenError | DeleteStatementInvalidError | ClockSkewError
 */
export async function deleteConversation(ctx: Ctx, p: Principal, convId: string, req: DeleteRequest): Promise<Tombstone> {
  const conv = await ctx.members.get(convId);
  const role = conv?.members.get(p.login);
  if (!conv || (!role && !isOfficer(p))) throw new ConversationNotFoundError(`conversation ${convId} does not exist or is not yours`);
  if (conv.kind === 'group' && role !== 'owner' && !isOfficer(p)) {
    throw new ForbiddenError(`only owners of ${conv.name ?? convId} and officers may destroy the group`);
  }
  const target = `conversation:${convId}`;
  const signature = await checkStatement(ctx, p, req, target);
  const count = await ctx.db.transaction((tx) => deleteConversationRows(ctx, tx, convId));
  ctx.members.invalidate(convId);
  await finish(ctx, { conversations: [convId] });
  ctx.hub.publishDeleted(conv.members.keys(), { conversation: convId });
  return tombstone(ctx, { target, deletedBy: p.login, reason: req.reason, count, signature });
}

/** Destroys a group by name (owners and officers); the statement names `conversation:<id>`. */
export async function deleteGroup(ctx: Ctx, p: Principal, name: string, req: DeleteRequest): Promise<Tombstone> {
  const row = await ctx.db.get<{ id: string }>(`SELECT id FROM msg_conversations WHERE kind = 'group' AND name = ?`, [name]);
  const conv = row ? await ctx.members.get(row.id) : undefined;
  if (!row || !conv || (!conv.members.has(p.login) && !isOfficer(p))) throw new GroupNotFoundError(`no group named ${name}`);
  return deleteConversation(ctx, p, row.id, req);
}

/**
 * An officer destroys all of one user's correspondence: every message they sent anywhere and
 * every direct conversation they are in (both sides of it).
 *
 * @throws ForbiddenError (not an officer) | PeerNotFoundError | DeleteStatementInvalidError
 */
export async function deleteUserCorrespondence(ctx: Ctx, p: Principal, login: string, req: DeleteRequest): Promise<Tombstone> {
  if (!isOfficer(p)) throw new ForbiddenError("only officers may destroy a user's correspondence");
  const known = await ctx.directory.person(login);
  const involved = await ctx.db.get('SELECT 1 AS x FROM msg_members WHERE login = ? UNION SELECT 1 FROM msg_messages WHERE sender = ?', [login, login]);
  if (!known && !involved) throw new PeerNotFoundError(`no account ${login}`);
  const target = `user:${login}`;
  const signature = await checkStatement(ctx, p, req, target);
  const directs = await ctx.db.all<{ id: string }>(
    `SELECT c.id FROM msg_conversations c JOIN msg_members m ON m.conversation = c.id
     WHERE c.kind = 'direct' AND m.login = ?`,
    [login],
  );
  const notified = new Map<string, Iterable<string>>();
  for (const d of directs) {
    const conv = await ctx.members.get(d.id);
    if (conv) notified.set(d.id, [...conv.members.keys()]);
  }
  const { count, keyIds, byConv } = await ctx.db.transaction(async (tx) => {
    let n = 0;
    for (const d of directs) n += await deleteConversationRows(ctx, tx, d.id);
    const sent = await tx.all<{ id: string; conversation: string }>(
      'SELECT id, conversation FROM msg_messages WHERE sender = ?',
      [login],
    );
    const pending = await tx.all<{ id: string }>(`SELECT id FROM msg_files WHERE uploader = ? AND state = 'pending'`, [login]);
    for (const f of pending) {
      await tx.run('DELETE FROM msg_file_chunks WHERE file = ?', [f.id]);
      await tx.run('DELETE FROM msg_files WHERE id = ?', [f.id]);
    }
    const ids = sent.map((s) => s.id);
    const k = await deleteMessageRows(ctx, tx, ids);
    const groups = new Map<string, string[]>();
    for (const s of sent) groups.set(s.conversation, [...(groups.get(s.conversation) ?? []), s.id]);
    return { count: n + ids.length, keyIds: [...k, ...pending.map((f) => fileKeyId(f.id))], byConv: groups };
  });
  for (const d of directs) ctx.members.invalidate(d.id);
  await finish(ctx, { messages: keyIds, conversations: directs.map((d) => d.id) });
  for (const [conv, logins] of notified) ctx.hub.publishDeleted(logins, { conversation: conv });
  for (const [convId, ids] of byConv) {
    const conv = await ctx.members.get(convId);
    if (conv) ctx.hub.publishDeleted(conv.members.keys(), { conversation: convId, ids });
  }
  return tombstone(ctx, { target, deletedBy: p.login, reason: req.reason, count, signature });
}

/**
 * Per-group retention: messages older than the group's `retentionDays` are destroyed the same
 * way (rows, keys, checkpoint, tombstone by `system:retention`). Also expires old replay guards.
 * Answers how many messages went.
 */
export async function sweepRetention(ctx: Ctx): Promise<number> {
  const now = ctx.now();
  await ctx.db.run('DELETE FROM msg_replay_guard WHERE until < ?', [now.toISOString()]);
  const groups = await ctx.db.all<{ id: string; retention_days: number }>(
    `SELECT id, retention_days FROM msg_conversations WHERE kind = 'group' AND retention_days IS NOT NULL`,
  );
  let total = 0;
  for (const g of groups) {
    const cutoff = new Date(now.getTime() - g.retention_days * 86_400_000).toISOString();
    const old = await ctx.db.all<{ id: string }>('SELECT id FROM msg_messages WHERE conversation = ? AND received_at < ?', [
      g.id,
      cutoff,
    ]);
    if (old.length === 0) continue;
    const ids = old.map((o) => o.id);
    const keyIds = await ctx.db.transaction((tx) => deleteMessageRows(ctx, tx, ids));
    await finish(ctx, { messages: keyIds });
    const conv = await ctx.members.get(g.id);
    if (conv) ctx.hub.publishDeleted(conv.members.keys(), { conversation: g.id, ids });
    await tombstone(ctx, {
      target: `conversation:${g.id}`,
      deletedBy: 'system:retention',
      reason: `retention of ${g.retention_days} days`,
      count: ids.length,
    });
    total += ids.length;
  }
  return total;
}

