/**
 * `sigil meeting schedule <login|#group> --at WHEN --for DURATION [--place PLACE]`: sends a signed
 * meeting invitation (server/API.md "Meetings"). The title is the first line of the text, read as
 * `sigil send` reads its text (stdin, or typed at a prompt), never from argv: what a meeting is
 * about can be as telling as a message. The lines after it are the agenda, the message's body.
 */
import { Command, Option } from 'commander';
import { CLEARANCE_CHOICES } from '../../choices.js';
import { runtimeFor, type CommandContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { isOneLine } from '../../terminal-text.js';
import { parseDuration, parseWhen } from './times.js';

export interface ScheduleOptions {
  to: string;
  at: string;
  for: string;
  place?: string;
  label?: string;
  urgent?: boolean;
  json?: boolean;
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** How long before now a meeting may still be scheduled to start: a clock a little behind, not yesterday. */
const PAST_TOLERANCE_MS = 5 * 60_000;

export function scheduleCommand(ctx: CommandContext): Command {
  const cmd = new Command('schedule')
    .summary('invite a person or #group to a meeting, signed')
    .description(
      'Send a signed meeting invitation to a person (login) or a group (#name). The first line of the text is the ' +
        "meeting's title and the lines after it its agenda; the text is read from stdin, or typed at a prompt on a " +
        'terminal (ended by an empty line), never from the command line. The title, time and place are in the signed ' +
        'header, which officers and auditors see when they verify messages (as they see file names); the agenda is ' +
        'the body, which they do not. Times are UTC unless they carry an offset. ' +
        'Members answer with sigil meeting answer; sigil meeting list shows what is coming and who accepted.',
    )
    .argument('<to>', 'login of a person, or #group')
    .requiredOption('--at <when>', 'start: 2026-12-03 10:00 (UTC), or 2026-12-03T10:00+01:00')
    .requiredOption('--for <duration>', 'how long: 45m, 1h30m, 2d (at most 7d)')
    .option('--place <place>', 'where (1–200 characters; visible to other local users in ps, like every argument)')
    .addOption(new Option('--label <label>', 'classification of the invitation').choices(CLEARANCE_CHOICES))
    .option('--urgent', 'urgent: reaches members who muted the conversation')
    .option('--json', 'print the receipt with the meeting as JSON')
    .action(async (to: string, opts: Omit<ScheduleOptions, 'to'>, c: Command) => run({ ...opts, to, stdin: process.stdin }, runtimeFor(ctx, c)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      "sigil meeting schedule bkim --at '2026-12-02 14:00' --for 30m   # then type the title (and agenda), ending with an empty line",
      "echo 'Budget review' | sigil meeting schedule '#ops' --at '2026-12-03 10:00' --for 45m --place 'Room 4.12'",
      "printf 'Exercise NORTH\\nDay 1: briefing\\nDay 2: field\\n' | sigil meeting schedule '#ops' --at 2026-12-07T06:00 --for 2d --label secret",
    ],
    exitCodes: [EXIT.auth],
  });
}

/** The title (first line, trimmed) and the agenda (the lines after it) of the text given. */
export function titleAndAgenda(text: string): { title: string; agenda: string } {
  const [first = '', ...rest] = text.replace(/\r\n/g, '\n').split('\n');
  const title = first.trim();
  if (title.length === 0) throw new UsageError("the meeting needs a title: the text's first line (on stdin or at the prompt)");
  if (title.length > 200) throw new UsageError(`the title (the text's first line) is ${title.length} characters; at most 200`);
  if (!isOneLine(title)) throw new UsageError("the title (the text's first line) holds a control character, a tab or a bidirectional override");
  return { title, agenda: rest.join('\n') };
}

export async function run(opts: ScheduleOptions, rt: Runtime): Promise<void> {
  const start = parseWhen(opts.at);
  const end = new Date(start.getTime() + parseDuration(opts.for) * 60_000);
  const place = opts.place?.trim();
  if (place !== undefined && (place.length < 1 || place.length > 200)) throw new UsageError('--place: 1 to 200 characters');
  if (place !== undefined && !isOneLine(place)) throw new UsageError('--place: no control characters, tabs or bidirectional overrides');
  if (start.getTime() < rt.io.now().getTime() - PAST_TOLERANCE_MS) {
    throw new UsageError(`--at: ${start.toISOString()} has passed; a meeting is scheduled ahead`);
  }
  const { chooseLabel, readInput } = await import('../message/send.js');
  const input = await readInput(opts.stdin, rt.io.stderr, `Meeting with ${opts.to}: the title, then any agenda, ended by an empty line or Ctrl-D:`);
  const { title, agenda } = titleAndAgenda(input.toString('utf8'));
  const { MessagingSession } = await import('../../messaging/session.js');
  const ms = await MessagingSession.open(rt);
  const conv = await ms.resolve(opts.to);
  const label = await chooseLabel(ms, conv, opts.label);
  const meeting = { kind: 'invite' as const, title, start: start.toISOString(), end: end.toISOString(), place: place ?? null };
  const { receipt } = await ms.post({ conversation: conv.id, label, body: Buffer.from(agenda, 'utf8'), replyTo: null, urgent: Boolean(opts.urgent), meeting });
  if (rt.json) return rt.out.json({ ...receipt, label, meeting });
  const { meetingTime } = await import('../../messaging/render.js');
  rt.out.fields([
    ['invited', receipt.id],
    ['to', opts.to],
    ['title', title],
    ['when', meetingTime(meeting.start, meeting.end)],
    ...(place !== undefined ? [['place', place] as [string, string]] : []),
    ['label', label.replace('-', ' ').toUpperCase()],
    ['seq', receipt.seq],
  ]);
}
