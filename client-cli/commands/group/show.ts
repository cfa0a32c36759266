/** `sigil group show NAME`: a group's label, owners and members. */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { groupPath, printGroup } from './shared.js';

export interface GroupShowOptions {
  name: string;
  json?: boolean;
}

export function groupShowCommand(ctx: CommandContext): Command {
  const cmd = new Command('show')
    .summary("show a group's label and members")
    .description("Show a group's label, retention, owners and members (members and officers only).")
    .argument('<name>', 'group name (with or without #)')
    .option('--json', 'print the group as JSON')
    .action(action1(ctx, 'name', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil group show ops', "sigil group show '#ops' --json"],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: GroupShowOptions, rt: Runtime): Promise<void> {
  const { GroupSchema } = await import('../../messaging/api.js');
  const http = await rt.client({ session: true });
  const g = await http.get(groupPath(opts.name), GroupSchema);
  if (rt.json) return rt.out.json(g);
  printGroup(rt, g);
}
