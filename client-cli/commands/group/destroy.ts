/**
 * `sigil group destroy NAME [--reason R] [--yes]`: the group and its whole history, irreversibly
 * (owner or officer). Signs the `sigil-delete` statement for `conversation:<group id>`.
 */
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import { confirmOrYes } from '../user/reset.js';
import { groupName, groupPath } from './shared.js';

export interface GroupDestroyOptions {
  name: string;
  reason?: string;
  yes?: boolean;
  json?: boolean;
}

export function groupDestroyCommand(ctx: CommandContext): Command {
  const cmd = new Command('destroy')
    .summary('destroy a group and all its messages, irreversibly')
    .description(
      'Destroy a group (owners and officers): every message, file and key of it is destroyed on the appliance and a ' +
        'signed tombstone is recorded. This cannot be undone.',
    )
    .argument('<name>', 'group name (with or without #)')
    .option('--reason <text>', 'why (signed and kept in the audit trail)', 'group destroyed')
    .option('-y, --yes', 'do not ask for confirmation (required without a terminal)')
    .option('--json', 'print the tombstone as JSON')
    .action(action1(ctx, 'name', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ["sigil group destroy ops --reason 'operation closed'", 'sigil group destroy ops --yes --json'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: GroupDestroyOptions, rt: Runtime): Promise<void> {
  const reason = opts.reason ?? 'group destroyed';
  if (reason.length < 1 || reason.length > 500) throw new UsageError('--reason: 1 to 500 characters');
  await confirmOrYes(rt, opts.yes, `Destroy group #${groupName(opts.name)} and every message in it? This cannot be undone`);
  const { MessagingSession } = await import('../../messaging/session.js');
  const { GroupSchema } = await import('../../messaging/api.js');
  const { signedDelete, printTombstone } = await import('../message/delete.js');
  const ms = await MessagingSession.open(rt);
  const g = await ms.http.get(groupPath(opts.name), GroupSchema);
  const tombstone = await signedDelete(ms, groupPath(opts.name), `conversation:${g.id}`, reason);
  if (rt.json) return rt.out.json(tombstone);
  printTombstone(rt, tombstone);
}
