/**
 * `sigil meeting answer <invitation> accept|decline|tentative`: a signed answer to a meeting
 * invitation, in the invitation's conversation and under its label, naming it by `replyTo`. The
 * invitation is verified first; a meeting that has ended, or that its organiser cancelled, is not
 * answered.
 */
import { Argument, Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { CliError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { MeetingAnswer } from '../../messaging/header.js';

export const ANSWERS: readonly MeetingAnswer[] = ['accept', 'decline', 'tentative'];

export interface AnswerOptions {
  invitation: string;
  answer: MeetingAnswer;
  json?: boolean;
}

/** The meeting is over: an answer would say nothing. */
export class MeetingOverError extends CliError {
  constructor(end: string) {
    super('MEETING_OVER', `the meeting ended at ${end}; nothing was sent`);
  }
}

/** The note for cancellations that failed verification and were ignored (answer, cancel). */
export function failedCancellations(n: number): string {
  return `!! ${n} cancellation${n === 1 ? '' : 's'} of this meeting failed verification and ${n === 1 ? 'was' : 'were'} ignored`;
}

export function answerCommand(ctx: CommandContext): Command {
  const cmd = new Command('answer')
    .summary('accept, decline or tentatively accept a meeting, signed')
    .description(
      'Answer a meeting invitation (its message id, shown by sigil read and sigil meeting list). The invitation is ' +
        'verified first, and a meeting that has ended or was cancelled by its organiser is not answered; the answer is ' +
        'a signed message in its conversation, under its label. A later answer replaces an earlier one in sigil meeting list.',
    )
    .argument('<invitation>', 'message id of the invitation')
    .addArgument(new Argument('<answer>', 'your answer').choices(ANSWERS))
    .option('--json', 'print the receipt with the answer as JSON')
    .action(async (invitation: string, answer: MeetingAnswer, opts: { json?: boolean }, c: Command) =>
      run({ ...opts, invitation, answer }, runtimeFor(ctx, c)),
    );
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil meeting answer q3Jd0yP1xVfKX2aNw8e9Lg accept', 'sigil meeting answer q3Jd0yP1xVfKX2aNw8e9Lg decline --json'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: AnswerOptions, rt: Runtime): Promise<void> {
  const { MessagingSession } = await import('../../messaging/session.js');
  const { verifiedInvitation } = await import('./invitation.js');
  const ms = await MessagingSession.open(rt);
  const inv = await verifiedInvitation(ms, opts.invitation);
  if (Date.parse(inv.meeting.end) <= rt.io.now().getTime()) throw new MeetingOverError(inv.meeting.end);
  const { cancellationOf, MeetingCancelledError } = await import('./invitation.js');
  const cancelled = await cancellationOf(ms, inv);
  if (cancelled.at !== null) throw new MeetingCancelledError(`${inv.header.sender} cancelled the meeting at ${cancelled.at}`);
  if (cancelled.failed > 0) rt.out.note(failedCancellations(cancelled.failed));
  const meeting = { kind: 'answer' as const, answer: opts.answer };
  const { receipt } = await ms.post({ conversation: inv.message.conversation, label: inv.header.label, body: new Uint8Array(0), replyTo: inv.header.id, meeting });
  if (rt.json) return rt.out.json({ ...receipt, invitation: inv.header.id, answer: opts.answer });
  const { meetingSummary } = await import('../../messaging/render.js');
  // Fields escape their values (output.ts): the title is the organiser's words.
  rt.out.fields([
    ['answered', receipt.id],
    ['meeting', inv.meeting.title],
    ['answer', meetingSummary(meeting).replace(/ the meeting$/, '')],
    ['seq', receipt.seq],
  ]);
}
