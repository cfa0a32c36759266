/**
 * The checks of one message (issue 4, "Messages"), cheapest first so garbage costs little, up to
 * the sealed message the writer stores: what `acceptMessage` and its batch and stream forms
 * (messages.ts) run for every message before it may enter the writer.
 */
import { fileKeyId, fromB64, principalClearance, rank, requireMember, requireRoom, type Ctx } from './context.js';
import {
  AttachmentInvalidError,
  BadSignatureError,
  ClockSkewError,
  ConversationNotFoundError,
  HeaderInvalidError,
  DigestMismatchError,
  LabelTooHighError,
  MessageTooLargeError,
  SenderMismatchError,
} from './errors.js';
import { openDigest } from './file-digest.js';
import { parseMessageHeader, wordsProblem, type MessageHeader } from './header.js';
import type { MessageInput } from './messages.js';
import type { Principal } from './ports.js';
import type { StagedMessage } from './writer.js';

const encoder = new TextEncoder();

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
export function checkMessage(ctx: Ctx, p: Principal, input: MessageInput): Promise<StagedMessage> {
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
