/**
 * The signed message header (API.md "The signed header") and the `sigil-delete` statement: their
 * schemas, and the check that the bytes a client signed are exactly the RFC 8785 canonical form
 * of what they say, so the server, the reader's CLI and `openssl cms -verify` all see one text.
 */
import { z } from 'zod';
import { CLEARANCES, canonicalJson, readCanonicalJson } from '../../pki/index.js';
import { DeleteStatementInvalidError, HeaderInvalidError } from './errors.js';

/** Message and file ids: 16 random bytes as 22 characters of base64url without padding. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** Standard base64 of a SHA-384 digest (48 bytes → 64 characters). */
const SHA384_B64 = /^[A-Za-z0-9+/]{64}$/;

const idSchema = z.string().regex(ID_PATTERN, 'must be 22 characters of base64url');
const digestSchema = z.string().regex(SHA384_B64, 'must be the base64 of a 48-byte SHA-384 digest');
const loginSchema = z.string().min(1).max(64);
const sizeSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

/** One attachment as the sender signed it. `name` exists only inside the encrypted header. */
export const attachmentSchema = z.strictObject({
  id: idSchema,
  name: z.string().min(1).max(255),
  sha384: digestSchema,
  size: sizeSchema,
});

/** The longest meeting an invitation may set: a week (an exercise), never an open-ended entry. */
export const MEETING_MAX_MS = 7 * 24 * 3_600_000;

/**
 * A meeting carried by a message (API.md "Meetings"): an invitation with its title, times and
 * place; an answer to one; or its cancellation. Answers and cancellations name the invitation by
 * `replyTo`. Signed like everything else in the header, so who invited, who accepted and who
 * cancelled is provable; sealed in the vault like the header, so no title or place is on disk.
 */
export const meetingSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('invite'),
    title: z.string().min(1).max(200),
    start: z.iso.datetime({ offset: false }),
    end: z.iso.datetime({ offset: false }),
    place: z.string().min(1).max(200).nullable(),
  }),
  z.strictObject({ kind: z.literal('answer'), answer: z.enum(['accept', 'decline', 'tentative']) }),
  z.strictObject({ kind: z.literal('cancel') }),
]);

export type Meeting = z.infer<typeof meetingSchema>;

/**
 * What is wrong with a header's meeting beyond its form, or undefined: an invitation must end
 * after it starts and last at most {@link MEETING_MAX_MS}; an answer or cancellation must name its
 * invitation in `replyTo`. Which invitation that is, and whether a cancellation comes from its
 * organiser, readers judge from the verified invitation (the appliance reads no header twice).
 */
export function meetingProblem(meeting: Meeting | undefined, replyTo: string | null): string | undefined {
  if (!meeting) return undefined;
  if (meeting.kind !== 'invite') return replyTo === null ? `a meeting ${meeting.kind} must name its invitation in replyTo` : undefined;
  const length = Date.parse(meeting.end) - Date.parse(meeting.start);
  if (!(length > 0)) return 'a meeting must end after it starts';
  if (length > MEETING_MAX_MS) return 'a meeting may last at most 7 days';
  return undefined;
}

/** The `sigil-message` header, version 1. Unknown fields are refused: the signer must mean every byte. */
export const messageHeaderSchema = z.strictObject({
  attachments: z.array(attachmentSchema).max(32),
  body: z.strictObject({ sha384: digestSchema, size: sizeSchema }),
  conversation: idSchema,
  id: idSchema,
  label: z.enum(CLEARANCES),
  /** Absent on every message but a meeting's (the field came after the first headers). */
  meeting: meetingSchema.optional(),
  purpose: z.literal('sigil-message'),
  replyTo: idSchema.nullable(),
  sender: loginSchema,
  sentAt: z.iso.datetime({ offset: false }),
  urgent: z.boolean(),
  v: z.literal(1),
});

export type MessageHeader = z.infer<typeof messageHeaderSchema>;
export type Attachment = z.infer<typeof attachmentSchema>;

/** Refuses input that is not JSON or not in RFC 8785 canonical form (what was signed is what we parse). */
function parseCanonical(text: string, onError: (msg: string) => Error): unknown {
  const r = readCanonicalJson(text);
  if (!r.ok) throw onError(r.reason === 'not-json' ? 'is not valid JSON' : 'is not in RFC 8785 canonical form');
  return r.value;
}

