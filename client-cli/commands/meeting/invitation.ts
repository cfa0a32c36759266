/**
 * The invitation an answer or a cancellation names, fetched by id and verified locally before
 * anything is signed about it: a person never answers a meeting whose signature they have not seen
 * hold, nor one that is not a meeting. Nor one its organiser has cancelled: the messages after the
 * invitation are looked through for the organiser's verified cancellation.
 */
import { CliError, UsageError } from '../../errors.js';
import type { Message } from '../../messaging/api.js';
import type { MeetingInvite, MessageHeader } from '../../messaging/header.js';
import type { MessagingSession } from '../../messaging/session.js';

/** The message named is not a meeting invitation. */
export class NotAnInvitationError extends CliError {
  constructor(id: string) {
    super('MEETING_NOT_FOUND', `message ${id} is not a meeting invitation`);
  }
}

/** The organiser cancelled the meeting: an answer, or another cancellation, would say nothing. */
export class MeetingCancelledError extends CliError {
  constructor(what: string) {
    super('MEETING_CANCELLED', `${what}; nothing was sent`);
  }
}

/** A verified invitation: the message, its verified header, and the meeting it sets. */
export interface Invitation {
  message: Message;
  header: MessageHeader;
  meeting: MeetingInvite;
}

/** Fetches message `id`, verifies it, and returns it if it is an invitation. @throws MessageUnverifiedError (exit 3), NotAnInvitationError */
export async function verifiedInvitation(ms: MessagingSession, id: string): Promise<Invitation> {
  if (!/^[A-Za-z0-9_-]{22}$/.test(id)) throw new UsageError('<invitation>: expected a 22-character message id');
  const { MessageSchema } = await import('../../messaging/api.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  const message = await ms.http.get(`/v1/messages/${encodeURIComponent(id)}`, MessageSchema);
  const v = await ms.verify(message);
  if (!v.ok) throw new MessageUnverifiedError(`the invitation ${id} failed verification (${v.reason}: ${v.detail}); nothing was sent`);
  if (v.header.meeting?.kind !== 'invite') throw new NotAnInvitationError(id);
  return { message, header: v.header, meeting: v.header.meeting };
}

/** What {@link cancellationOf} found. */
export interface Cancellation {
  /** When the organiser's verified cancellation was signed (its sentAt), or null if none was found. */
  at: string | null;
  /** Cancellations claiming to be the organiser's that failed verification: ignored, as in `meeting list`. */
  failed: number;
}

/**
 * The organiser's cancellation of `inv` among the newest `limit` messages after it in its
 * conversation (5000, as `meeting list` looks through at most). Only messages the server records
 * as the organiser's, whose header names a cancellation of this invitation, are verified.
 */
export async function cancellationOf(ms: MessagingSession, inv: Invitation, limit = 5000): Promise<Cancellation> {
  const { fetchMessages } = await import('../message/read.js');
  const { parseHeader } = await import('../../messaging/header.js');
  const out: Cancellation = { at: null, failed: 0 };
  for (const m of await fetchMessages(ms, inv.message.conversation, inv.message.seq, limit)) {
    if (m.sender !== inv.header.sender) continue;
    const claim = parseHeader(m.header);
    if (!claim.ok || claim.header.meeting?.kind !== 'cancel' || claim.header.replyTo !== inv.header.id) continue;
    const v = await ms.verify(m);
    const h = v.ok ? v.header : undefined;
    if (h && h.sender === inv.header.sender && h.meeting?.kind === 'cancel' && h.replyTo === inv.header.id) return { ...out, at: h.sentAt };
    out.failed++;
  }
  return out;
}
