/** `sigil group remove NAME LOGIN`: remove a member (owner or officer), or leave (your own login). */
import { Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { groupPath, printGroup } from './shared.js';

export interface GroupRemoveOptions {
  name: string;
  login: string;
  json?: boolean;
}

export function groupRemoveCommand(ctx: CommandContext): Command {
  const cmd = new Command('remove')
    .summary('remove a member from a group (or leave it)')
    .description('Remove a member (group owners and officers), or leave a group by naming yourself. The last owner cannot be removed.')
    .argument('<name>', 'group name (with or without #)')
    .argument('<login>', 'login of the member')
    .option('--json', 'print the group as JSON')
    .action(async (name: string, login: string, opts: GroupRemoveOptions, c: Command) => run({ ...opts, name, login }, runtimeFor(ctx, c)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil group remove ops bkim', 'sigil group remove ops $(sigil whoami --json | jq -r .login)   # leave'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: GroupRemoveOptions, rt: Runtime): Promise<void> {
  const { GroupSchema } = await import('../../messaging/api.js');
  const http = await rt.client({ session: true });
  const g = await http.request('DELETE', `${groupPath(opts.name)}/members/${encodeURIComponent(opts.login)}`, undefined, GroupSchema);
  if (rt.json) return rt.out.json(g);
  printGroup(rt, g);
}
