/** `sigil group add NAME LOGIN [--owner]`: add a member (owner or officer), or change a role. */
import { Command } from 'commander';
import { runtimeFor, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { groupPath, printGroup } from './shared.js';

export interface GroupAddOptions {
  name: string;
  login: string;
  owner?: boolean;
  json?: boolean;
}

export function groupAddCommand(ctx: CommandContext): Command {
  const cmd = new Command('add')
    .summary('add a member to a group')
    .description("Add a member (group owners and officers). The member's certificate clearance must be at least the group's label.")
    .argument('<name>', 'group name (with or without #)')
    .argument('<login>', 'login of the new member')
    .option('--owner', 'make them an owner (also changes the role of an existing member)')
    .option('--json', 'print the group as JSON')
    .action(async (name: string, login: string, opts: GroupAddOptions, c: Command) => run({ ...opts, name, login }, runtimeFor(ctx, c)));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil group add ops bkim', 'sigil group add ops alee --owner --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: GroupAddOptions, rt: Runtime): Promise<void> {
  const { GroupSchema } = await import('../../messaging/api.js');
  const http = await rt.client({ session: true });
  const g = await http.post(`${groupPath(opts.name)}/members`, { login: opts.login, role: opts.owner ? 'owner' : 'member' }, GroupSchema);
  if (rt.json) return rt.out.json(g);
  printGroup(rt, g);
}
