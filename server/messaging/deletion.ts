/**
 * Irreversible deletion (issue 4, "Irreversible deletion").
 *
 * Who may delete what: a sender their own message (for everyone); a participant a direct
 * conversation; a group owner the whole group; an officer anything, including all of one user's
 * correspondence. Every deletion is asked for with a `sigil-delete` statement the deleter signs.
 *
 * Order, so that a crash at any point leaves nothing readable behind for long: rows and the
 * deletion's tombstone in one vault transaction (secure_delete zeroes the rows' pages; the
 * tombstone — what (keyed hash), who, when, why, how many, and the deleter's signature over the
 * statement — commits with them or not at all, ARCHITECTURE.md "Audit trail") → the keys that
 * opened them destroyed in keys.db (so a copy or backup of vault.db taken earlier holds ciphertext
 * nothing can open; the key store truncates keys.db's WAL itself), whose transaction does its
 * deletes beside the vault's but commits only after it (see {@link rowsThenKeys}), while
 * `wal_checkpoint(TRUNCATE)` runs on vault.db.
 */
import {
  fileKeyId,
  fromB64,
  guardSubjects,
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
import { messageRow } from './message-lookup.js';
import type { KeysToDestroy, Principal } from './ports.js';
import { chunks, marks, type DbTx } from '../vault/index.js';
import { errorFields } from '../log.js';

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

/** What of a checked statement goes into the tombstone: the signature and the statement's own time. */
interface CheckedStatement {
  signature: string;
  /** The statement's `at` exactly as signed (not the tombstone's time). */
  at: string;
}

/** Checks the deleter's signed statement. @throws DeleteStatementInvalidError | ClockSkewError */
async function checkStatement(ctx: Ctx, p: Principal, req: DeleteRequest, target: string): Promise<CheckedStatement> {
  const st = parseDeleteStatement(req.statement, { target, reason: req.reason });
  const now = ctx.now();
  const skew = Math.abs(Date.parse(st.at) - now.getTime());
  if (skew > ctx.config.clockSkewMs) {
    throw new ClockSkewError(`statement time ${st.at} is ${Math.round(skew / 1000)} s from server time ${now.toISOString()}`);
  }
  const sig = fromB64(req.signature, 'signature', (m) => new DeleteStatementInvalidError(m));
  const check = await ctx.verify(sig, encoder.encode(req.statement), p.certificate);
  if (!check.ok) throw new DeleteStatementInvalidError(`statement signature does not verify: ${check.reason}: ${check.detail}`);
  return { signature: req.signature, at: st.at };
}

/** Bound parameters per `IN (…)` list: well below SQLite's limit, and one round trip per chunk, not per row. */
const IN_CHUNK = 500;

/** A message row to delete: its rowid (vault.db has no id index; message-lookup.ts), id and signed time. */
interface MessageRef {
  rid: number;
  id: string;
  sent_at: string;
}

/** The columns of {@link MessageRef}, for the queries that find the rows. */
const REF_COLS = 'rid, id, sent_at';

/**
 * Rows of the given messages (and their attachments) go, IN_CHUNK per statement; answers what
 * keys must follow (file keys, then one key per given message).
 */
async function deleteMessageRows(ctx: Ctx, tx: DbTx, rows: readonly MessageRef[]): Promise<string[]> {
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
async function deleteConversationRows(tx: DbTx, convId: string): Promise<number> {
  await tx.run('DELETE FROM msg_file_chunks WHERE file IN (SELECT id FROM msg_files WHERE conversation = ?)', [convId]);
  await tx.run('DELETE FROM msg_files WHERE conversation = ?', [convId]);
  const { changes } = await tx.run('DELETE FROM msg_messages WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_marks WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_members WHERE conversation = ?', [convId]);
  await tx.run('DELETE FROM msg_conversations WHERE id = ?', [convId]);
  return changes;
}

/** A tombstone as known before its rows' transaction: the keyed hash is crypto, kept out of the vault's lock. */
interface TombstoneDraft {
  id: string;
  /** Keyed hash of the target. */
  target: string;
  deletedBy: string;
  reason: string;
  /** The deleter's signed statement (absent for system deletions such as retention). */
  statement: CheckedStatement | undefined;
}

async function draftTombstone(
  ctx: Ctx,
  t: { target: string; deletedBy: string; reason: string; statement?: CheckedStatement },
): Promise<TombstoneDraft> {
  return { id: newId(ctx.random), target: await ctx.keyedHash(t.target), deletedBy: t.deletedBy, reason: t.reason, statement: t.statement };
}

/**
 * Appends the tombstone to the audit trail from inside the rows' vault transaction, joined (no
 * savepoint): the rows and their tombstone commit together or not at all, so no deletion is ever
 * without its record, and a failed append rolls the rows (and with them the keys' deletes) back.
 */
async function appendTombstone(ctx: Ctx, d: TombstoneDraft, count: number): Promise<Tombstone> {
  const at = ctx.now();
  const ts: Tombstone = { id: d.id, target: d.target, deletedBy: d.deletedBy, at: at.toISOString(), reason: d.reason, count };
  if (ctx.audit) {
    const [entry] =
      (await ctx.audit.append(
        [
          {
            type: 'deletion',
            actor: d.deletedBy,
            subject: d.target,
            at,
            // With statementAt, an auditor who knows the target (`message:<id>` from an export, …)
            // rebuilds the signed statement byte for byte — RFC 8785 canonical JSON of
            // {at: statementAt, purpose: 'sigil-delete', reason, target} — and checks
            // statementSignature with the deleter's certificate (server/audit/README.md). The
            // target itself stays out: the subject is its keyed hash (entries name no message id).
            data: {
              tombstone: d.id,
              reason: d.reason,
              count,
              ...(d.statement !== undefined ? { statementSignature: d.statement.signature, statementAt: d.statement.at } : {}),
            },
          },
        ],
        { join: true },
      )) ?? [];
    if (entry) ts.audit = { index: Number(entry.seq) };
  }
  return ts;
}

/**
 * Live `deleted` events, once the deletion committed. A failure here (a membership read) is
 * logged, never answered: the deletion stands and is recorded, and readers catch up from the vault.
 */
async function announce(ctx: Ctx, publish: () => Promise<void> | void): Promise<void> {
  try {
    await publish();
  } catch (err) {
    ctx.log('messaging.deleted-event-failed', errorFields(err));
  }
}

/**
 * Rows, then keys, then WAL truncation, with both databases working at once where the write order
 * allows it (ARCHITECTURE.md, "write order keeps crashes harmless"):
 *
 * 1. `rows` runs in one vault transaction — the rows and their tombstone ({@link appendTombstone})
 *    — and calls `keysGo` (once) with the keys that must follow.
 *    The key store starts deleting them right away in its own keys.db transaction, which commits
 *    only after the vault transaction did (and rolls back if it failed): keys never go before rows.
 *    keysGo is only ever called from inside the vault transaction, and the vault transaction never
 *    waits for the key store, so the two locks cannot deadlock. A failure up to the commit is
 *    thrown: nothing was written (no row, no tombstone, no key).
 * 2. Once the rows committed: keys.db commits and truncates its WAL while vault.db truncates its own.
 *    Both are awaited, so nothing is left running behind the answer; a failure here is logged, not
 *    thrown (see below).
 *
 * `committed` runs right after the vault commit, before the keys are waited for (cache invalidation:
 * reads outside a transaction see only committed rows, so earlier would be undone by a reload).
 */
async function rowsThenKeys<T>(
  ctx: Ctx,
  rows: (tx: DbTx, keysGo: (k: KeysToDestroy) => void) => Promise<T>,
  committed: (out: T) => void = () => undefined,
): Promise<T> {
  // On a full disk the reserve is released and the whole of it runs once more: it throws only
  // when nothing was written (a failure after the commit is finished below, not thrown).
  return ctx.room.freeing(() => rowsThenKeysOnce(ctx, rows, committed));
}

async function rowsThenKeysOnce<T>(
  ctx: Ctx,
  rows: (tx: DbTx, keysGo: (k: KeysToDestroy) => void) => Promise<T>,
  committed: (out: T) => void,
): Promise<T> {
  let settle!: { resolve: () => void; reject: (err: unknown) => void };
  const rowsGone = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  rowsGone.catch(() => undefined);
  let staged: Promise<unknown> | undefined;
  let destroying: KeysToDestroy | undefined;
  const keysGo = (k: KeysToDestroy): void => {
    if (staged) throw new Error('rowsThenKeys: keysGo called twice');
    destroying = k;
    staged = ctx.keys.destroyKeysAfter(k, rowsGone);
    staged.catch(() => undefined);
  };
  let out: T;
  try {
    out = await ctx.db.transaction((tx) => rows(tx, keysGo));
  } catch (err) {
    settle.reject(err);
    await staged?.catch(() => undefined); // rolled back: wait until keys.db is free again
    throw err;
  }
  settle.resolve();
  committed(out);
  let [k, w] = await Promise.allSettled([staged, ctx.db.checkpointTruncate()]);
  // keys.db or the checkpoint may meet the full disk when the rows did not: once more through the
  // reserve now, so that the content is gone when the deletion answers, not a retry later.
  if (k.status === 'rejected' && destroying) {
    const what = destroying;
    [k] = await Promise.allSettled([ctx.room.afterFull(k.reason, () => ctx.keys.destroyKeysAfter(what, Promise.resolve()))]);
  }
  if (w.status === 'rejected') [w] = await Promise.allSettled([ctx.room.afterFull(w.reason, () => ctx.db.checkpointTruncate())]);

  if (k.status === 'rejected' && destroying) ctx.late.keys(destroying);
  if (w.status === 'rejected') ctx.late.checkpoint();
  // The deletion is committed with its tombstone, so the caller answers the tombstone even if a
  // step after the commit failed: the rows every reader reaches are gone and the audit trail says
  // so. An error would be untrue (VAULT_FULL answers "nothing was written") and a retry could not
  // help (it finds nothing to delete). What such a failure leaves is finished without the client:
  // the keys (whose keys.db transaction rolled back, so they open no row) and the checkpoint are
  // retried in the background until they succeed (late-destruction.ts); should the appliance stop
  // first, its start destroys every key without a row (reconcileKeys, sweepOrphanConversations)
  // and truncates the WAL.
  for (const r of [k, w]) if (r.status === 'rejected') ctx.log('messaging.deletion-after-commit-failed', errorFields(r.reason));
  return out;
}

/**
 * Deletes one message for everyone: its sender, or an officer.
 *
 * @throws MessageNotFoundError | ForbiddenError | DeleteStatementInvalidError | ClockSkewError
 */
export async function deleteMessage(ctx: Ctx, p: Principal, id: string, req: DeleteRequest): Promise<Tombstone> {
  const row = await messageRow<MessageRef & { conversation: string; sender: string; label_rank: number }>(
    ctx.keys,
    ctx.db,
    id,
    `${REF_COLS}, conversation, sender, label_rank`,
  );
  const conv = row ? await ctx.members.get(row.conversation) : undefined;
  const visible =
    row && conv && (isOfficer(p) || (conv.members.has(p.login) && row.label_rank <= rank(principalClearance(p))));
  if (!row || !conv || !visible) throw new MessageNotFoundError(`message ${id} does not exist or is not visible to you`);
  if (row.sender !== p.login && !isOfficer(p)) throw new ForbiddenError('only the sender or an officer may delete a message');
  const target = `message:${id}`;
  const statement = await checkStatement(ctx, p, req, target);
  const draft = await draftTombstone(ctx, { target, deletedBy: p.login, reason: req.reason, statement });
  const ts = await rowsThenKeys(
    ctx,
    async (tx, keysGo) => {
      keysGo({ messageIds: await deleteMessageRows(ctx, tx, [row]) });
      return appendTombstone(ctx, draft, 1);
    },
    // Queued copies for stalled readers go as soon as the rows do, not after the keys and the
    // checkpoints (a reader catching up meanwhile would still get the content).
    () => ctx.hub.withdraw({ conversation: conv.id, ids: [id] }),
  );
  await announce(ctx, () => ctx.hub.notifyDeleted(conv.members.keys(), { conversation: conv.id, ids: [id] }));
  return ts;
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
  const statement = await checkStatement(ctx, p, req, target);
  const draft = await draftTombstone(ctx, { target, deletedBy: p.login, reason: req.reason, statement });
  const ts = await rowsThenKeys(
    ctx,
    async (tx, keysGo) => {
      keysGo({ conversationIds: [convId] }); // its keys.db deletes run beside the rows' (and commit after them)
      return appendTombstone(ctx, draft, await deleteConversationRows(tx, convId));
    },
    () => {
      ctx.members.invalidate(convId);
      ctx.hub.withdraw({ conversation: convId });
    },
  );
  await announce(ctx, () => ctx.hub.notifyDeleted(conv.members.keys(), { conversation: convId }));
  return ts;
}

/** Destroys a group by name (owners and officers); the statement names `conversation:<id>`. */
export async function deleteGroup(ctx: Ctx, p: Principal, name: string, req: DeleteRequest): Promise<Tombstone> {
  const row = await ctx.db.get<{ id: string }>(`SELECT id FROM msg_conversations WHERE kind = 'group' AND name = ?`, [name]);
  const conv = row ? await ctx.members.get(row.id) : undefined;
  if (!row || !conv || (!conv.members.has(p.login) && !isOfficer(p))) throw new GroupNotFoundError(`no group named ${name}`);
  return deleteConversation(ctx, p, row.id, req);
}

/**
 * Rows of one user's correspondence: their direct conversations whole, every message they sent
 * elsewhere, their pending uploads. Answers how many messages went, by conversation for the others,
 * and the direct conversations with their two members.
 */
async function correspondenceRows(
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

/**
 * An officer destroys all of one user's correspondence: every message they sent anywhere and
 * every direct conversation they are in (both sides of it).
 *
 * @throws ForbiddenError (not an officer) | PeerNotFoundError | DeleteStatementInvalidError
 */
export async function deleteUserCorrespondence(ctx: Ctx, p: Principal, login: string, req: DeleteRequest): Promise<Tombstone> {
  if (!isOfficer(p)) throw new ForbiddenError("only officers may destroy a user's correspondence");
  const known = await ctx.directory.person(login);
  // EXISTS stops at the first row (a UNION would visit every message of the sender).
  const involved = await ctx.db.get<{ x: number }>(
    'SELECT EXISTS (SELECT 1 FROM msg_members WHERE login = ?) OR EXISTS (SELECT 1 FROM msg_messages WHERE sender = ?) AS x',
    [login, login],
  );
  if (!known && involved?.x !== 1) throw new PeerNotFoundError(`no account ${login}`);
  const target = `user:${login}`;
  const statement = await checkStatement(ctx, p, req, target);
  const draft = await draftTombstone(ctx, { target, deletedBy: p.login, reason: req.reason, statement });
  const { ts, byConv, directs } = await rowsThenKeys(
    ctx,
    async (tx, keysGo) => {
      const { count, byConv, directs } = await correspondenceRows(ctx, tx, login, keysGo);
      return { ts: await appendTombstone(ctx, draft, count), byConv, directs };
    },
    (r) => {
      for (const d of r.directs.keys()) {
        ctx.members.invalidate(d);
        ctx.hub.withdraw({ conversation: d });
      }
      for (const [convId, ids] of r.byConv) ctx.hub.withdraw({ conversation: convId, ids });
    },
  );
  await announce(ctx, async () => {
    for (const [conv, logins] of directs) ctx.hub.notifyDeleted(logins, { conversation: conv });
    for (const [convId, ids] of byConv) {
      const conv = await ctx.members.get(convId);
      if (conv) ctx.hub.notifyDeleted(conv.members.keys(), { conversation: convId, ids });
    }
  });
  return ts;
}

/**
 * Per-group retention: messages older than the group's `retentionDays` are destroyed the same
 * way (rows with their tombstone by `system:retention`, keys, checkpoint). Also expires old replay
 * guards. Answers how many messages went.
 *
 * Each group on its own: a group whose destroy fails (its transaction rolled back, nothing of it
 * written) is logged and tried again at the next sweep, and the groups after it are still swept —
 * one failure must not keep every other group's messages past their retention.
 */
export async function sweepRetention(ctx: Ctx): Promise<number> {
  const now = ctx.now();
  await ctx.room.freeing(() => ctx.db.run('DELETE FROM msg_replay_guard WHERE until < ?', [now.toISOString()]));
  const groups = await ctx.db.all<{ id: string; retention_days: number }>(
    `SELECT id, retention_days FROM msg_conversations WHERE kind = 'group' AND retention_days IS NOT NULL`,
  );
  let total = 0;
  for (const g of groups) {
    try {
      total += await sweepGroup(ctx, g, now);
    } catch (err) {
      ctx.log('messaging.retention-failed', errorFields(err));
    }
  }
  return total;
}

/** Destroys one group's messages older than its retention; answers how many went. */
async function sweepGroup(ctx: Ctx, g: { id: string; retention_days: number }, now: Date): Promise<number> {
  const cutoff = new Date(now.getTime() - g.retention_days * 86_400_000).toISOString();
  const old = await ctx.db.all<MessageRef>(`SELECT ${REF_COLS} FROM msg_messages WHERE conversation = ? AND received_at < ?`, [
    g.id,
    cutoff,
  ]);
  if (old.length === 0) return 0;
  const ids = old.map((o) => o.id);
  const draft = await draftTombstone(ctx, {
    target: `conversation:${g.id}`,
    deletedBy: 'system:retention',
    reason: `retention of ${g.retention_days} days`,
  });
  await rowsThenKeys(
    ctx,
    async (tx, keysGo) => {
      keysGo({ messageIds: await deleteMessageRows(ctx, tx, old) });
      return appendTombstone(ctx, draft, ids.length);
    },
    () => ctx.hub.withdraw({ conversation: g.id, ids }),
  );
  await announce(ctx, async () => {
    const conv = await ctx.members.get(g.id);
    if (conv) ctx.hub.notifyDeleted(conv.members.keys(), { conversation: g.id, ids });
  });
  return ids.length;
}
