/** `sigil user list`: every account (officer). */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface UserListOptions {
  json?: boolean;
}

export function userListCommand(ctx: CommandContext): Command {
  const cmd = new Command('list')
    .summary('list accounts')
    .description('List every account with its role, clearance and status (officer only).')
    .option('--json', 'print {users:[…]} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil user list', 'sigil user list --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(_opts: UserListOptions, rt: Runtime): Promise<void> {
  const { UsersSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const { users } = await http.get('/v1/users', UsersSchema);
  if (rt.json) return rt.out.json({ users });
  rt.out.table(
    users.map((u) => ({ ...u, password: passwordColumn(u.mustChangePassword), certExpires: u.certificate?.notAfter })),
    [
      ['login', 'LOGIN'],
      ['fullName', 'NAME'],
      ['department', 'DEPARTMENT'],
      ['role', 'ROLE'],
      ['clearance', 'CLEARANCE'],
      ['status', 'STATUS'],
      ['password', 'PASSWORD'],
      ['certExpires', 'CERT EXPIRES'],
    ],
  );
}

/** `envelope` while the envelope password is unused (not yet replaced at a login), else `own`. */
function passwordColumn(mustChange: boolean | undefined): string | undefined {
  return mustChange === undefined ? undefined : mustChange ? 'envelope' : 'own';
}
