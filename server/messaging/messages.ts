/**
 * Accepting and reading signed messages (issue 4, "Messages").
 *
 * Acceptance pipeline, cheapest checks first so garbage costs little: schema + canonical form of
 * the header → sender is the session's login → sentAt within the skew → body size, body and
 * signature base64 → membership and labels (cached) → in one hop to a worker thread (ctx.check,
 * check-pool.ts): the CMS signature against the session's TLS certificate (already validated by
 * the shell per request, so the chain is not validated again here), the body's SHA-384 and the
 * keyed hashes → the batching writer. Each failure is one typed error.
 */
import { open } from '../vault/index.js';
import {
  fileKeyId,
  fromB64,
  messageAad,
  principalClearance,
  rank,
  requireMember,
  requireRoom,
  toB64,
  unpackMessage,
  isOfficer,
  type Ctx,
} from './context.js';
import {
  AttachmentInvalidError,
  BadSignatureError,
  ClockSkewError,
  ConversationNotFoundError,
  HeaderInvalidError,
  DigestMismatchError,
  LabelTooHighError,
  MessageNotFoundError,
  MessageTooLargeError,
  SenderMismatchError,
  ForbiddenError,
} from './errors.js';
import { headerHashInput } from './check-protocol.js';
import { openDigest } from './file-digest.js';
import { parseMessageHeader, wordsProblem, type MessageHeader } from './header.js';
import { messageRow } from './message-lookup.js';
import type { Principal } from './ports.js';
import type { BatchWriter, Committed, StagedMessage } from './writer.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a client posts: the header exactly as signed, the detached CMS signature and the body (base64). */
export interface MessageInput {
  header: string;
  signature: string;
  body: string;
}

/** The acceptance receipt (API.md). */
export interface Receipt {
  id: string;
  seq: number;
  conversation: string;
  serverTime: string;
  audit?: { index: number };
}

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

/**
 * Verifies and stores one message. Rejects with the messaging error naming the first rule broken.
 * Not async, for the reason {@link checkMessage} gives.
 */
export function acceptMessage(
  ctx: Ctx,
  writer: BatchWriter,
  p: Principal,
  input: MessageInput,
  auditIndex: (id: string) => number | undefined,
): Promise<Receipt> {
  return checkMessage(ctx, p, input)
    .then((staged) => writer.submit(staged))
    .then((c) => receiptOf(c, auditIndex));
}

/** One message of a batch: its receipt, or the error that refused it alone. */
export type BatchOutcome = { ok: true; receipt: Receipt } | { ok: false; error: unknown };

/**
 * Verifies and stores several messages of one sender (`POST /v1/messages/batch`): each is checked
 * and refused on its own, exactly as {@link acceptMessage} would, and the ones that pass enter the
 * writer in the caller's order, all in one turn — so messages to one conversation get ascending
 * sequence numbers in that order, and usually share one vault transaction.
 *
 * Not async, for the reason {@link checkMessage} gives: `inputs` is the batch's text.
 */
export function acceptMessages(
  ctx: Ctx,
  writer: BatchWriter,
  p: Principal,
  inputs: readonly MessageInput[],
  auditIndex: (id: string) => number | undefined,
): Promise<BatchOutcome[]> {
  return commitChecked(writer, inputs.map((input) => checkMessage(ctx, p, input)), auditIndex);
}

/**
 * Verifies and stores a sender's messages one at a time as they arrive (`POST /v1/messages/stream`):
 * each is checked alongside those still in flight and refused on its own, exactly as
 * {@link acceptMessage} would, but enters the writer only after every earlier one has entered it
 * or been refused — so messages to one conversation get ascending sequence numbers in the order
 * given, as in a batch, although their checks finish in any order.
 *
 * The returned function is not async, for the reason {@link checkMessage} gives.
 */
