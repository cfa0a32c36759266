/**
 * A reader's delivery and read marks (issue 4, "Messages"): watermarks per member and conversation
 * that only move forward, each move recorded and sent live to the senders it passed; and the
 * delivery and read receipts of one message read back from them. Live streams' delivery marks are
 * batched by delivery-marks.ts, which uses the same recent-senders query.
 */
import { isOfficer, principalClearance, rank, requireMember, type Ctx } from './context.js';
import { ForbiddenError, MessageNotFoundError } from './errors.js';
import { messageRow } from './message-lookup.js';
import type { Principal } from './ports.js';

/** Records that `login` has received messages up to `seq` (a watermark; only ever moves forward). */
export async function markDelivered(ctx: Ctx, login: string, conv: string, seq: number): Promise<void> {
  await moveMark(ctx, login, conv, seq, 'delivered');
}

/** Read receipt: `login` has read up to `seq`. Reading implies delivery. */
export async function markRead(ctx: Ctx, p: Principal, conv: string, upTo: number): Promise<void> {
  await requireMember(ctx, p, conv);
  // Never past the newest message: a mark ahead of it would read every later message as read,
  // at a time before it was even received.
  const newest = await ctx.db.get<{ s: number | null }>('SELECT MAX(seq) AS s FROM msg_messages WHERE conversation = ?', [conv]);
  const seq = Math.min(upTo, newest?.s ?? 0);
  await moveMark(ctx, p.login, conv, seq, 'delivered');
  await moveMark(ctx, p.login, conv, seq, 'read');
}

/**
 * Who gets a live receipt when a mark moves: the senders of the newest messages at or below it.
 * Bounded by a window of messages, not by a count of distinct senders: `SELECT DISTINCT … ORDER BY
 * seq DESC LIMIT 50` had to visit every row of a conversation with fewer than 50 senders (the
 * first history page of a 1,000,000-message conversation took 14 s). Senders further back can
 * still ask for a message's receipts.
 */
export const RECENT_SENDERS_WINDOW = 256;
export const RECENT_SENDERS_SQL = `SELECT DISTINCT w.sender AS sender FROM
  (SELECT sender FROM msg_messages WHERE conversation = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT ?3) w
  WHERE w.sender <> ?4 AND EXISTS (SELECT 1 FROM msg_members m WHERE m.conversation = ?1 AND m.login = w.sender)`;
// Members only: a sender removed from a group kept getting its receipts, and so learnt who joined
// after them and when each of them read.

async function moveMark(ctx: Ctx, login: string, conv: string, seq: number, kind: 'delivered' | 'read'): Promise<void> {
  const col = kind === 'read' ? 'read_seq' : 'delivered_seq';
  const at = ctx.now().toISOString();
  const moved = await ctx.db.transaction(async (tx) => {
    const r = await tx.run(`UPDATE msg_members SET ${col} = ? WHERE conversation = ? AND login = ? AND ${col} < ?`, [
      seq, conv, login, seq,
    ]);
    if (r.changes === 0) return false;
    await tx.run('INSERT INTO msg_marks (conversation, login, kind, seq, at) VALUES (?, ?, ?, ?, ?)', [conv, login, kind, seq, at]);
    return true;
  });
  if (!moved) return;
  // Tell the senders whose messages this mark passed (live receipts).
  const senders = await ctx.db.all<{ sender: string }>(RECENT_SENDERS_SQL, [conv, seq, RECENT_SENDERS_WINDOW, login]);
  for (const s of senders) ctx.hub.publishReceipt(s.sender, { conversation: conv, login, kind, upTo: seq, at });
}

/**
 * Delivery and read receipts of one message: for each member, when their watermark first passed
 * it. The sender, while still a member, and officers may ask; either must be cleared for its label.
 */
export async function receipts(
  ctx: Ctx,
  p: Principal,
  id: string,
): Promise<{ delivered: { login: string; at: string }[]; read: { login: string; at: string }[] }> {
  const row = await messageRow<{ id: string; seq: number; conversation: string; sender: string; label_rank: number }>(
    ctx.keys,
    ctx.db,
    id,
    'id, seq, conversation, sender, label_rank',
  );
  if (!row) throw new MessageNotFoundError(`message ${id} does not exist or is not visible to you`);
  // Officers too must be cleared for the label (an uncleared one learnt who read a message above
  // them, and that it existed); a sender removed from the conversation no longer sees who joined.
  const member = (await ctx.members.get(row.conversation))?.members.has(p.login) ?? false;
  if (row.label_rank > rank(principalClearance(p)) || (!member && !isOfficer(p))) {
    throw new MessageNotFoundError(`message ${id} does not exist or is not visible to you`);
  }
  if (row.sender !== p.login && !isOfficer(p)) throw new ForbiddenError('only the sender and officers see the receipts of a message');
  const all = await ctx.db.all<{ login: string; kind: 'delivered' | 'read'; at: string }>(
    `SELECT login, kind, MIN(at) AS at FROM msg_marks
     WHERE conversation = ? AND seq >= ? AND login <> ? GROUP BY login, kind ORDER BY login`,
    [row.conversation, row.seq, row.sender],
  );
  // A watermark passes messages above a reader's clearance too, but those never reached them.
  const cleared = new Map<string, boolean>();
  for (const login of new Set(all.map((m) => m.login))) {
    const person = await ctx.directory.person(login);
    cleared.set(login, person?.certificateClearance !== undefined && rank(person.certificateClearance) >= row.label_rank);
  }
  const marks = all.filter((m) => cleared.get(m.login));
  return {
    delivered: marks.filter((m) => m.kind === 'delivered').map(({ login, at }) => ({ login, at })),
    read: marks.filter((m) => m.kind === 'read').map(({ login, at }) => ({ login, at })),
  };
}
