/** `sigil whoami`: who the current session belongs to, as the server sees it. */
import { Command } from 'commander';
import type { Account } from '../../api.js';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface WhoamiOptions {
  json?: boolean;
}

export function whoamiCommand(ctx: CommandContext): Command {
  const cmd = new Command('whoami')
    .summary('show login, role, clearance and certificate expiry')
    .description('Show the account of the current session: login, name, role, clearance, status and certificate expiry.')
    .option('--json', 'print the account as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil whoami', 'sigil whoami --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(_opts: WhoamiOptions, rt: Runtime): Promise<void> {
  const { AccountSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const me = await http.get('/v1/me', AccountSchema);
  if (rt.json) return rt.out.json(me);
  printAccount(rt, me);
}

function passwordState(mustChange: boolean): string {
  return mustChange ? 'envelope password, to be changed at the next login' : 'chosen by the holder';
}

/** Human view of an account, shared with `user show`. */
export function printAccount(rt: Runtime, a: Account): void {
  rt.out.fields([
    ['login', a.login],
    ['name', a.fullName],
    ['department', a.department],
    ...(a.rank ? [['rank', a.rank] as [string, string]] : []),
    ['role', a.role],
    ['clearance', a.clearance.replace('-', ' ').toUpperCase()],
    ['status', a.status],
    ...(a.mustChangePassword === undefined ? [] : [['password', passwordState(a.mustChangePassword)] as [string, string]]),
    ['certificate', a.certificate?.serial],
    ['cert expires', a.certificate?.notAfter],
  ]);
}
