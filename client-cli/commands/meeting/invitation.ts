/**
 * The invitation an answer or a cancellation names, fetched by id and verified locally before
 * anything is signed about it: a person never answers a meeting whose signature they have not seen
 * hold, nor one that is not a meeting.
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
