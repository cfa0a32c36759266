/**
 * `sigil meeting list [--in CONVERSATION] [--all]`: the meetings of your conversations, soonest
 * first, each with its answers, built from the newest messages of each conversation as their
 * verified headers say them. The appliance keeps no meeting table (a title, place or time in a
 * column would be content on disk), so the list is made here, in memory.
 *
 * Every message whose header carries a meeting, or cannot be read at all, is verified before it
 * counts; a failed one is listed loudly and the command exits 3. The others are not verified: each
 * would cost a signature and chain check, up to 500 per conversation, and none says anything the
 * list shows. A header whose meeting was taken out could only hide a message, which an
 * appliance could as well do by not returning it, and no verification reveals. An answer or
 * cancellation counts only in the invitation's conversation, a cancellation only from the
 * invitation's sender, and a person's latest answer replaces their earlier ones.
 */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { wholeNumber } from '../../flag-numbers.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { Conversation, Message } from '../../messaging/api.js';
import type { MeetingAnswer } from '../../messaging/header.js';
import type { MessageVerification } from '../../messaging/verify.js';
import type { MessagingSession } from '../../messaging/session.js';
import { oneLine } from '../../terminal-text.js';

export interface ListOptions {
  in?: string;
  all?: boolean;
  limit?: number;
  json?: boolean;
}

/** One meeting as listed. */
export interface ListedMeeting {
  id: string;
  conversation: string;
  conversationName: string;
  label: string;
  organiser: string;
  title: string;
  start: string;
  end: string;
  place: string | null;
  cancelled: boolean;
  /** Each person's latest answer, in the order they gave them. */
  answers: { login: string; answer: MeetingAnswer; at: string }[];
  /** The conversation's members now, but the organiser, who have not answered (set by `meeting list`). */
  noAnswer?: string[];
}

/** A message looked through that did not verify. */
export interface FailedMessage {
  id: string;
  conversationName: string;
  sender: string;
  reason: string;
}

/** The loud line for a failed message (`meeting list`, `watch --remind`); what the server or signer said kept to it. */
export function failedLine(f: FailedMessage): string {
  return `!! VERIFICATION FAILED: message ${oneLine(f.id)} in ${f.conversationName} from ${oneLine(f.sender)}: ${oneLine(f.reason)}`;
}