function describe(issues: readonly z.core.$ZodIssue[]): string {
  const first = issues[0];
  if (!first) return 'is invalid';
  const path = first.path.length ? first.path.join('.') : '(root)';
  return `field ${path}: ${first.message}`;
}

/**
 * Parses the header exactly as signed (a UTF-8 string) into a typed header.
 *
 * @throws HeaderInvalidError naming the first bad field; also when the text is not canonical JSON.
 */
export function parseMessageHeader(text: string): MessageHeader {
  const value = parseCanonical(text, (m) => new HeaderInvalidError(`message header ${m}`));
  const r = messageHeaderSchema.safeParse(value);
  if (!r.success) throw new HeaderInvalidError(`message header ${describe(r.error.issues)}`);
  const ids = new Set(r.data.attachments.map((a) => a.id));
  if (ids.size !== r.data.attachments.length) {
    throw new HeaderInvalidError('message header field attachments: the same file is listed twice');
  }
  const meeting = meetingProblem(r.data.meeting, r.data.replyTo);
  if (meeting) throw new HeaderInvalidError(`message header field meeting: ${meeting}`);
  return r.data;
}

/* eslint-disable-next-line no-control-regex */
const NOT_ONE_LINE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/**
 * What is wrong with the header's words that readers show on one line (attachment names, a
 * meeting's title and place), or undefined: no control character, line or column break, or
 * bidirectional override, which could make a name read as another line or another name. Checked
 * when a message is accepted (and by the CLI before it signs), not when one is read: a message
 * accepted before this rule still verifies; readers escape such words when they show them.
 */
export function wordsProblem(header: { attachments: readonly { name: string }[]; meeting?: { kind: string; title?: string; place?: string | null } | undefined }): string | undefined {
  for (const [i, a] of header.attachments.entries()) {
    if (NOT_ONE_LINE.test(a.name)) return `field attachments.${i}.name: no control characters, line breaks or bidirectional overrides in a file name`;
  }
  const m = header.meeting;
  if (m?.kind === 'invite') {
    if (m.title !== undefined && NOT_ONE_LINE.test(m.title)) return 'field meeting.title: no control characters, line breaks or bidirectional overrides in a title';
    if (typeof m.place === 'string' && NOT_ONE_LINE.test(m.place)) return 'field meeting.place: no control characters, line breaks or bidirectional overrides in a place';
  }
  return undefined;
}

/** The `sigil-delete` statement a deleter signs (API.md "Signed statements"). */
export const deleteStatementSchema = z.strictObject({
  at: z.iso.datetime({ offset: false }),
  purpose: z.literal('sigil-delete'),
  reason: z.string().min(1).max(500),
  target: z.string().regex(/^(message|conversation|user):[^\s]{1,128}$/),
});

export type DeleteStatement = z.infer<typeof deleteStatementSchema>;

/**
 * Parses a deletion statement and checks it names `expected.target` and `expected.reason`.
 *
 * @throws DeleteStatementInvalidError saying which part differs.
 */
export function parseDeleteStatement(text: string, expected: { target: string; reason: string }): DeleteStatement {
  const value = parseCanonical(
    text,
    (m) => new DeleteStatementInvalidError(`deletion statement ${m}`),
  );
  const r = deleteStatementSchema.safeParse(value);
  if (!r.success) throw new DeleteStatementInvalidError(`deletion statement ${describe(r.error.issues)}`);
  if (r.data.target !== expected.target) {
    throw new DeleteStatementInvalidError(
      `deletion statement names target ${r.data.target}; this request deletes ${expected.target}`,
    );
  }
  if (r.data.reason !== expected.reason) {
    throw new DeleteStatementInvalidError('deletion statement reason differs from the request reason');
  }
  return r.data;
}

/** Builds the canonical text of a header (for clients and tests). */
export function canonicalHeader(h: MessageHeader): string {
  return canonicalJson(h);
}

/** Builds the canonical text of a deletion statement (for clients and tests). */
export function canonicalDeleteStatement(s: DeleteStatement): string {
  return canonicalJson(s);
}