export function orderedAcceptor(
  ctx: Ctx,
  writer: BatchWriter,
  p: Principal,
  auditIndex: (id: string) => number | undefined,
): (input: MessageInput) => Promise<BatchOutcome> {
  /** Settles once the previous message entered the writer or was refused; never rejects. */
  let turn: Promise<unknown> = Promise.resolve();
  return (input) => {
    const check = checkMessage(ctx, p, input);
    // Its refusal is read only once the messages before it are through: marked handled now, or
    // node would call it unhandled (and stop the process) meanwhile.
    check.catch(() => undefined);
    // The commit is wrapped so that `turn` settles at submission, not at the commit it awaits.
    const submitted = turn.then(() => check).then(
      (staged) => ({ committed: writer.submit(staged) }),
      (error: unknown) => ({ error }),
    );
    turn = submitted;
    return submitted.then((s): BatchOutcome | Promise<BatchOutcome> =>
      'error' in s
        ? { ok: false, error: s.error }
        : s.committed.then(
            (c): BatchOutcome => ({ ok: true, receipt: receiptOf(c, auditIndex) }),
            (error: unknown): BatchOutcome => ({ ok: false, error }),
          ),
    );
  };
}

async function commitChecked(writer: BatchWriter, checks: Promise<StagedMessage>[], auditIndex: (id: string) => number | undefined): Promise<BatchOutcome[]> {
  const checked = await Promise.allSettled(checks);
  const committed = await Promise.allSettled(
    checked.map((c) => (c.status === 'fulfilled' ? writer.submit(c.value) : Promise.reject(c.reason as Error))),
  );
  return committed.map((c) => (c.status === 'fulfilled' ? { ok: true, receipt: receiptOf(c.value, auditIndex) } : { ok: false, error: c.reason }));
}

function receiptOf(c: Committed, auditIndex: (id: string) => number | undefined): Receipt {
  const index = auditIndex(c.id);
  return {
    id: c.id,
    seq: c.seq,
    conversation: c.conversation,
    serverTime: c.receivedAt,
    ...(index !== undefined ? { audit: { index } } : {}),
  };
}

/** A message's own text decoded: what its checks need, and none of the request's text. */
interface DecodedMessage {
  header: MessageHeader;
  now: Date;
  body: Uint8Array;
  signature: Uint8Array;
  headerBytes: Uint8Array;
}

/**
 * Every check of one message, cheapest first, up to the sealed message the writer stores.
 *
 * Not async itself: an async function keeps its arguments (and every local) until it returns, and
 * `input` is the request's base64 text, ~2.3 kB per message. Held through the ~0.3 s a signature
 * check waits under load, every scavenge meanwhile copied it and then promoted it to old space.
 * The checks that wait ({@link checkDecoded}) get only the decoded bytes.
 */
function checkMessage(ctx: Ctx, p: Principal, input: MessageInput): Promise<StagedMessage> {
  let decoded: DecodedMessage;
  try {
    decoded = decodeMessage(ctx, p, input);
    requireRoom(ctx); // a well-formed message on a disk whose reserve is released: 507, not stored
  } catch (e) {
    return Promise.reject(e as Error);
  }
  return checkDecoded(ctx, p, decoded);
}

/** The checks that need no lookup: the header's form, its sender and time, the body and signature encodings. */
function decodeMessage(ctx: Ctx, p: Principal, input: MessageInput): DecodedMessage {
  const header = parseMessageHeader(input.header);
  const words = wordsProblem(header);
  if (words) throw new HeaderInvalidError(`message header ${words}`);
  if (header.sender !== p.login) {
    throw new SenderMismatchError(`header sender is ${header.sender}; the session belongs to ${p.login}`);
  }
  const now = ctx.now();
  const skew = Math.abs(Date.parse(header.sentAt) - now.getTime());
  if (skew > ctx.config.clockSkewMs) {
    throw new ClockSkewError(
      `sentAt ${header.sentAt} is ${Math.round(skew / 1000)} s from server time ${now.toISOString()}; at most ${ctx.config.clockSkewMs / 1000} s allowed`,
    );
  }
  if (header.body.size > ctx.config.maxBodyBytes || input.body.length > Math.ceil(ctx.config.maxBodyBytes / 3) * 4 + 4) {
    throw new MessageTooLargeError(`message body is over the limit of ${ctx.config.maxBodyBytes} bytes`);
  }
  const body = fromB64(input.body, 'body');
  if (body.length !== header.body.size) {
    throw new DigestMismatchError(`body is ${body.length} bytes; the signed header says ${header.body.size}`);
  }
  return { header, now, body, signature: fromB64(input.signature, 'signature'), headerBytes: encoder.encode(input.header) };
}

