/**
 * `sigil send <login|#group> [text] [--file PATH …] [--label L] [--urgent] [--reply-to ID]`:
 * uploads any files (streamed, hashed on the way), builds the canonical header (server/API.md,
 * "The signed header"), signs it with the user's key and the label as ESS security label, and
 * posts it. The text comes from the argument or, without one, from stdin (read into memory only).
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { Command, Option } from 'commander';
import { CLEARANCE_CHOICES } from '../../choices.js';
import type { CommandContext } from '../../context.js';
import { runtimeFor } from '../../context.js';
import { CliError, InputFileError, UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface SendOptions {
  to: string;
  text?: string;
  file?: string[];
  label?: string;
  urgent?: boolean;
  replyTo?: string;
  json?: boolean;
  /** Where the text comes from when no argument is given (process.stdin in the binary). */
  stdin?: AsyncIterable<Buffer | string>;
}

/** The label is above what the sender or the conversation allows (checked before anything is sent). */
export class LabelTooHighError extends CliError {
  constructor(detail: string) {
    super('MESSAGE_LABEL_TOO_HIGH', detail);
  }
}

export function sendCommand(ctx: CommandContext): Command {
  const cmd = new Command('send')
    .summary('send a signed message (and files) to a person or #group')
    .description(
      'Send a message signed with your key to a person (login) or a group (#name). The text is the argument, or ' +
        'stdin when none is given. Files are uploaded first and named, with their SHA-384, in the signed header. ' +
        "The label defaults to the conversation's label and may not exceed your clearance or the conversation's.",
    )
    .argument('<to>', 'login of a person, or #group')
    .argument('[text]', 'message text (default: read stdin)')
    .option('--file <path>', 'attach a file (repeat for more)', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('--label <label>', 'classification of the message').choices(CLEARANCE_CHOICES))
    .option('--urgent', 'urgent: reaches members who muted the conversation')
    .option('--reply-to <id>', 'id of the message this answers')
    .option('--json', 'print the receipt {id, seq, conversation, serverTime, label, attachments} as JSON')
    .action(async (to: string, text: string | undefined, opts: Omit<SendOptions, 'to' | 'text'>, c: Command) =>
      // With files and a terminal, no text means none (not a wait for Ctrl-D).
      run({ ...opts, to, text, stdin: opts.file?.length && process.stdin.isTTY ? undefined : process.stdin }, runtimeFor(ctx, c)),
    );
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      "sigil send bkim 'The meeting moves to 14:00'",
      "sigil send '#ops' --label secret --urgent 'Stand by'",
      'sigil send bkim "Draft attached" --file report.pdf --file annex.xlsx --label confidential',
      'echo "from a script" | sigil send bkim --json',
    ],
    exitCodes: [EXIT.auth],
  });
}

async function readAll(input: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

export async function run(opts: SendOptions, rt: Runtime): Promise<void> {
  const { dominates, isClearance } = await import('../../../pki/index.js');
  const { MessagingSession } = await import('../../messaging/session.js');
  const { buildHeader } = await import('../../messaging/header.js');
  const { uploadFile } = await import('../../messaging/transport.js');
  const { SendReceiptSchema } = await import('../../messaging/api.js');
  const { createProgress } = await import('../../progress.js');
  if (opts.replyTo !== undefined && !/^[A-Za-z0-9_-]{22}$/.test(opts.replyTo)) throw new UsageError('--reply-to: expected a 22-character message id');
  const files = opts.file ?? [];
  const sizes: number[] = [];
  for (const f of files) {
    try {
      const s = await stat(f);
      if (!s.isFile()) throw new Error('not a regular file');
      sizes.push(s.size);
    } catch (cause) {
      throw new InputFileError(f, 'a readable file', { cause });
    }
  }
  const body = opts.text !== undefined ? Buffer.from(opts.text, 'utf8') : opts.stdin ? await readAll(opts.stdin) : Buffer.alloc(0);
  if (body.length === 0 && files.length === 0) throw new UsageError('nothing to send: give a text, stdin or --file');

  const ms = await MessagingSession.open(rt);
  const conv = await ms.resolve(opts.to);
  const label = opts.label ?? conv.label;
  if (!isClearance(label)) throw new UsageError(`--label: ${label} is not a label`);
  const mine = ms.clearance();
  if (!mine || !dominates(mine, label)) throw new LabelTooHighError(`label ${label} is above your certificate clearance ${mine ?? '(none)'}`);
  if (isClearance(conv.label) && !dominates(conv.label, label)) {
    throw new LabelTooHighError(`label ${label} is above the conversation's label ${conv.label} (not every participant is cleared for it)`);
  }

  const attachments = [];
  if (files.length) {
    const ep = await ms.endpoint();
    for (const [i, f] of files.entries()) {
      const size = sizes[i] as number;
      const bar = createProgress({ label: basename(f), total: size, stderr: rt.io.stderr, enabled: rt.io.stderrIsTTY && !rt.json });
      const up = await uploadFile(ep, conv.id, f, size, (n) => bar.update(n));
      bar.finish();
      attachments.push({ id: up.fileId, name: basename(f), sha384: up.sha384, size: up.size });
    }
  }
  const now = rt.io.now();
  const { header, text } = await buildHeader({
    conversation: conv.id,
    sender: ms.login,
    label,
    body,
    attachments,
    replyTo: opts.replyTo ?? null,
    urgent: Boolean(opts.urgent),
    sentAt: now,
  });
  const signature = await ms.sign(new TextEncoder().encode(text), label, now);
  const receipt = await ms.http.post('/v1/messages', { header: text, signature, body: body.toString('base64') }, SendReceiptSchema);
  const result = { ...receipt, label, urgent: header.urgent, attachments: attachments.map((a) => ({ name: a.name, size: a.size, id: a.id })) };
  if (rt.json) return rt.out.json(result);
  rt.out.fields([
    ['sent', receipt.id],
    ['to', opts.to],
    ['label', label.replace('-', ' ').toUpperCase()],
    ['seq', receipt.seq],
    ['server time', receipt.serverTime],
    ...attachments.map((a) => ['attached', `${a.name} (${a.size} bytes)`] as [string, string]),
  ]);
}
