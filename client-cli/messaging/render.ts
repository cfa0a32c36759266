/**
 * How verified messages are shown: one line per message with its label as a banner,
 * `[SECRET] 2026-11-22 10:01 alee: text`, and a loud `!! VERIFICATION FAILED: <reason>` line
 * for any message that did not verify (its text is still shown, marked, so a reader sees what
 * they are asked to distrust). `--json` gives one object per message with the verdict.
 * Nothing here writes to disk.
 */
import { clearanceBanner, isClearance } from '../../pki/index.js';
import { escapeControls, oneLine } from '../terminal-text.js';
import type { Conversation, Message } from './api.js';
import type { Meeting, MeetingAnswer } from './header.js';
import type { MessageVerification } from './verify.js';

/** `[SECRET]`; a label that is not a clearance (the server's word for a message that failed) shown escaped. */
export function banner(label: string): string {
  return `[${isClearance(label) ? clearanceBanner(label) : oneLine(label.toUpperCase())}]`;
}

/** How a conversation is named to people: `#group`, or the other person's login (one line, escaped: the server says it). */
export function conversationName(c: Pick<Conversation, 'id' | 'kind' | 'name' | 'peer'>): string {
  return oneLine(c.kind === 'group' ? `#${c.name ?? c.id}` : (c.peer ?? c.id));
}

/** `2026-11-22 10:01` in UTC (appliances and workstations of one network share UTC). */
export function shortTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 16).replace('T', ' ');
}

/**
 * The body as text to show; control characters (terminal escapes) are shown escaped, never
 * executed. For display only (the signed bytes are never changed): a Windows line end (CR LF) is a
 * line break like LF, and the one line break that ends most texts (`echo … | sigil send`, typed
 * lines) is not shown as an empty line. A lone CR stays escaped: it would let a text overwrite
 * what the terminal just printed, such as its banner.
 */
export function bodyText(m: Message): string {
  if (m.body === undefined || m.body === null) return '(body withheld)';
  return escapeControls(Buffer.from(m.body, 'base64').toString('utf8').replace(/\r\n/g, '\n').replace(/\n$/, ''));
}

export { escapeControls, oneLine };

/**
 * A meeting's time, said in UTC since people read it as a time to be somewhere:
 * `2026-12-03 10:00–10:45 UTC`, or both dates when it ends on another day.
 */
export function meetingTime(start: string, end: string): string {
  const from = shortTime(start);
  const to = shortTime(end);
  return `${from}–${from.slice(0, 10) === to.slice(0, 10) ? to.slice(11) : to} UTC`;
}

const ANSWERED: Record<MeetingAnswer, string> = { accept: 'accepts', decline: 'declines', tentative: 'tentatively accepts' };

/** What a verified meeting header says, in one line (title and place kept to it and escaped: others wrote them). */
export function meetingSummary(meeting: Meeting): string {
  switch (meeting.kind) {
    case 'invite':
      return `meeting "${oneLine(meeting.title)}" ${meetingTime(meeting.start, meeting.end)}${meeting.place === null ? '' : `, ${oneLine(meeting.place)}`}`;
    case 'answer':
      return `${ANSWERED[meeting.answer]} the meeting`;
    case 'cancel':
      return 'cancels the meeting';
  }
}

/** The lines people see for one message. */
export function messageLines(m: Message, v: MessageVerification): string[] {
  const label = v.ok ? v.header.label : m.label;
  const who = oneLine(v.ok ? v.header.sender : m.sender);
  const urgent = (v.ok ? v.header.urgent : m.urgent) ? ' URGENT' : '';
  const text = bodyText(m).split('\n');
  // A meeting with no text of its own is said on the message's line; with text, under it.
  const meeting = v.ok && v.header.meeting ? meetingSummary(v.header.meeting) : undefined;
  const meetingFirst = meeting !== undefined && text.length === 1 && text[0] === '';
  const lines = [`${banner(label)}${urgent} ${shortTime(v.ok ? v.header.sentAt : m.receivedAt)} ${who}: ${meetingFirst ? meeting : text[0]}`, ...text.slice(1).map((l) => `    ${l}`)];
  if (meeting !== undefined && !meetingFirst) lines.push(`    ${meeting}`);
  if (v.ok && v.header.meeting?.kind === 'invite') lines.push(`    answer: sigil meeting answer ${m.id} accept|decline|tentative`);
  if (v.ok) {
    // File names are the sender's words too: kept to their line and escaped, so that a name can
    // neither drive the terminal nor begin a line that reads like another, verified, message.
    for (const a of v.header.attachments) {
      const name = oneLine(a.name);
      lines.push(`    attachment: ${name} (${a.size} bytes) — sigil download ${m.id}${v.header.attachments.length > 1 ? ` --name '${name}'` : ''}`);
    }
    if (v.header.replyTo) lines.push(`    in reply to ${v.header.replyTo}`);
    if (v.revokedLater) lines.push(`    signed before revocation (revoked ${v.revokedLater.at.toISOString()}, ${v.revokedLater.reason})`);
  } else {
    // The detail may quote a certificate's subject: the signer's words.
    lines.push(`!! VERIFICATION FAILED: ${v.reason}: ${oneLine(v.detail)}`);
  }
  lines.push(`    id ${m.id}`);
  return lines;
}

/** The machine form of one message with its verdict. */
export function messageJson(m: Message, v: MessageVerification): Record<string, unknown> {
  const base = {
    id: m.id,
    seq: m.seq,
    conversation: m.conversation,
    receivedAt: m.receivedAt,
    body: m.body === undefined || m.body === null ? null : Buffer.from(m.body, 'base64').toString('utf8'),
  };
  if (!v.ok) return { ...base, sender: m.sender, label: m.label, urgent: m.urgent, verified: false, reason: v.reason, detail: v.detail };
  return {
    ...base,
    sender: v.header.sender,
    label: v.header.label,
    urgent: v.header.urgent,
    sentAt: v.header.sentAt,
    replyTo: v.header.replyTo,
    attachments: v.header.attachments,
    ...(v.header.meeting ? { meeting: v.header.meeting } : {}),
    verified: true,
    signer: v.signer,
    signerSerial: v.signerCert.serialNumber,
    ...(v.revokedLater ? { revokedLater: { at: v.revokedLater.at.toISOString(), reason: v.revokedLater.reason } } : {}),
  };
}
