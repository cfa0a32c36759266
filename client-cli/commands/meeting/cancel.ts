/**
 * `sigil meeting cancel <invitation>`: the organiser's signed cancellation, in the invitation's
 * conversation and under its label, urgent when the invitation was. Only the invitation's sender
 * cancels: readers ignore a cancellation from anyone else (`sigil meeting list`), so the CLI does
 * not send one; nor a second one.
 */
import { Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { CliError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface CancelOptions {
  invitation: string;
  json?: boolean;
}

/** Someone other than the organiser asked to cancel. */
export class NotOrganiserError extends CliError {
  constructor(organiser: string) {
    super('MEETING_NOT_ORGANISER', `only the organiser (${organiser}) cancels this meeting; nothing was sent`);
  }
}

export function cancelCommand(ctx: CommandContext): Command {
  const cmd = new Command('cancel')
    .summary('cancel a meeting you organised, signed')
    .description(
      'Cancel a meeting you invited to (its message id). The invitation is verified first; the cancellation is a ' +
        'signed message in its conversation, under its label, urgent when the invitation was.',
    )
    .argument('<invitation>', 'message id of the invitation')
    .option('--json', 'print the receipt as JSON')
    .action(async (invitation: string, opts: { json?: boolean }, c: Command) => run({ ...opts, invitation }, runtimeFor(ctx, c)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil meeting cancel q3Jd0yP1xVfKX2aNw8e9Lg'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: CancelOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { verifiedInvitation } = await import('./invitation.js');
  const ms = await MessagingSession.open(rt);
  const inv = await verifiedInvitation(ms, opts.invitation);
  if (inv.header.sender !== ms.login) throw new NotOrganiserError(inv.header.sender);
  const { cancellationOf, MeetingCancelledError } = await import('./invitation.js');
  const cancelled = await cancellationOf(ms, inv);
  if (cancelled.at !== null) throw new MeetingCancelledError(`you cancelled the meeting at ${cancelled.at} already`);
  if (cancelled.failed > 0) {
    const { failedCancellations } = await import('./answer.js');
    rt.out.note(failedCancellations(cancelled.failed));
  }
  const { receipt } = await ms.post({
    conversation: inv.message.conversation,
    label: inv.header.label,
    body: new Uint8Array(0),
    replyTo: inv.header.id,
    urgent: inv.header.urgent,
    meeting: { kind: 'cancel' },
  });
  if (rt.json) return rt.out.json({ ...receipt, invitation: inv.header.id, cancelled: true });
  // Fields escape their values (output.ts): the title is the organiser's words.
  rt.out.fields([
    ['cancelled', inv.header.id],
    ['meeting', inv.meeting.title],
    ['message', receipt.id],
    ['seq', receipt.seq],
  ]);
}
