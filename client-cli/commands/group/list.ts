/** `sigil group list`: your groups (officers: all groups). */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface GroupListOptions {
  json?: boolean;
}

export function groupListCommand(ctx: CommandContext): Command {
  const cmd = new Command('list')
    .summary('list your groups')
    .description('List the groups you are a member of (officers: every group).')
    .option('--json', 'print {groups: [...]} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil group list', 'sigil group list --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(_opts: GroupListOptions, rt: Runtime): Promise<void> {
  const { GroupsSchema } = await import('../../messaging/api.js');
  const http = await rt.client({ session: true });
  const { groups } = await http.get('/v1/groups', GroupsSchema);
  if (rt.json) return rt.out.json({ groups });
  rt.out.table(
    groups.map((g) => ({ name: `#${g.name}`, label: g.label.replace('-', ' ').toUpperCase(), members: g.members.length, owner: g.members.filter((m) => m.role === 'owner').map((m) => m.login).join(',') })),
    [
      ['name', 'GROUP'],
      ['label', 'LABEL'],
      ['members', 'MEMBERS'],
      ['owner', 'OWNERS'],
    ],
  );
}
