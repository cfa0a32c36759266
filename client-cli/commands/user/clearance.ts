/** `sigil user clearance LOGIN --clearance LEVEL`: change a holder's clearance (officer). */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { printAccount } from '../auth/whoami.js';
import { confirmOrYes } from './reset.js';
import { clearanceOption } from './options.js';

export interface UserClearanceOptions {
  login: string;
  clearance: string;
  yes?: boolean;
  json?: boolean;
}

export function userClearanceCommand(ctx: CommandContext): Command {
  const cmd = new Command('clearance')
    .summary("change an account's clearance")
    .description(
      "Change an account's clearance (officer only). Certificates carrying the old clearance are revoked " +
        '(superseded); issue a new one with sigil cert issue.',
    )
    .argument('<login>', 'login of the account')
    .addOption(clearanceOption().makeOptionMandatory())
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .option('--json', 'print the account as JSON')
    .action(action1(ctx, 'login', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil user clearance alee --clearance top-secret --yes'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: UserClearanceOptions, rt: Runtime): Promise<void> {
  const { AccountSchema } = await import('../../api.js');
  await confirmOrYes(rt, opts.yes, `Revoke the certificates of ${opts.login} and set clearance ${opts.clearance}?`);
  const http = await rt.client({ session: true });
  const account = await http.post(`/v1/users/${encodeURIComponent(opts.login)}/clearance`, { clearance: opts.clearance }, AccountSchema);
  if (rt.json) return rt.out.json(account);
  printAccount(rt, account);
}
