/**
 * Messaging failure modes: one class per mode, each with a stable string `code`, the HTTP
 * `status` the edge answers with, and the `cause` kept for the log. Messages say expected vs
 * actual and never echo message content, keys or raw input.
 *
 * `server/errors.ts` owns the code → status table; {@link MESSAGING_STATUS_BY_CODE} lists ours so
 * it can be spread into that table.
 */

/** Base of every messaging error. */
export abstract class MessagingError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The signed header is not valid JSON, not RFC 8785 canonical, or fails the header schema. */
export class HeaderInvalidError extends MessagingError {
  readonly code = 'MESSAGE_HEADER_INVALID';
  readonly status = 400;
}

/** The CMS signature does not verify, or was not made by the session's certificate. */
export class BadSignatureError extends MessagingError {
  readonly code = 'MESSAGE_BAD_SIGNATURE';
  readonly status = 422;
}

/** The body (or an attachment) does not match the digest or size in the signed header. */
export class DigestMismatchError extends MessagingError {
  readonly code = 'MESSAGE_DIGEST_MISMATCH';
  readonly status = 422;
}

/** The label exceeds the sender's clearance or the conversation's label, or differs from the signed ESS label. */
export class LabelTooHighError extends MessagingError {
  readonly code = 'MESSAGE_LABEL_TOO_HIGH';
  readonly status = 403;
}

/** The message id was seen before. */
export class ReplayError extends MessagingError {
  readonly code = 'MESSAGE_REPLAY';
  readonly status = 409;
}

/** `sentAt` (or a deletion statement's `at`) is further from server time than the configured skew. */
export class ClockSkewError extends MessagingError {
  readonly code = 'MESSAGE_CLOCK_SKEW';
  readonly status = 422;
}

/** The header's `sender` is not the logged-in user. */
export class SenderMismatchError extends MessagingError {
  readonly code = 'MESSAGE_SENDER_MISMATCH';
  readonly status = 403;
}

/** The decoded body exceeds the configured message body limit. */
export class MessageTooLargeError extends MessagingError {
  readonly code = 'MESSAGE_TOO_LARGE';
  readonly status = 413;
}

/** No such message, or one the caller may not see (indistinguishable by design). */
export class MessageNotFoundError extends MessagingError {
  readonly code = 'MESSAGE_NOT_FOUND';
  readonly status = 404;
}

/** No such conversation, or one the caller is not in (indistinguishable by design). */
export class ConversationNotFoundError extends MessagingError {
  readonly code = 'CONVERSATION_NOT_FOUND';
  readonly status = 404;
}

/** The caller is not a member of a conversation they can see exists (e.g. posting to a group). */
export class NotAMemberError extends MessagingError {
  readonly code = 'NOT_A_MEMBER';
  readonly status = 403;
}

/** A group with that name already exists. */
export class GroupExistsError extends MessagingError {
  readonly code = 'GROUP_EXISTS';
  readonly status = 409;
}

/** No such group (or one the caller may not see). */
export class GroupNotFoundError extends MessagingError {
  readonly code = 'GROUP_NOT_FOUND';
  readonly status = 404;
}

/** A person's certificate clearance is below the group's (or message's) label. */
export class ClearanceTooLowError extends MessagingError {
  readonly code = 'CLEARANCE_TOO_LOW';
  readonly status = 403;
}

/** The peer or member login does not name an active account with a certificate. */
export class PeerNotFoundError extends MessagingError {
  readonly code = 'PEER_NOT_FOUND';
  readonly status = 404;
}

/** The operation would leave a group without an owner, or the member is already in/out. */
export class MembershipError extends MessagingError {
  readonly code = 'MEMBERSHIP_CONFLICT';
  readonly status = 409;
}

/** An upload exceeded the configured attachment size limit; nothing of it was kept. */
export class FileTooLargeError extends MessagingError {
  readonly code = 'FILE_TOO_LARGE';
  readonly status = 413;
}

/** An upload ended before its announced length, or the client aborted it; nothing was kept. */
export class UploadTruncatedError extends MessagingError {
  readonly code = 'UPLOAD_TRUNCATED';
  readonly status = 400;
}

/**
 * The uploader's pending uploads already hold the most files or bytes one person may keep
 * (`maxPendingUploads`, `maxPendingUploadBytes`); nothing of this upload was kept. 429: the
 * request is fine, the caller has done too much of it for now — attaching pending uploads to a
 * message, or their expiry, makes room.
 */
export class TooManyPendingUploadsError extends MessagingError {
  readonly code = 'TOO_MANY_PENDING_UPLOADS';
  readonly status = 429;
}

/** No such file, or one the caller may not read (indistinguishable by design). */
export class FileNotFoundError extends MessagingError {
  readonly code = 'FILE_NOT_FOUND';
  readonly status = 404;
}

/**
 * A discard (`DELETE /v1/files/:id`) named an upload a message already carries: it is part of that
 * message now, and goes only with it (deleting the message).
 */
export class FileAttachedError extends MessagingError {
  readonly code = 'FILE_ATTACHED';
  readonly status = 409;
}

/** An attachment named in a header is not a pending upload of the sender in that conversation. */
export class AttachmentInvalidError extends MessagingError {
  readonly code = 'MESSAGE_ATTACHMENT_INVALID';
  readonly status = 422;
}

/** A stored file no longer matches its digest when read back (tampering or corruption). */
export class FileCorruptError extends MessagingError {
  readonly code = 'FILE_CORRUPT';
  readonly status = 500;
}

/** The caller's role or relation to the object does not allow this operation. */
export class ForbiddenError extends MessagingError {
  readonly code = 'FORBIDDEN';
  readonly status = 403;
}

/** A deletion statement is malformed, names another target or reason, or its signature fails. */
export class DeleteStatementInvalidError extends MessagingError {
  readonly code = 'DELETE_STATEMENT_INVALID';
  readonly status = 422;
}

/** The messaging service was closed (appliance shutting down). */
export class MessagingClosedError extends MessagingError {
  readonly code = 'UNAVAILABLE';
  readonly status = 503;
}

/** Every messaging code and its HTTP status, for `server/errors.ts`'s table. */
export const MESSAGING_STATUS_BY_CODE: Readonly<Record<string, number>> = {
  MESSAGE_HEADER_INVALID: 400,
  MESSAGE_BAD_SIGNATURE: 422,
  MESSAGE_DIGEST_MISMATCH: 422,
  MESSAGE_LABEL_TOO_HIGH: 403,
  MESSAGE_REPLAY: 409,
  MESSAGE_CLOCK_SKEW: 422,
  MESSAGE_SENDER_MISMATCH: 403,
  MESSAGE_TOO_LARGE: 413,
  MESSAGE_NOT_FOUND: 404,
  MESSAGE_ATTACHMENT_INVALID: 422,
  CONVERSATION_NOT_FOUND: 404,
  NOT_A_MEMBER: 403,
  GROUP_EXISTS: 409,
  GROUP_NOT_FOUND: 404,
  CLEARANCE_TOO_LOW: 403,
  PEER_NOT_FOUND: 404,
  MEMBERSHIP_CONFLICT: 409,
  FILE_TOO_LARGE: 413,
  UPLOAD_TRUNCATED: 400,
  TOO_MANY_PENDING_UPLOADS: 429,
  FILE_NOT_FOUND: 404,
  FILE_ATTACHED: 409,
  FILE_CORRUPT: 500,
  FORBIDDEN: 403,
  DELETE_STATEMENT_INVALID: 422,
};
