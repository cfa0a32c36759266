/** `sigil user reset LOGIN`: a new envelope password; the old envelope and all sessions end (officer). */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { issueEnvelope } from './create.js';
import { ENVELOPE_NOTE } from './options.js';

export interface UserResetOptions {
  login: string;
  envelopeOut?: string;
  yes?: boolean;
  json?: boolean;
}

export function userResetCommand(ctx: CommandContext): Command {
  const cmd = new Command('reset')
    .summary('issue a new envelope password')
    .description('Issue a new envelope for an account: the old envelope stops working and its sessions end (officer only). ' + ENVELOPE_NOTE)
    .argument('<login>', 'login of the account')
    .option('--envelope-out <file>', 'write the printable envelope (HTML) to this file, owner-only (0600); an existing file is replaced')
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .option('--json', 'print {account, envelope} as JSON')
    .action(action1(ctx, 'login', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil user reset alee --envelope-out alee.html', 'sigil user reset alee --yes --json'],
    exitCodes: [EXIT.auth],
  });
}

/** Destructive commands ask on a terminal and need --yes without one (GitHub CLI convention). */
export async function confirmOrYes(rt: Runtime, yes: boolean | undefined, question: string): Promise<void> {
  if (yes) return;
  if (!(await rt.io.prompter.confirm(question))) {
    throw new UsageError(`not confirmed: ${question.replace(/\?$/, '')}; add --yes to proceed without a question`);
  }
}

export async function run(opts: UserResetOptions, rt: Runtime): Promise<void> {
  const { UserCreatedSchema } = await import('../../api.js');
  await confirmOrYes(rt, opts.yes, `End every session of ${opts.login} and invalidate the current envelope?`);
  await issueEnvelope(rt, opts.envelopeOut, async () => {
    const http = await rt.client({ session: true });
    return http.post(`/v1/users/${encodeURIComponent(opts.login)}/reset`, {}, UserCreatedSchema);
  });
}
