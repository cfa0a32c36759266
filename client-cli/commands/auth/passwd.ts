/** `sigil passwd`: changes the account password (current one first). */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface PasswdOptions {
  json?: boolean;
}

export function passwdCommand(ctx: CommandContext): Command {
  const cmd = new Command('passwd')
    .summary('change your password')
    .description('Change the account password. Asks for the current password, then the new one twice (no echo).')
    .option('--json', 'print the result as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [
      envSection([
        [ENV.password, 'current password (else prompted)'],
        [ENV.newPassword, 'new password (else prompted twice)'],
        [ENV.keyPassphrase, 'passphrase of the private key (else prompted)'],
      ]),
    ],
    examples: ['sigil passwd', 'SIGIL_PASSWORD=old SIGIL_NEW_PASSWORD=new sigil passwd'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(_opts: PasswdOptions, rt: Runtime): Promise<void> {
  const { OkSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const currentPassword = await rt.io.prompter.secret('Current password', ENV.password);
  const newPassword = await rt.io.prompter.newSecret('New password', ENV.newPassword);
  await http.post('/v1/auth/password', { currentPassword, newPassword }, OkSchema);
  if (rt.json) return rt.out.json({ ok: true });
  rt.out.note('password changed');
}
