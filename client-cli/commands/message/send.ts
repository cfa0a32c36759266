/**
 * `sigil send <login|#group> [--file PATH …] [--label L] [--urgent] [--reply-to ID]`:
 * uploads any files (streamed, hashed on the way), builds the canonical header (server/API.md,
 * "The signed header"), signs it with the user's key and the label as ESS security label, and
 * posts it. Should anything fail after the first upload, or a signal (Ctrl-C) stop the uploads, the
 * uploads are discarded.
 *
 * The text never comes from the command line by default: argv is readable by every local user
 * (`ps`, /proc/<pid>/cmdline) while the process runs, and shell history keeps it on disk. It is
 * read from stdin when stdin is not a terminal (everything up to EOF), or typed at a prompt when it
 * is one (lines up to the first empty line or Ctrl-D), into memory only. A positional text is
 * refused (usage, exit 2) unless `--text-in-argv` accepts that exposure.
 */
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { CLEARANCE_CHOICES } from '../../choices.js';
import type { CommandContext } from '../../context.js';
import { runtimeFor } from '../../context.js';
import { CliError, InputFileError, UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { abortReason, interruptible } from '../../interruptible.js';
import { SendInterruptedError } from '../../messaging/errors.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { Clearance } from '../../../pki/index.js';
import type { Conversation } from '../../messaging/api.js';
import type { MessagingSession } from '../../messaging/session.js';
import { isOneLine } from '../../terminal-text.js';

export interface SendOptions {
  to: string;
  /** Positional text: refused unless `textInArgv` (argv is visible to other local users). */
  text?: string;
  /** `--text-in-argv`: accept the text from the command line despite the exposure. */
  textInArgv?: boolean;
  file?: string[];
  label?: string;
  urgent?: boolean;
  replyTo?: string;
  json?: boolean;
  /**
   * Where the text comes from (process.stdin in the binary): read to EOF when not a terminal,
   * prompted for (up to an empty line or EOF) when `isTTY`.
   */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** Quotes a recipient for the hint when the shell would read it otherwise (`'#ops'`). */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_.@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The one-line refusal of a positional text (exit 2), saying why and how to send instead. */
export class TextInArgvError extends UsageError {
  constructor(to: string) {
    const t = shellWord(to);
    super(
      `message text on the command line is refused: other local users can read it (ps, /proc/<pid>/cmdline) ` +
        `and it stays in shell history; nothing was sent. Pipe it (echo '…' | sigil send ${t}) or run ` +
        `\`sigil send ${t}\` and type it, ending with an empty line (--text-in-argv accepts the exposure)`,
    );
  }
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
      'Send a message signed with your key to a person (login) or a group (#name). The text is read from stdin ' +
        'when it is a pipe or file (up to EOF), or typed at a prompt on a terminal (ended by an empty line or ' +
        'Ctrl-D; with --file, an empty first line sends the files alone). It is never taken from the command ' +
        'line unless --text-in-argv is given: arguments are visible to every local user (ps, /proc/<pid>/cmdline) ' +
        'and stay in shell history. Files are uploaded first and named, with their SHA-384, in the signed header. ' +
        "The label defaults to the conversation's label and may not exceed your clearance or the conversation's.",
    )
    .argument('<to>', 'login of a person, or #group')
    .argument('[text]', 'refused unless --text-in-argv (the text comes from stdin or the prompt)')
    .option('--text-in-argv', 'take the text from the argument: exposes it to other local users (ps) and to shell history')
    .option('--file <path>', 'attach a file (repeat for more)', (v: string, prev: string[] = []) => [...prev, v])
    .addOption(new Option('--label <label>', 'classification of the message').choices(CLEARANCE_CHOICES))
    .option('--urgent', 'urgent: reaches members who muted the conversation')
    .option('--reply-to <id>', 'id of the message this answers')
    .option('--json', 'print the receipt {id, seq, conversation, serverTime, label, attachments} as JSON')
    .action(async (to: string, text: string | undefined, opts: Omit<SendOptions, 'to' | 'text'>, c: Command) =>
      run({ ...opts, to, text, stdin: process.stdin }, runtimeFor(ctx, c)),
    );
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil send bkim   # then type the text; an empty line sends it',
      "echo 'The meeting moves to 14:00' | sigil send bkim",
      "echo 'Stand by' | sigil send '#ops' --label secret --urgent",
      'sigil send bkim --file report.pdf --file annex.xlsx --label confidential < note.txt',
      "sigil send bkim --text-in-argv 'not secret'   # visible to other local users, kept in shell history",
    ],
    exitCodes: [EXIT.auth],
  });
}

/**
 * The most text one message takes: the appliance refuses a body over 1 MiB (server/API.md,
 * `MESSAGE_TOO_LARGE`), and a meeting's agenda or the words to search for are no longer.
 */
export const MAX_TEXT_BYTES = 1024 * 1024;

/** The text on stdin is over what the appliance takes in one message: refused before anything is sent. */
export class TextTooLargeError extends CliError {
  constructor(max: number) {
    // The appliance's code for the same refusal, so a script sees one code whichever side noticed.
    super('MESSAGE_TOO_LARGE', `the text on stdin is over the appliance's limit of ${max} bytes for one message; send a longer text as a file (--file)`);
  }
}

/**
 * Everything `input` gives until its end (stdin that is not a terminal), up to `max` bytes.
 * @throws TextTooLargeError as soon as more than `max` bytes came: reading on to the end held it
 *   all in memory and never ended for a writer that does not stop (`sigil send bkim < /dev/zero`),
 *   only for the appliance to refuse it afterwards.
 */
