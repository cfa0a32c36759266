/** `sigil user rename LOGIN [--name NAME] [--department DEPT] [--rank RANK | --no-rank]`: change an account's names (officer). */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { printAccount } from '../auth/whoami.js';

export interface UserRenameOptions {
  login: string;
  name?: string;
  department?: string;
  /** A new rank; `false` (`--no-rank`) removes it. */
  rank?: string | false;
  json?: boolean;
}

export function userRenameCommand(ctx: CommandContext): Command {
  const cmd = new Command('rename')
    .summary("change an account's full name, department or rank")
    .description(
      "Change an account's full name, department or rank (officer only; at least one flag). Each is 1 to 64 " +
        "characters, what a certificate's CN and OU hold; the appliance refuses longer ones (BAD_REQUEST). An account " +
        'made before that limit, whose certificate issuance answers ACCOUNT_NAME_TOO_LONG, is shortened this way. ' +
        'Certificates already issued keep the names they were issued with; the next one takes the new names. The rank ' +
        'is in no certificate: it orders and labels people in the directory (sigil contacts).',
    )
    .argument('<login>', 'login of the account')
    .option('--name <full name>', 'new full name')
    .option('--department <department>', 'new department')
    .option('--rank <rank>', 'new rank or position')
    .option('--no-rank', 'remove the rank')
    .option('--json', 'print the account as JSON')
    .action(action1(ctx, 'login', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil user rename alee --name "Anna Lee"',
      'sigil user rename alee --department "Signals, Section 4" --json',
      'sigil user rename alee --rank "Head of unit"',
      'sigil user rename legacy --name "A. von Hohenberg" --department Signals   # then: sigil cert issue legacy …',
    ],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: UserRenameOptions, rt: Runtime): Promise<void> {
  if (opts.name === undefined && opts.department === undefined && opts.rank === undefined) {
    throw new UsageError('give --name, --department, --rank or --no-rank');
  }
  const { AccountSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const account = await http.post(
    `/v1/users/${encodeURIComponent(opts.login)}/name`,
    { fullName: opts.name, department: opts.department, rank: opts.rank === false ? null : opts.rank },
    AccountSchema,
  );
  if (rt.json) return rt.out.json(account);
  printAccount(rt, account);
}
