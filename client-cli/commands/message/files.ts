/**
 * `sigil files <login|#group>`: the files of a conversation, newest first — a group's file store,
 * as MISSION asks. Each file is listed from its message's signed header, so the list is only as
 * good as the verification: every message is verified locally as `sigil read` does; a message that
 * fails is listed loudly in place of its files (none of its header can be believed, its file names
 * neither) and the command exits 3. Nothing is downloaded and nothing is marked read; `sigil
 * download` saves a file.
 */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { wholeNumber } from '../../flag-numbers.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface FilesOptions {
  conversation: string;
  limit?: number;
  json?: boolean;
}

export function filesCommand(ctx: CommandContext): Command {
  const cmd = new Command('files')
    .summary('list the files of a conversation, verified')
    .description(
      'List the files sent in a conversation with a person (login) or a group (#name), newest first: when, who, the ' +
        'file name and size, and the message that carries it (for sigil download). Every message is verified locally; ' +
        'one that fails is marked "!! VERIFICATION FAILED" and the command exits 3. Marks nothing read.',
    )
    .argument('<conversation>', 'login of a person, or #group')
    .option('--limit <n>', 'look through at most this many of the newest messages (1–10000, default 1000)', wholeNumber('--limit', 1, 10_000))
    .option('--json', 'print {conversation, files: [...]} with each file’s message and verdict as JSON')
    .action(action1(ctx, 'conversation', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ["sigil files '#ops'", 'sigil files bkim --limit 200', "sigil files '#ops' --json"],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

/** One file as listed. */
interface Listed {
  message: string;
  sentAt: string;
  sender: string;
  name: string;
  size: number;
  verified: boolean;
  reason?: string;
}

export async function run(opts: FilesOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { MessageUnverifiedError } = await import('../../messaging/errors.js');
  const { shortTime } = await import('../../messaging/render.js');
  const { fetchMessages } = await import('./read.js');
  const ms = await MessagingSession.open(rt);
  const conv = await ms.resolve(opts.conversation);
  const messages = (await fetchMessages(ms, conv.id, 0, opts.limit ?? 1000)).reverse();
  const files: Listed[] = [];
  let failed = 0;
  for (const m of messages) {
    // Every message is verified, not only those whose header names files: a header whose
    // signature fails could as well have had its files taken out.
    const v = await ms.verify(m);
    if (!v.ok) {
      failed++;
      files.push({ message: m.id, sentAt: m.receivedAt, sender: m.sender, name: '', size: 0, verified: false, reason: `${v.reason}: ${v.detail}` });
      continue;
    }
    for (const a of v.header.attachments) files.push({ message: m.id, sentAt: v.header.sentAt, sender: v.header.sender, name: a.name, size: a.size, verified: true });
  }
  if (rt.json) rt.out.json({ conversation: { id: conv.id, kind: conv.kind, name: conv.name ?? conv.peer }, files });
  else if (files.length === 0) rt.out.note(`no files in the newest ${messages.length} messages`);
  else {
    // The table escapes every cell (output.ts): a sender's file name never drives the terminal.
    rt.out.table(
      files.map((f) => ({ ...f, sentAt: shortTime(f.sentAt), name: f.verified ? f.name : `!! VERIFICATION FAILED: ${f.reason}` })),
      [
        ['sentAt', 'SENT'],
        ['sender', 'FROM'],
        ['name', 'FILE'],
        ['size', 'BYTES'],
        ['message', 'MESSAGE'],
      ],
    );
  }
  if (failed > 0) throw new MessageUnverifiedError(`${failed} of ${messages.length} messages failed verification; do not trust their files`);
}
