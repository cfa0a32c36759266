/** `sigil cert list LOGIN`: certificates issued to an account (officer). */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface CertListOptions {
  login: string;
  json?: boolean;
}

export function certListCommand(ctx: CommandContext): Command {
  const cmd = new Command('list')
    .summary("list an account's certificates")
    .description('List the certificates issued to an account, with their status and revocation (officer only).')
    .argument('<login>', 'login of the account')
    .option('--json', 'print {certificates:[…]} as JSON')
    .action(action1(ctx, 'login', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil cert list alee', 'sigil cert list alee --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: CertListOptions, rt: Runtime): Promise<void> {
  const { CertListSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const { certificates } = await http.get(`/v1/users/${encodeURIComponent(opts.login)}/certificates`, CertListSchema);
  if (rt.json) return rt.out.json({ certificates });
  rt.out.table(certificates, [
    ['serial', 'SERIAL'],
    ['status', 'STATUS'],
    ['notBefore', 'NOT BEFORE'],
    ['notAfter', 'NOT AFTER'],
    ['revokedAt', 'REVOKED AT'],
    ['reason', 'REASON'],
  ]);
}
