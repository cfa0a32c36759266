/** `sigil user delete LOGIN`: remove an account that never had a certificate (officer). */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { confirmOrYes } from './reset.js';

export interface UserDeleteOptions {
  login: string;
  yes?: boolean;
  json?: boolean;
}

export function userDeleteCommand(ctx: CommandContext): Command {
  const cmd = new Command('delete')
    .summary('delete an account that never had a certificate')
    .description(
      'Delete an account that never had a certificate, so never logged in or signed: one created by mistake, or one ' +
        'from before the 64-character name limit that could never be certified (officer only). Its envelope goes with ' +
        'it. An account that has had a certificate is kept so that what it signed stays attributable: the appliance ' +
        'answers ACCOUNT_IN_USE; disable it instead (sigil user disable). Asks first on a terminal; without one, ' +
        '--yes is required.',
    )
    .argument('<login>', 'login of the account')
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .option('--json', 'print {login, deleted} as JSON')
    .action(action1(ctx, 'login', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil user delete alee', 'sigil user delete legacy --yes --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: UserDeleteOptions, rt: Runtime): Promise<void> {
  const { UserDeletedSchema } = await import('../../api.js');
  await confirmOrYes(rt, opts.yes, `Delete the account ${opts.login}? This cannot be undone`);
  const http = await rt.client({ session: true });
  const deleted = await http.request('DELETE', `/v1/users/${encodeURIComponent(opts.login)}`, undefined, UserDeletedSchema);
  if (rt.json) return rt.out.json(deleted);
  rt.out.fields([['deleted', deleted.login]]);
}
