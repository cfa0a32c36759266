/**
 * `sigil read <login|#group> [--since SEQ] [--limit N]`: a conversation's messages, oldest first,
 * each verified locally (signature, chain, CRL, digest, label) before it is shown; a message that
 * fails is shown with a loud VERIFICATION FAILED line and the command exits 3. Nothing is cached.
 */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { wholeNumber } from '../../flag-numbers.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { Message } from '../../messaging/api.js';
import type { MessagingSession } from '../../messaging/session.js';

export interface ReadOptions {
  conversation: string;
  since?: number;
  limit?: number;
  json?: boolean;
}

export function readCommand(ctx: CommandContext): Command {
  const cmd = new Command('read')
    .summary('show and verify a conversation’s messages')
    .description(
      'Show the messages of a conversation with a person (login) or a group (#name), oldest first. Every message is ' +
        'verified locally against the pinned CA and the CRL; one that fails is marked "!! VERIFICATION FAILED" and ' +
        'the command exits 3. Marks the shown messages read.',
    )
    .argument('<conversation>', 'login of a person, or #group')
    .option('--since <seq>', 'only messages after this sequence number', wholeNumber('--since', 0))
    .option('--limit <n>', 'at most this many of the newest messages (1–200, default 50)', wholeNumber('--limit', 1, 200))
    .option('--json', 'print {conversation, messages: [...]} with each message’s verdict as JSON')
    .action(action1(ctx, 'conversation', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil read bkim', "sigil read '#ops' --limit 20", 'sigil read bkim --since 1042 --json'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

/** Fetches up to `limit` messages newer than `since`, oldest first. */
export async function fetchMessages(ms: MessagingSession, conversation: string, since: number, limit: number): Promise<Message[]> {
  const { MessagePageSchema } = await import('../../messaging/api.js');
  const out: Message[] = [];
  let before: number | undefined;
  for (;;) {
    const q = new URLSearchParams({ limit: String(Math.min(200, limit)) });
    if (before !== undefined) q.set('before', String(before));
    const page = await ms.http.get(`/v1/conversations/${encodeURIComponent(conversation)}/messages?${q}`, MessagePageSchema);
    let done = false;
    for (const m of page.messages) {
      if (m.seq <= since || out.length >= limit) {
        done = true;
        break;
      }
      out.push(m);
    }
    if (done || page.messages.length === 0 || page.nextBefore === undefined || page.nextBefore === null) break;
    before = page.nextBefore;
  }
  return out.reverse();
}

/** Verifies and prints messages; returns how many failed verification. */
export async function showMessages(rt: Runtime, ms: MessagingSession, messages: Message[]): Promise<{ failed: number; shown: Record<string, unknown>[] }> {
  const { messageJson, messageLines } = await import('../../messaging/render.js');
  let failed = 0;
  const shown: Record<string, unknown>[] = [];
  for (const m of messages) {
    const v = await ms.verify(m);
    if (!v.ok) failed++;
    if (rt.json) shown.push(messageJson(m, v));
    else for (const l of messageLines(m, v)) rt.out.line(l);
  }
  return { failed, shown };
}

export async function run(opts: ReadOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { OkSchema } = await import('../../api.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  const ms = await MessagingSession.open(rt);
  const conv = await ms.resolve(opts.conversation);
  const messages = await fetchMessages(ms, conv.id, opts.since ?? 0, opts.limit ?? 50);
  const { failed, shown } = await showMessages(rt, ms, messages);
  if (rt.json) rt.out.json({ conversation: { id: conv.id, kind: conv.kind, name: conv.name ?? conv.peer, label: conv.label }, messages: shown });
  else if (messages.length === 0) rt.out.note('no messages');
  const last = messages.at(-1);
  if (last) await ms.http.post(`/v1/conversations/${encodeURIComponent(conv.id)}/read`, { upTo: last.seq }, OkSchema);
  if (failed > 0) throw new MessageUnverifiedError(`${failed} of ${messages.length} messages failed verification; do not act on them`);
}
