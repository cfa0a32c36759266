/**
 * `sigil watch`: follows the live event stream and prints each new message as it arrives,
 * verified locally. After a dropped connection it reconnects with Last-Event-ID and resumes
 * without loss or duplicates. Ends on SIGINT (exit 0, or 3 if a message failed verification),
 * after `--count N` messages, or when its session ends (exit 4): the server does not count an open
 * stream as use of the session, so an unattended watch does not keep it from idling out.
 *
 * With `--remind LEAD` it also says each meeting ahead once, LEAD before it starts
 * (messaging/reminders.ts): those in the newest messages of each conversation at the start, and
 * those invited to while it watches; a cancellation by the organiser silences one.
 */
import { Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { Conversation, Message } from '../../messaging/api.js';
import type { Reminders } from '../../messaging/reminders.js';
import type { MessagingSession } from '../../messaging/session.js';
import type { MessageVerification } from '../../messaging/verify.js';
import { wholeNumber } from '../../flag-numbers.js';
import { parseDuration } from '../meeting/times.js';
import { oneLine } from '../../terminal-text.js';

export interface WatchOptions {
  count?: number;
  /** `--remind`: minutes before a meeting's start to say it. */
  remind?: number;
  since?: number;
  json?: boolean;
  /** Aborts the watch cleanly (wired to SIGINT in the binary). */
  signal?: AbortSignal;
}

export function watchCommand(ctx: CommandContext): Command {
  const cmd = new Command('watch')
    .summary('print new messages live, verified')
    .description(
      'Follow new messages live. Each is verified locally before it is shown; a failure is marked loudly. ' +
        'A dropped connection is resumed where it stopped (nothing lost, nothing twice). Ctrl-C ends it. ' +
        'Watching is no use of the session: when the session ends (idle timeout, logout, revocation) watch says so and exits 4; log in again.',
    )
    .option('--count <n>', 'exit after this many messages', wholeNumber('--count', 1))
    .option('--since <seq>', 'first replay every message after this sequence number', wholeNumber('--since', 0))
    .option('--remind <lead>', 'also say each meeting ahead this long before it starts: 10m, 1h (sigil meeting list finds them)', (v: string) => parseDuration(v, '--remind'))
    .option('--json', 'print one JSON object per line per event')
    .action(async (opts: WatchOptions, c: Command) => {
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await run({ ...opts, signal: ac.signal }, runtimeFor(ctx, c));
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil watch', 'sigil watch --remind 10m', 'sigil watch --json | jq .body', 'sigil watch --count 1   # wait for the next message'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

/** How often reminders are checked between live events. */
const REMIND_TICK_MS = 15_000;

export async function run(opts: WatchOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { ConversationsSchema, DeletedEventSchema, MessageSchema } = await import('../../messaging/api.js');
  const { followEvents } = await import('../../messaging/events.js');
  const { messageJson, messageLines } = await import('../../messaging/render.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  const { BadResponseError } = await import('../../errors.js');
  const ms = await MessagingSession.open(rt);
  await ms.trust();
  const ac = new AbortController();
  opts.signal?.addEventListener('abort', () => ac.abort(), { once: true });
  // Without --since, start from the newest message visible now, so that a reconnect before the
  // first new message replays only what arrived meanwhile (the server replays from any id given).
  let since = opts.since;
  const conversations = since === undefined || opts.remind !== undefined ? (await ms.http.get('/v1/conversations', ConversationsSchema)).conversations : [];
  since ??= Math.max(0, ...conversations.map((c) => c.lastSeq));
  const line = (v: unknown): void => void rt.io.stdout.write(JSON.stringify(v) + '\n');
  let seen = 0;
  let failed = 0;
  const reminders = opts.remind === undefined ? undefined : await startReminders(rt, ms, conversations, opts.remind * 60_000, line);
  // The meeting messages verified for the reminders count as looked at, their failures as failures.
  if (reminders) failed += reminders.failed;
  let looked = reminders?.checked ?? 0;
  const ticker = reminders && setInterval(() => reminders.live.tick(), REMIND_TICK_MS);
  try {
    await followEvents(await ms.endpoint(), {
      lastEventId: since,
      signal: ac.signal,
      onReconnect: (n, last, why) => rt.out.note(`connection lost (${oneLine(why)}); reconnecting from ${last ?? 'now'} (attempt ${n})`),
      onEvent: async (e) => {
        if (e.event === 'ready') {
          // Once per (re)connection, after the replay: scripts learn the stream is live.
          if (rt.json) line({ event: 'ready', ...(JSON.parse(e.data) as object) });
          else rt.out.note('watching for new messages (Ctrl-C to stop)');
          return;
        }
        if (e.event === 'deleted') {
          const d = DeletedEventSchema.parse(JSON.parse(e.data));
          if (rt.json) line({ event: 'deleted', conversation: d.conversation, ids: d.ids ?? null });
          // The ids and the conversation are the server's words: kept to this line.
          else rt.out.line(d.ids ? `-- ${d.ids.length} message(s) deleted: ${oneLine(d.ids.join(', '))}` : `-- conversation ${oneLine(d.conversation)} deleted`);
          return;
        }
        if (e.event !== 'message') return;
        const parsed = MessageSchema.safeParse(JSON.parse(e.data));
        if (!parsed.success) throw new BadResponseError('a live message event is not a message');
        const m = parsed.data;
        const v = await ms.verify(m);
        if (!v.ok) failed++;
        if (rt.json) line({ event: 'message', ...messageJson(m, v) });
        else for (const l of messageLines(m, v)) rt.out.line(l);
        if (reminders && v.ok && v.header.meeting) await reminders.heard(m, v);
        seen++;
        looked++;
        if (opts.count !== undefined && seen >= opts.count) ac.abort();
      },
    });
  } finally {
    if (ticker) clearInterval(ticker);
  }
  if (failed > 0) throw new MessageUnverifiedError(`${failed} of ${looked} messages failed verification; do not act on them`);
}

/**
 * The reminders of `--remind`: the meetings in the newest messages of each conversation now (any
 * that fail verification printed loudly and counted), then `heard` for each verified meeting
 * message that arrives live. Each due meeting is one line, or one `{event: "reminder"}` object.
 */
async function startReminders(
  rt: Runtime,
  ms: MessagingSession,
  conversations: Conversation[],
  leadMs: number,
  line: (v: unknown) => void,
): Promise<{ live: Reminders; failed: number; checked: number; heard: (m: Message, v: MessageVerification & { ok: true }) => Promise<void> }> {
  const { collectMeetings, failedLine, meetingsOf } = await import('../meeting/list.js');
  const { Reminders } = await import('../../messaging/reminders.js');
  const { ConversationSchema } = await import('../../messaging/api.js');
  const { banner, conversationName, meetingTime } = await import('../../messaging/render.js');
  const found = await collectMeetings(ms, conversations, 500);
  for (const f of found.failed) rt.out.line(failedLine(f));
  const live = new Reminders(leadMs, () => rt.io.now(), ({ meeting: x, startsInMinutes }) => {
    if (rt.json) return line({ event: 'reminder', ...x, startsInMinutes });
    const place = x.place === null ? '' : `, ${oneLine(x.place)}`;
    rt.out.line(`** REMINDER ${banner(x.label)} ${x.conversationName}: "${oneLine(x.title)}" ${meetingTime(x.start, x.end)}${place} starts in ${startsInMinutes} min (id ${x.id})`);
  });
  for (const x of found.meetings) live.add(x);
  rt.out.note(`reminding ${leadMs / 60_000} min before each of ${live.size} meeting${live.size === 1 ? '' : 's'} ahead`);
  live.tick();
  const names = new Map(conversations.map((c) => [c.id, conversationName(c)]));
  const heard = async (m: Message, v: MessageVerification & { ok: true }): Promise<void> => {
    const meeting = v.header.meeting;
    if (meeting?.kind === 'cancel' && v.header.replyTo) live.cancel(v.header.replyTo, v.header.sender);
    if (meeting?.kind !== 'invite') return;
    let name = names.get(m.conversation);
    if (name === undefined) {
      // A conversation begun while watching; its name is for display only, so a failed lookup
      // shows its id rather than ending the watch.
      name = await ms.http
        .get(`/v1/conversations/${encodeURIComponent(m.conversation)}`, ConversationSchema)
        .then(conversationName, () => oneLine(m.conversation));
      names.set(m.conversation, name);
    }
    for (const x of meetingsOf({ id: m.conversation, name }, [{ m, v }]).meetings) live.add(x);
    live.tick();
  };
  return { live, failed: found.failed.length, checked: found.checked, heard };
}
