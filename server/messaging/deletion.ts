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
 *
 * This module holds the four deletions asked for by a person and who may ask for each; the statement
 * and tombstone are deletion-record.ts, the rows deletion-rows.ts, that order deletion-order.ts, and
 * the retention sweep retention-sweep.ts.
 */
import { isOfficer, principalClearance, rank, type Ctx } from './context.js';
import { ConversationNotFoundError, ForbiddenError, GroupNotFoundError, MessageNotFoundError, PeerNotFoundError } from './errors.js';
import { appendTombstone, checkStatement, draftTombstone, type DeleteRequest, type Tombstone } from './deletion-record.js';
import { announce, rowsThenKeys } from './deletion-order.js';
import { correspondenceRows, deleteConversationRows, deleteMessageRows, REF_COLS, type MessageRef } from './deletion-rows.js';
import { messageRow } from './message-lookup.js';
import type { Principal } from './ports.js';

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