export async function readAll(input: AsyncIterable<Buffer | string>, max: number = MAX_TEXT_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of input) {
    const chunk = typeof c === 'string' ? Buffer.from(c) : c;
    size += chunk.length;
    // Leaving the loop destroys the stream, so the process does not wait on it either.
    if (size > max) throw new TextTooLargeError(max);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * The text typed at a terminal: lines up to the first empty line or EOF (Ctrl-D), joined with
 * `\n`. The terminal's own line discipline echoes and edits; the prompt goes to stderr.
 */
export async function readTypedText(input: NodeJS.ReadableStream, stderr: { write(s: string): unknown }, prompt: string): Promise<Buffer> {
  stderr.write(`${prompt}\n`);
  const rl = createInterface({ input, terminal: false, crlfDelay: Infinity });
  const lines: string[] = [];
  try {
    for await (const line of rl) {
      if (line === '') break;
      lines.push(line);
    }
  } finally {
    rl.close();
  }
  return Buffer.from(lines.join('\n'), 'utf8');
}

/**
 * Words kept off the command line (a text, a meeting's title, what to search for): typed at
 * `prompt` when `stdin` is a terminal (up to an empty line or Ctrl-D), else read to its end;
 * nothing without a stdin. What `send`, `search -` and `meeting schedule` read.
 */
export async function readInput(stdin: (NodeJS.ReadableStream & { isTTY?: boolean }) | undefined, stderr: { write(s: string): unknown }, prompt: string): Promise<Buffer> {
  if (!stdin) return Buffer.alloc(0);
  return stdin.isTTY ? readTypedText(stdin, stderr, prompt) : readAll(stdin);
}

/** The message body: the accepted argument, else the prompt on a terminal, else stdin to EOF. */
async function readBody(opts: SendOptions, stderr: { write(s: string): unknown }): Promise<Buffer> {
  if (opts.text !== undefined) return Buffer.from(opts.text, 'utf8');
  const filesOnly = opts.file?.length ? '; an empty first line sends the files alone' : '';
  return readInput(opts.stdin, stderr, `Message to ${opts.to}, ended by an empty line or Ctrl-D${filesOnly}:`);
}

/**
 * The label a message to `conv` goes with: `requested`, else the conversation's. Refused before
 * anything is sent when above the sender's certificate clearance or the conversation's label.
 */
export async function chooseLabel(ms: MessagingSession, conv: Conversation, requested: string | undefined): Promise<Clearance> {
  const { dominates, isClearance } = await import('../../../pki/index.js');
  const label = requested ?? conv.label;
  if (!isClearance(label)) throw new UsageError(`--label: ${label} is not a label`);
  const mine = ms.clearance();
  if (!mine || !dominates(mine, label)) throw new LabelTooHighError(`label ${label} is above your certificate clearance ${mine ?? '(none)'}`);
  if (isClearance(conv.label) && !dominates(conv.label, label)) {
    throw new LabelTooHighError(`label ${label} is above the conversation's label ${conv.label} (not every participant is cleared for it)`);
  }
  return label;
}

export async function run(opts: SendOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { discardUploads, uploadFile } = await import('../../messaging/transport.js');
  const { createProgress } = await import('../../progress.js');
  // First, before any file, stdin or network: a text in argv is refused unless explicitly accepted.
  if (opts.text !== undefined && !opts.textInArgv) throw new TextInArgvError(opts.to);
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
    // Its name goes into the signed header, which the appliance refuses with such characters.
    if (!isOneLine(basename(f))) throw new InputFileError(f, 'a file whose name is free of control characters, line breaks and bidirectional overrides; rename it');
  }
  const body = await readBody(opts, rt.io.stderr);
  if (body.length === 0 && files.length === 0) throw new UsageError('nothing to send: give the text on stdin (or type it at the prompt), or --file');

  const ms = await MessagingSession.open(rt);
  const conv = await ms.resolve(opts.to);
  const label = await chooseLabel(ms, conv, opts.label);

  const attachments: { id: string; name: string; sha384: string; size: number }[] = [];
  const send = async (signal: AbortSignal) => {
    let posting = false;
    try {
      if (files.length) {
        const ep = await ms.endpoint();
        for (const [i, f] of files.entries()) {
          if (signal.aborted) break;
          const size = sizes[i] as number;
          const bar = createProgress({ label: basename(f), total: size, stderr: rt.io.stderr, enabled: rt.io.stderrIsTTY && !rt.json });
          try {
            const up = await uploadFile(ep, conv.id, f, size, (n) => bar.update(n), signal);
            attachments.push({ id: up.fileId, name: basename(f), sha384: up.sha384, size: up.size });
          } finally {
            bar.finish(); // cleared also when cut, so the error line starts on a line of its own
          }
        }
      }
      // Ctrl-C once the uploads are done still sends: the post is one short request, and cutting it
      // could leave the user not knowing whether the message went.
      if (signal.aborted) throw new SendInterruptedError(abortReason(signal));
      posting = true;
      return await ms.post({
        conversation: conv.id,
        label,
        body,
        attachments,
        replyTo: opts.replyTo ?? null,
        urgent: Boolean(opts.urgent),
      });
    } catch (err) {
      // No message names these uploads now: left pending, they would hold the sender's cap on
      // pending uploads until they expire. What the user sees is the failure, not the clean-up.
      if (attachments.length) await discardUploads(await ms.endpoint(), attachments.map((a) => a.id));
      // A signal names the failure only where it caused it: while uploading, not a post that failed.
      throw signal.aborted && !posting ? new SendInterruptedError(abortReason(signal)) : err;
    }
  };
  // Without files there is nothing to clean up: a signal ends the process at once, as before.
  const { receipt, header } = files.length ? await interruptible(send) : await send(new AbortController().signal);
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
