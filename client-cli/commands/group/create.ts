/** `sigil group create NAME --label L [--retention-days N]`: a new group; you are its owner. */
import { Command, Option } from 'commander';
import { CLEARANCE_CHOICES } from '../../choices.js';
import { action1, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { wholeNumber } from '../../flag-numbers.js';
import { groupName, printGroup } from './shared.js';

export interface GroupCreateOptions {
  name: string;
  label: string;
  retentionDays?: number;
  json?: boolean;
}

export function groupCreateCommand(ctx: CommandContext): Command {
  const cmd = new Command('create')
    .summary('create a group (you become its owner)')
    .description("Create a group with a label; every member's certificate clearance must be at least that label, yours too.")
    .argument('<name>', 'group name (with or without #)')
    .addOption(new Option('--label <label>', 'classification of the group').choices(CLEARANCE_CHOICES).makeOptionMandatory())
    .option('--retention-days <n>', 'destroy messages older than this many days (1–36500)', wholeNumber('--retention-days', 1, 36500))
    .option('--json', 'print the group as JSON')
    .action(action1(ctx, 'name', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil group create ops --label secret', "sigil group create '#duty' --label restricted --retention-days 30 --json"],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: GroupCreateOptions, rt: Runtime): Promise<void> {
  const { GroupSchema } = await import('../../messaging/api.js');
  const http = await rt.client({ session: true });
  const body = { name: groupName(opts.name), label: opts.label, ...(opts.retentionDays !== undefined ? { retentionDays: opts.retentionDays } : {}) };
  const g = await http.post('/v1/groups', body, GroupSchema);
  if (rt.json) return rt.out.json(g);
  printGroup(rt, g);
}