/** Membership, labels, then signature, digests and sealing in one hop; the staged message. */
async function checkDecoded(ctx: Ctx, p: Principal, { header, now, body, signature, headerBytes }: DecodedMessage): Promise<StagedMessage> {
  const conv = await requireMember(ctx, p, header.conversation);
  const holder = principalClearance(p);
  if (rank(header.label) > rank(holder)) {
    throw new LabelTooHighError(`label ${header.label} is above the sender's clearance ${holder}`);
  }
  if (rank(header.label) > rank(conv.label)) {
    throw new LabelTooHighError(`label ${header.label} is above the conversation's label ${conv.label}`);
  }
  // The conversation's key (cached): the checker seals the message under a fresh key wrapped under it.
  const sealWith = await ctx.keys.conversationKey(header.conversation).catch((err: unknown) => {
    if ((err as { code?: unknown }).code !== 'VAULT_KEY_NOT_FOUND') throw err;
    throw new ConversationNotFoundError(`conversation ${header.conversation} no longer exists`, { cause: err });
  });
  // Signature, body digest, keyed hashes and sealing in one hop (a worker thread in the appliance).
  const { check, bodySha384, subject, headerHash, sealed } = await ctx.check({
    id: header.id,
    signature,
    header: headerBytes,
    body,
    expectedSigner: p.certificate,
    sealWith,
  });
  if (!check.ok) throw new BadSignatureError(`signature does not verify: ${check.reason}: ${check.detail}`);
  if (!sealed) throw new Error('the message checker verified the message but did not seal it');
  if (check.label !== header.label) {
    throw new BadSignatureError(`the signed ESS label is ${check.label ?? 'absent'}; the header says ${header.label}`);
  }
  if (bodySha384 !== header.body.sha384) {
    throw new DigestMismatchError('SHA-384 of the body differs from the digest in the signed header');
  }
  if (header.attachments.length) await precheckAttachments(ctx, p, header.conversation, header.attachments);
  return {
    id: header.id,
    subject,
    ...(headerHash ? { headerHash } : {}),
    conversation: header.conversation,
    sender: p.login,
    label: header.label,
    labelRank: rank(header.label),
    urgent: header.urgent,
    sentAt: header.sentAt,
    receivedAt: now.toISOString(),
    header: headerBytes,
    signature,
    body,
    attachments: header.attachments,
    sealed,
  };
}

/** A clear error before signing work is queued; the writer re-checks inside its transaction. */
async function precheckAttachments(
  ctx: Ctx,
  p: Principal,
  conv: string,
  list: readonly { id: string; sha384: string; size: number }[],
): Promise<void> {
  for (const a of list) {
    const f = await ctx.db.get<{ uploader: string; conversation: string; state: string; sha384: string; size: number }>(
      'SELECT uploader, conversation, state, sha384, size FROM msg_files WHERE id = ?',
      [a.id],
    );
    if (!f || f.uploader !== p.login || f.conversation !== conv || f.state !== 'pending') {
      throw new AttachmentInvalidError(`attachment ${a.id} is not a pending upload of ${p.login} in this conversation`);
    }
    // The stored digest is sealed with the file key (file-digest.ts); '' until the upload ends.
    const key = f.sha384 === '' ? undefined : await ctx.keys.messageKey(fileKeyId(a.id)).catch(() => undefined);
    if (!key) throw new AttachmentInvalidError(`attachment ${a.id} is not a pending upload of ${p.login} in this conversation`);
    if ((await openDigest(key, a.id, f.sha384)) !== a.sha384 || f.size !== a.size) {
      throw new DigestMismatchError(`attachment ${a.id}: the uploaded file's digest or size differs from the signed header`);
    }
  }
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
  const view = await viewOf(ctx, row, member);
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
  const messages = await Promise.all(page.map((r) => viewOf(ctx, r, true)));
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

/** The audit trail's keyed hash of a signed header's digest (content-free; see server/audit/README.md). */
export function headerAuditHash(ctx: Pick<Ctx, 'keyedHash'>, digest: Uint8Array): Promise<string> {
  return ctx.keyedHash(headerHashInput(digest));
}
