/**
 * `sigil inbox`: your conversations with unread counts, and the unread messages of each, verified
 * locally like `sigil read` (loud VERIFICATION FAILED lines, exit 3). Does not mark them read.
 */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { wholeNumber } from '../../flag-numbers.js';

export interface InboxOptions {
  limit?: number;
  json?: boolean;
}

export function inboxCommand(ctx: CommandContext): Command {
  const cmd = new Command('inbox')
    .summary('conversations with unread messages, verified')
    .description(
      'List your conversations with their unread counts and show the unread messages, each verified locally. ' +
        'Messages stay unread until you run sigil read.',
    )
    .option('--limit <n>', 'at most this many unread messages per conversation (1–200, default 20)', wholeNumber('--limit', 1, 200))
    .option('--json', 'print {conversations: [{…, messages: [...]}]} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil inbox', 'sigil inbox --limit 5 --json'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: InboxOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { ConversationsSchema } = await import('../../messaging/api.js');
  const { banner, conversationName } = await import('../../messaging/render.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  const { fetchMessages, showMessages } = await import('./read.js');
  const ms = await MessagingSession.open(rt);
  const { conversations } = await ms.http.get('/v1/conversations', ConversationsSchema);
  const limit = opts.limit ?? 20;
  let failed = 0;
  let total = 0;
  const out: Record<string, unknown>[] = [];
  for (const c of conversations) {
    const name = conversationName(c);
    const unread = c.unread > 0 ? await fetchMessages(ms, c.id, 0, Math.min(limit, c.unread)) : [];
    if (!rt.json) rt.out.line(`${banner(c.label)} ${name}  ${c.unread} unread${c.muted ? ' (muted)' : ''}`);
    const shown = await showMessages(rt, ms, unread);
    failed += shown.failed;
    total += unread.length;
    out.push({ id: c.id, kind: c.kind, name, label: c.label, unread: c.unread, muted: c.muted, messages: shown.shown });
  }
  if (rt.json) rt.out.json({ conversations: out });
  else if (conversations.length === 0) rt.out.note('no conversations');
  if (failed > 0) throw new MessageUnverifiedError(`${failed} of ${total} messages failed verification; do not act on them`);
}
