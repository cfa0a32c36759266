/**
 * The signed message header and the deletion statement (server/API.md, "The signed header",
 * "Signed statements"): building them as RFC 8785 canonical JSON, byte-identical to what the
 * server checks (server/messaging/header.ts), and parsing a received header strictly.
 */
import { z } from 'zod';
// The module itself, not pki/index.ts: that loads pkijs, which commands reading headers may not need.
import { canonicalJson, readCanonicalJson } from '../../pki/canonical-json.js';
import { CLEARANCE_CHOICES } from '../choices.js';
import { isOneLine } from '../terminal-text.js';

const subtle = globalThis.crypto.subtle;

/** Message and file ids: 16 random bytes as 22 characters of base64url. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{22}$/;
const SHA384_B64 = /^[A-Za-z0-9+/]{64}$/;

const idSchema = z.string().regex(ID_PATTERN, 'must be 22 characters of base64url');
const digestSchema = z.string().regex(SHA384_B64, 'must be the base64 of a SHA-384 digest');
const sizeSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const attachmentSchema = z.strictObject({
  id: idSchema,
  name: z.string().min(1).max(255),
  sha384: digestSchema,
  size: sizeSchema,
});

/** The longest meeting an invitation may set (7 days), as the server holds it. */
export const MEETING_MAX_MS = 7 * 24 * 3_600_000;

/** A meeting in the header (server/API.md "Meetings"): an invitation, an answer to one, or its cancellation. */
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
export type MeetingInvite = Extract<Meeting, { kind: 'invite' }>;
export type MeetingAnswer = Extract<Meeting, { kind: 'answer' }>['answer'];

/** The server's rule beyond the form (server/messaging/header.ts meetingProblem), or undefined. */
export function meetingProblem(meeting: Meeting | undefined, replyTo: string | null): string | undefined {
  if (!meeting) return undefined;
  if (meeting.kind !== 'invite') return replyTo === null ? `a meeting ${meeting.kind} must name its invitation in replyTo` : undefined;
  const length = Date.parse(meeting.end) - Date.parse(meeting.start);
  if (!(length > 0)) return 'a meeting must end after it starts';
  if (length > MEETING_MAX_MS) return 'a meeting may last at most 7 days';
  return undefined;
}

/**
 * The server's rule at acceptance (server/messaging/header.ts `wordsProblem`, kept equal by
 * test/client-cli/messaging/header-events.test.ts): what is wrong with the words readers show on
 * one line (attachment names, a meeting's title and place), or undefined. No control character,
 * line or column break, or bidirectional override. The CLI checks it before it signs, never when it
 * reads: a message accepted before the rule still verifies, and render.ts escapes such words.
 */
export function wordsProblem(header: { attachments: readonly { name: string }[]; meeting?: { kind: string; title?: string; place?: string | null } | undefined }): string | undefined {
  for (const [i, a] of header.attachments.entries()) {
    if (!isOneLine(a.name)) return `field attachments.${i}.name: no control characters, line breaks or bidirectional overrides in a file name`;
  }
  const m = header.meeting;
  if (m?.kind === 'invite') {
    if (m.title !== undefined && !isOneLine(m.title)) return 'field meeting.title: no control characters, line breaks or bidirectional overrides in a title';
    if (typeof m.place === 'string' && !isOneLine(m.place)) return 'field meeting.place: no control characters, line breaks or bidirectional overrides in a place';
  }
  return undefined;
}

/** The `sigil-message` header, version 1; unknown fields are refused as the server refuses them. */
export const messageHeaderSchema = z.strictObject({
  attachments: z.array(attachmentSchema).max(32),
  body: z.strictObject({ sha384: digestSchema, size: sizeSchema }),
  conversation: idSchema,
  id: idSchema,
  label: z.enum(CLEARANCE_CHOICES),
  meeting: meetingSchema.optional(),
  purpose: z.literal('sigil-message'),
  replyTo: idSchema.nullable(),
  sender: z.string().min(1).max(64),
  sentAt: z.iso.datetime({ offset: false }),
  urgent: z.boolean(),
  v: z.literal(1),
});
export type MessageHeader = z.infer<typeof messageHeaderSchema>;
export type HeaderAttachment = z.infer<typeof attachmentSchema>;

