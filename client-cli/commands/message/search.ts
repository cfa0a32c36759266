/**
 * `sigil search <text|#tag|-> [--in CONVERSATION]`: the messages of your conversations whose text
 * (or meeting title or place) contains `text`, or carries the hashtag `#tag`, shown as `sigil
 * read` shows them under their conversation. The appliance cannot search for you: bodies exist only sealed in its vault, and an
 * index of their words would be their content on disk. So the search runs here, in memory, over
 * the newest messages of each conversation; each match is verified before it is shown (a failure
 * is marked loudly and the command exits 3). Marks nothing read.
 *
 * Words searched for can be as telling as a message (an operation's name), and the command line is
 * readable by every local user (`ps`): `-` reads them from stdin or a prompt instead, as `sigil
 * send` reads its text.
 */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { wholeNumber } from '../../flag-numbers.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { UsageError } from '../../errors.js';
import type { Message } from '../../messaging/api.js';

export interface SearchOptions {
  /** The words or #tag; `-`: read them from `stdin`. */
  text: string;
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  in?: string;
  limit?: number;
  json?: boolean;
}

export function searchCommand(ctx: CommandContext): Command {
  const cmd = new Command('search')
    .summary('find messages by text or #hashtag, verified')
    .description(
      'Find the messages of your conversations whose text (or meeting title or place) contains TEXT (case does not ' +
        'matter), or that carry the hashtag #TAG as a whole word. The search runs on this workstation, in memory, over ' +
        'the newest messages of each conversation (the appliance keeps no index of words: it would be message content on disk). Every match is ' +
        'verified before it is shown; one that fails is marked "!! VERIFICATION FAILED" and the command exits 3.',
    )
    .argument('<text>', 'words to find, or #tag; - reads them from stdin or a prompt, out of sight of ps')
    .option('--in <conversation>', 'only this conversation: login of a person, or #group')
    .option('--limit <n>', 'look through at most this many of the newest messages of each conversation (1–5000, default 500)', wholeNumber('--limit', 1, 5000))
    .option('--json', 'print {matches: [{conversationName, …each message with its verdict as sigil read --json}]} as JSON')
    .action(action1(ctx, 'text', (opts: SearchOptions, rt: Runtime) => run({ ...opts, stdin: process.stdin }, rt)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      "sigil search '#budget'",
      "sigil search 'convoy' --in '#ops'",
      "sigil search -   # then type the words: they stay off the command line",
      "sigil search '#exercise' --limit 2000 --json",
    ],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

/**
 * Whether `body` (the text as sent) matches `text`: a `#tag` as a whole word (`#budget` is not in
 * `#budgets`), anything else as a substring, both without regard to case.
 */
export function matcher(text: string): (body: string) => boolean {
  const needle = text.trim().toLocaleLowerCase('en');
  if (needle.length === 0) throw new UsageError('search: give the words or #tag to find');
  if (/^#[\p{L}\p{N}_-]+$/u.test(needle)) {
    // The tag holds only letters, digits, `_`, `-` and its `#`: none is special outside a class.
    const tag = new RegExp(`(?<![\\p{L}\\p{N}_#-])${needle}(?![\\p{L}\\p{N}_-])`, 'u');
    return (body) => tag.test(body.toLocaleLowerCase('en'));
  }
  return (body) => body.toLocaleLowerCase('en').includes(needle);
}

export async function run(opts: SearchOptions, rt: Runtime): Promise<void> {
  const text = opts.text === '-' ? await readWords(opts.stdin, rt.io.stderr) : opts.text;
  const matches = matcher(text);
  const { MessagingSession } = await import('../../messaging/session.js');
  const { ConversationsSchema } = await import('../../messaging/api.js');
  const { banner, conversationName } = await import('../../messaging/render.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  const { fetchMessages, showMessages } = await import('./read.js');
  const { parseHeader } = await import('../../messaging/header.js');
  const ms = await MessagingSession.open(rt);
  const conversations = opts.in === undefined ? (await ms.http.get('/v1/conversations', ConversationsSchema)).conversations : [await ms.resolve(opts.in)];
  const limit = opts.limit ?? 500;
  const out: Record<string, unknown>[] = [];
  let failed = 0;
  let found = 0;
  for (const c of conversations) {
    const name = conversationName(c);
    const hits = (await fetchMessages(ms, c.id, 0, limit)).filter((m) => matches(textOf(m, parseHeader)));
    if (hits.length === 0) continue;
    found += hits.length;
    if (!rt.json) rt.out.line(`${banner(c.label)} ${name}  ${hits.length} found`);
    const shown = await showMessages(rt, ms, hits);
    failed += shown.failed;
    for (const m of shown.shown) out.push({ conversationName: name, ...m });
  }
  if (rt.json) rt.out.json({ matches: out });
  else if (found === 0) rt.out.note(opts.text === '-' ? 'nothing found' : `nothing found for ${text}`);
  if (failed > 0) throw new MessageUnverifiedError(`${failed} of ${found} messages found failed verification; do not act on them`);
}

/** The words from stdin: typed at a prompt on a terminal (up to an empty line), else read to its end. */
async function readWords(stdin: SearchOptions['stdin'], stderr: { write(s: string): unknown }): Promise<string> {
  const { readInput } = await import('./send.js');
  return (await readInput(stdin, stderr, 'Words or #tag to find, ended by an empty line or Ctrl-D:')).toString('utf8');
}

/**
 * The text as sent, and a meeting invitation's title and place (they are in the header, the
 * agenda in the body); a body the appliance withheld matches nothing. Read before verification
 * only to choose: every match is verified before it is shown.
 */
function textOf(m: Message, parseHeader: typeof import('../../messaging/header.js').parseHeader): string {
  const body = m.body === undefined || m.body === null ? '' : Buffer.from(m.body, 'base64').toString('utf8');
  // Most headers carry no meeting: not parsed for nothing, as the search reads hundreds of them.
  if (!m.header.includes('"meeting":')) return body;
  const h = parseHeader(m.header);
  const meeting = h.ok && h.header.meeting?.kind === 'invite' ? h.header.meeting : undefined;
  return meeting ? `${body}\n${meeting.title}\n${meeting.place ?? ''}` : body;
}
