/**
 * Reading stored messages (issue 4, "Messages"): one message, a conversation's history, and what a
 * live stream replays after Last-Event-ID, each decrypted into the reader's view under the
 * clearance rules; and the view of a message just committed, for live events.
 */
import { KeyNotFoundError, open } from '../vault/index.js';
import {
  isOfficer,
  messageAad,
  principalClearance,
  rank,
  requireMember,
  toB64,
  unpackMessage,
  type Ctx,
} from './context.js';
import { MessageNotFoundError } from './errors.js';
import { markDelivered } from './message-marks.js';
import { messageRow } from './message-lookup.js';
import type { Principal } from './ports.js';

const decoder = new TextDecoder();

/** A message as readers get it (API.md `message`). Auditors and officers get it without `body`. */
export interface MessageView {
  seq: number;
  id: string;
  conversation: string;
  sender: string;
  label: string;
  urgent: boolean;
  header: string;
  signature: string;
  body?: string;
  receivedAt: string;
}

/** A stored message row (ciphertext columns are sealed blobs). */
export interface MessageRow {
  seq: number;
  id: string;
  conversation: string;
  sender: string;
  label: string;
  label_rank: number;
  urgent: number;
  sent_at: string;
  received_at: string;
  sealed: Uint8Array;
}

/** Decrypts a stored row into the reader's view. `withBody` false for auditors/officers. */
export async function viewOf(ctx: Ctx, row: MessageRow, withBody: boolean): Promise<MessageView> {
  const key = await ctx.keys.messageKey(row.id);
  const parts = unpackMessage(await open(key, row.sealed, messageAad(row.id)));
  const h = parts.header;
  const s = parts.signature;
  const b = withBody ? parts.body : undefined;
  return {
    seq: row.seq,
    id: row.id,
    conversation: row.conversation,
    sender: row.sender,
    label: row.label,
    urgent: row.urgent === 1,
    header: decoder.decode(h),
    signature: toB64(s),
    ...(b ? { body: toB64(b) } : {}),
    receivedAt: row.received_at,
  };
}

/**
 * {@link viewOf}, or undefined when the message's key is gone: its row was read, then a deletion
 * committed and destroyed the key before the read reached it. The message no longer exists; a
 * reader gets what one a moment later gets (MESSAGE_NOT_FOUND, or a page without it), not a vault
 * error answered as an internal one.
 */
async function viewIfKept(ctx: Ctx, row: MessageRow, withBody: boolean): Promise<MessageView | undefined> {
  try {
    return await viewOf(ctx, row, withBody);
  } catch (err) {
    if (err instanceof KeyNotFoundError) return undefined;
    throw err;
  }
}

/** The view of a message built from the plaintext still in memory at commit time (live events). */
export function viewOfStaged(
  m: { id: string; conversation: string; sender: string; label: string; urgent: boolean; header: Uint8Array; signature: Uint8Array; body: Uint8Array },
  c: { seq: number; receivedAt: string },
): MessageView {
  return {
    seq: c.seq,
    id: m.id,
    conversation: m.conversation,
    sender: m.sender,
    label: m.label,
    urgent: m.urgent,
    header: decoder.decode(m.header),
    signature: toB64(m.signature),
    body: toB64(m.body),
    receivedAt: c.receivedAt,
  };
}

const COLS = 'seq, id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed';

/**
 * One message. Members cleared for its label get it whole; auditors and officers cleared for it
 * get header and signature without the body (separation of duties: they verify, never read).
 *
 * @throws MessageNotFoundError when missing, above the caller's clearance, or not the caller's.
 */
export async function getMessage(ctx: Ctx, p: Principal, id: string): Promise<MessageView> {
  const row = await messageRow<MessageRow>(ctx.keys, ctx.db, id, COLS);
  const notFound = new MessageNotFoundError(`message ${id} does not exist or is not visible to you`);
  if (!row || row.label_rank > rank(principalClearance(p))) throw notFound;
  const conv = await ctx.members.get(row.conversation);
  const member = conv?.members.has(p.login) ?? false;
  const overseer = p.role === 'auditor' || isOfficer(p);
  if (!member && !overseer) throw notFound;
  const view = await viewIfKept(ctx, row, member);
  if (!view) throw notFound;
  if (member) await markDelivered(ctx, p.login, row.conversation, row.seq);
  return view;
}

/** History page, newest first: messages with seq < before, cleared for the reader. */
export async function history(
  ctx: Ctx,
  p: Principal,
  convId: string,
  opts: { before?: number; limit?: number },
): Promise<{ messages: MessageView[]; nextBefore?: number }> {
  await requireMember(ctx, p, convId);
  const limit = Math.min(Math.max(opts.limit ?? 50, 1), ctx.config.maxPage);
  const before = opts.before ?? Number.MAX_SAFE_INTEGER;
  const rows = await ctx.db.all<MessageRow>(
    `SELECT ${COLS} FROM msg_messages WHERE conversation = ? AND seq < ? AND label_rank <= ?
     ORDER BY seq DESC LIMIT ?`,
    [convId, before, rank(principalClearance(p)), limit + 1],
  );
  const more = rows.length > limit;
  const page = rows.slice(0, limit);
  // A message deleted since the page was read is left out; the page's bounds stay the rows'.
  const messages = (await Promise.all(page.map((r) => viewIfKept(ctx, r, true)))).filter((v) => v !== undefined);
  const top = page[0];
  if (top) await markDelivered(ctx, p.login, convId, top.seq);
  const last = page[page.length - 1];
  return { messages, ...(more && last ? { nextBefore: last.seq } : {}) };
}

/**
 * The caller's messages with seq > `after`, oldest first, that live delivery would have pushed
 * (cleared for the label; not muted unless urgent): what SSE replays after Last-Event-ID.
 */
export async function messagesSince(ctx: Ctx, p: Principal, after: number, limit: number): Promise<MessageView[]> {
  const rows = await ctx.db.all<MessageRow>(
    `SELECT ${COLS.split(', ').map((c) => `m.${c}`).join(', ')} FROM msg_messages m
       JOIN msg_members mm ON mm.conversation = m.conversation AND mm.login = ?
     WHERE m.seq > ? AND m.label_rank <= ? AND (mm.muted = 0 OR m.urgent = 1)
     ORDER BY m.seq LIMIT ?`,
    [p.login, after, rank(principalClearance(p)), limit],
  );
  return Promise.all(rows.map((r) => viewOf(ctx, r, true)));
}