/**
 * A fresh id: 16 random bytes, base64url (the server refuses an id it has seen). Never with a
 * leading '-', which commander would read as an option (`sigil download -B5o…`): it becomes '_',
 * as in the server's newId (server/messaging/context.ts).
 */
export function newId(random: (n: number) => Uint8Array = (n) => globalThis.crypto.getRandomValues(new Uint8Array(n))): string {
  const id = Buffer.from(random(16)).toString('base64url');
  return id.startsWith('-') ? `_${id.slice(1)}` : id;
}

/** Standard base64 of SHA-384 over `bytes` (WebCrypto, off the event loop). */
export async function sha384B64(bytes: Uint8Array): Promise<string> {
  return Buffer.from(await subtle.digest('SHA-384', bytes)).toString('base64');
}

/** RFC 8785 canonical text of a JSON value. */
export function canonicalText(value: unknown): string {
  return canonicalJson(value);
}

/** What the sender decides; the rest of the header is derived. */
export interface HeaderParams {
  conversation: string;
  sender: string;
  label: MessageHeader['label'];
  body: Uint8Array;
  attachments?: HeaderAttachment[];
  replyTo?: string | null;
  urgent?: boolean;
  /** Default: now. */
  sentAt?: Date;
  /** Default: a fresh random id. */
  id?: string;
  /** A meeting invitation, answer or cancellation (absent from the header otherwise). */
  meeting?: Meeting;
}

/** Builds the header and its exact UTF-8 bytes to sign. */
export async function buildHeader(p: HeaderParams): Promise<{ header: MessageHeader; bytes: Uint8Array; text: string }> {
  const header: MessageHeader = {
    attachments: p.attachments ?? [],
    body: { sha384: await sha384B64(p.body), size: p.body.length },
    conversation: p.conversation,
    id: p.id ?? newId(),
    label: p.label,
    // In its sorted place (RFC 8785 order), and only when there is one: older readers refuse the key.
    ...(p.meeting ? { meeting: p.meeting } : {}),
    purpose: 'sigil-message',
    replyTo: p.replyTo ?? null,
    sender: p.sender,
    sentAt: (p.sentAt ?? new Date()).toISOString(),
    urgent: p.urgent ?? false,
    v: 1,
  };
  messageHeaderSchema.parse(header);
  const problem = meetingProblem(header.meeting, header.replyTo);
  if (problem) throw new Error(`meeting: ${problem}`);
  const words = wordsProblem(header);
  if (words) throw new Error(words);
  const text = canonicalText(header);
  return { header, text, bytes: new TextEncoder().encode(text) };
}

/** Why a received header could not be read as one. */
export type HeaderParse = { ok: true; header: MessageHeader } | { ok: false; detail: string };

/** Parses a header exactly as signed: JSON, canonical form, then the strict schema. */
export function parseHeader(text: string): HeaderParse {
  const read = readCanonicalJson(text);
  if (!read.ok) return { ok: false, detail: read.reason === 'not-json' ? 'the header is not JSON' : 'the header is not in RFC 8785 canonical form' };
  const r = messageHeaderSchema.safeParse(read.value);
  if (!r.success) {
    const i = r.error.issues[0];
    return { ok: false, detail: `header field ${i?.path.join('.') || '(root)'}: ${i?.message ?? 'invalid'}` };
  }
  const problem = meetingProblem(r.data.meeting, r.data.replyTo);
  if (problem) return { ok: false, detail: `header field meeting: ${problem}` };
  return { ok: true, header: r.data };
}

/** The `sigil-delete` statement (API.md "Signed statements") as canonical text. */
export function deleteStatement(target: string, reason: string, at: Date): string {
  return canonicalText({ at: at.toISOString(), purpose: 'sigil-delete', reason, target });
}
