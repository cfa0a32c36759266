/**
 * `sigil download <message> [--name NAME] [--out PATH] [--force]`: the only way a file reaches
 * the workstation's disk, on the user's explicit request. The message is verified first; the
 * attachment is streamed into a hidden partial file beside the output, its SHA-384 and size checked
 * against the signed header, and only then renamed to the output (messaging/partial-file.ts). A
 * mismatch, a broken transfer, or SIGINT/SIGTERM/SIGHUP during the transfer removes the partial
 * file and leaves the output as it was. Partial files that downloads killed outright (SIGKILL, a
 * power cut) left in the output's folder are removed first, with one note on stderr.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { interruptible } from '../../interruptible.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface DownloadOptions {
  message: string;
  name?: string;
  out?: string;
  force?: boolean;
  json?: boolean;
}

export function downloadCommand(ctx: CommandContext): Command {
  const cmd = new Command('download')
    .summary("save a message's attachment to a file")
    .description(
      "Save an attachment of a message to a file: the only command that writes message content to disk. The message " +
        'is verified first; the file is checked against the SHA-384 and size in the signed header and saved only if it ' +
        'matches (Ctrl-C or a failed check leaves nothing behind). An existing file is never overwritten without --force.',
    )
    .argument('<message>', 'message id (shown by sigil read)')
    .option('--name <name>', 'which attachment, when the message has several')
    .option('--out <path>', 'output file (default: the attachment name in the current folder)')
    .option('--force', 'overwrite an existing output file')
    .option('--json', 'print {message, name, file, size, sha384} as JSON')
    .action(action1(ctx, 'message', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil download q3Jd0yP1xVfKX2aNw8e9Lg --out ~/report.pdf', "sigil download q3Jd0yP1xVfKX2aNw8e9Lg --name 'annex.xlsx' --force"],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: DownloadOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { MessageSchema } = await import('../../messaging/api.js');
  const { AttachmentChoiceError, MessageUnverifiedError } = await import('../../messaging/errors.js');
  const { downloadFile } = await import('../../messaging/transport.js');
  const { createProgress } = await import('../../progress.js');
  const { removeStalePartials, staleNotice } = await import('../../messaging/partial-file.js');
  if (!/^[A-Za-z0-9_-]{22}$/.test(opts.message)) throw new UsageError('<message>: expected a 22-character message id');
  const ms = await MessagingSession.open(rt);
  const m = await ms.http.get(`/v1/messages/${encodeURIComponent(opts.message)}`, MessageSchema);
  const v = await ms.verify(m);
  if (!v.ok) throw new MessageUnverifiedError(`message ${m.id} failed verification: ${v.reason}: ${v.detail}; not downloading`);
  const all = v.header.attachments;
  const chosen = opts.name !== undefined ? all.filter((a) => a.name === opts.name) : all;
  if (all.length === 0) throw new AttachmentChoiceError(`message ${m.id} has no attachment`);
  if (chosen.length === 0) throw new AttachmentChoiceError(`message ${m.id} has no attachment named ${opts.name}; it has: ${all.map((a) => a.name).join(', ')}`);
  if (chosen.length > 1) throw new AttachmentChoiceError(`message ${m.id} has ${all.length} attachments; choose one with --name (${all.map((a) => a.name).join(', ')})`);
  const a = chosen[0]!;
  // The signed name is the sender's choice: made safe as a name in this folder (local-name.ts).
  const { localName } = await import('../../messaging/local-name.js');
  const local = localName(a.name);
  const out = resolve(opts.out ?? local);
  if (opts.out === undefined && local !== a.name) rt.out.note(`saving as ${local}: the name the sender gave is not safe as a file name here`);
  // Unverified plaintext that a killed download (its process gone) left beside the output.
  const swept = staleNotice(await removeStalePartials(out));
  if (swept !== undefined) rt.out.note(swept);
  const bar = createProgress({ label: a.name, total: a.size, stderr: rt.io.stderr, enabled: rt.io.stderrIsTTY && !rt.json });
  const ep = await ms.endpoint();
  try {
    await interruptible((signal) => downloadFile(ep, a.id, out, { sha384: a.sha384, size: a.size }, { force: opts.force, onBytes: (n) => bar.update(n), signal }));
  } finally {
    // Also on failure, so that the error line does not share the bar's line.
    bar.finish();
  }
  const result = { message: m.id, name: a.name, file: out, size: a.size, sha384: a.sha384, signer: v.signer, label: v.header.label };
  if (rt.json) return rt.out.json(result);
  rt.out.fields([
    ['saved', out],
    ['attachment', a.name],
    ['size', a.size],
    ['sha384', a.sha384],
    ['signed by', v.signer],
    ['label', v.header.label.replace('-', ' ').toUpperCase()],
  ]);
}

