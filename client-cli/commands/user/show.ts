/** `sigil user show LOGIN`: one account (officer). */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { printAccount } from '../auth/whoami.js';

export interface UserShowOptions {
  login: string;
  json?: boolean;
}

export function userShowCommand(ctx: CommandContext): Command {
  const cmd = new Command('show')
    .summary('show one account')
    .description('Show one account (officer only).')
    .argument('<login>', 'login of the account')
    .option('--json', 'print the account as JSON')
    .action(action1(ctx, 'login', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil user show alee', 'sigil user show alee --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: UserShowOptions, rt: Runtime): Promise<void> {
  const { AccountSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const account = await http.get(`/v1/users/${encodeURIComponent(opts.login)}`, AccountSchema);
  if (rt.json) return rt.out.json(account);
  printAccount(rt, account);
}