export function listCommand(ctx: CommandContext): Command {
  const cmd = new Command('list')
    .summary('the meetings ahead, with who accepted, verified')
    .description(
      'List the meetings of your conversations that have not ended (with --all, also those past), soonest first: ' +
        'when, the title, where, who organised it, whether it was cancelled, each answer, and who of the conversation ' +
        'has not answered. Built on this workstation from the newest messages of each conversation; every invitation, ' +
        'answer and cancellation is verified, and one that fails is listed as "!! VERIFICATION FAILED" and the command ' +
        'exits 3. Marks nothing read.',
    )
    .option('--in <conversation>', 'only this conversation: login of a person, or #group')
    .option('--all', 'also the meetings that have ended')
    .option('--limit <n>', 'look through at most this many of the newest messages of each conversation (1–5000, default 500)', wholeNumber('--limit', 1, 5000))
    .option('--json', 'print {meetings: [...], failed: [...]} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil meeting list', "sigil meeting list --in '#ops' --all", 'sigil meeting list --json'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

/**
 * The meetings one conversation's verified messages set (oldest first, as fetched), and the
 * cancellations ignored for not coming from the organiser. Pure: the rules in one place.
 */
export function meetingsOf(conv: Pick<Conversation, 'id'> & { name: string }, verified: { m: Message; v: MessageVerification }[]): { meetings: ListedMeeting[]; ignored: number } {
  const meetings = new Map<string, ListedMeeting>();
  let ignored = 0;
  for (const { v } of verified) {
    if (!v.ok || !v.header.meeting) continue;
    const h = v.header;
    const meeting = h.meeting as NonNullable<typeof h.meeting>;
    if (meeting.kind === 'invite') {
      meetings.set(h.id, {
        id: h.id,
        conversation: conv.id,
        conversationName: conv.name,
        label: h.label,
        organiser: h.sender,
        title: meeting.title,
        start: meeting.start,
        end: meeting.end,
        place: meeting.place,
        cancelled: false,
        answers: [],
      });
      continue;
    }
    // Answers and cancellations come after their invitation: one naming a meeting not (yet) seen
    // here is of another conversation or older than the messages looked through.
    const target = h.replyTo === null ? undefined : meetings.get(h.replyTo);
    if (!target) continue;
    if (meeting.kind === 'cancel') {
      if (h.sender === target.organiser) target.cancelled = true;
      else ignored++;
      continue;
    }
    target.answers = [...target.answers.filter((a) => a.login !== h.sender), { login: h.sender, answer: meeting.answer, at: h.sentAt }];
  }
  return { meetings: [...meetings.values()], ignored };
}

/** What {@link collectMeetings} found over the conversations looked through. */
export interface CollectedMeetings {
  /** Every meeting found, past ones too, in no order. */
  meetings: ListedMeeting[];
  failed: FailedMessage[];
  /** Cancellations not from their meeting's organiser. */
  ignored: number;
  /** How many messages were verified. */
  checked: number;
}

/**
 * The meetings in the newest `limit` messages of each conversation, every message carrying a
 * meeting (or with a header that cannot be read) verified: what `meeting list` shows and what
 * `watch --remind` starts from.
 */
export async function collectMeetings(ms: MessagingSession, conversations: Conversation[], limit: number): Promise<CollectedMeetings> {
  const { conversationName } = await import('../../messaging/render.js');
  const { fetchMessages } = await import('../message/read.js');
  const { parseHeader } = await import('../../messaging/header.js');
  const out: CollectedMeetings = { meetings: [], failed: [], ignored: 0, checked: 0 };
  for (const c of conversations) {
    const name = conversationName(c);
    const verified = [];
    for (const m of await fetchMessages(ms, c.id, 0, limit)) {
      const claim = parseHeader(m.header);
      if (claim.ok && claim.header.meeting === undefined) continue;
      const v = await ms.verify(m);
      if (!v.ok) out.failed.push({ id: m.id, conversationName: name, sender: m.sender, reason: `${v.reason}: ${v.detail}` });
      verified.push({ m, v });
    }
    out.checked += verified.length;
    const found = meetingsOf({ id: c.id, name }, verified);
    out.meetings.push(...found.meetings);
    out.ignored += found.ignored;
  }
  return out;
}

export async function run(opts: ListOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { ConversationsSchema } = await import('../../messaging/api.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  const ms = await MessagingSession.open(rt);
  const conversations = opts.in === undefined ? (await ms.http.get('/v1/conversations', ConversationsSchema)).conversations : [await ms.resolve(opts.in)];
  const limit = opts.limit ?? 500;
  const now = rt.io.now().getTime();
  const { meetings: all, failed, ignored, checked } = await collectMeetings(ms, conversations, limit);
  const meetings = all.filter((x) => opts.all || Date.parse(x.end) > now).sort((a, b) => a.start.localeCompare(b.start) || a.id.localeCompare(b.id));
  await addNoAnswer(ms, conversations, meetings);
  if (rt.json) rt.out.json({ meetings, failed, ignoredCancellations: ignored });
  else await printMeetings(rt, meetings, failed, ignored, opts.all ? `no meetings in the newest ${limit} messages of each conversation` : 'no meetings ahead');
  if (failed.length > 0) throw new MessageUnverifiedError(`${failed.length} of ${checked} meeting messages failed verification; do not trust the meetings list`);
}

/**
 * Sets each meeting's `noAnswer`: the members of its conversation now (a group's from
 * `GET /v1/conversations/:id`, fetched once per group; a direct one's two people), but the
 * organiser and those who answered.
 */
async function addNoAnswer(ms: MessagingSession, conversations: Conversation[], meetings: ListedMeeting[]): Promise<void> {
  const { ConversationSchema } = await import('../../messaging/api.js');
  const byId = new Map(conversations.map((c) => [c.id, c]));
  const members = new Map<string, string[]>();
  for (const x of meetings) {
    let who = members.get(x.conversation);
    if (!who) {
      const c = byId.get(x.conversation);
      who =
        c?.kind === 'direct'
          ? [ms.login, ...(c.peer ? [c.peer] : [])]
          : ((await ms.http.get(`/v1/conversations/${encodeURIComponent(x.conversation)}`, ConversationSchema)).members ?? []).map((m) => m.login);
      members.set(x.conversation, who);
    }
    const answered = new Set([x.organiser, ...x.answers.map((a) => a.login)]);
    x.noAnswer = who.filter((login) => !answered.has(login)).sort();
  }
}

async function printMeetings(rt: Runtime, meetings: ListedMeeting[], failed: FailedMessage[], ignored: number, none: string): Promise<void> {
  const { banner, meetingTime } = await import('../../messaging/render.js');
  for (const x of meetings) {
    rt.out.line(`${meetingTime(x.start, x.end)}  ${banner(x.label)} ${x.conversationName}  ${x.cancelled ? 'CANCELLED ' : ''}${oneLine(x.title)}`);
    const by = (a: MeetingAnswer) => oneLine(x.answers.filter((y) => y.answer === a).map((y) => y.login).join(', ')) || '—';
    const silent = x.noAnswer?.length ? oneLine(x.noAnswer.join(', ')) : '—';
    rt.out.line(`    by ${oneLine(x.organiser)}${x.place === null ? '' : `, ${oneLine(x.place)}`} · accepted: ${by('accept')} · tentative: ${by('tentative')} · declined: ${by('decline')} · no answer: ${silent}`);
    rt.out.line(`    id ${x.id}`);
  }
  for (const f of failed) rt.out.line(failedLine(f));
  if (ignored > 0) rt.out.note(`${ignored} cancellation${ignored === 1 ? '' : 's'} not from the meeting's organiser ignored`);
  if (meetings.length === 0 && failed.length === 0) rt.out.note(none);
}
