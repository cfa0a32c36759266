/** The `sigil group …` noun: create, add, remove, list, show, destroy. */
import { Command } from 'commander';
import type { CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { withHelp } from '../../help.js';
import { groupAddCommand } from './add.js';
import { groupCreateCommand } from './create.js';
import { groupDestroyCommand } from './destroy.js';
import { groupListCommand } from './list.js';
import { groupRemoveCommand } from './remove.js';
import { groupShowCommand } from './show.js';

export function groupCommand(ctx: CommandContext): Command {
  const cmd = new Command('group')
    .summary('create groups, manage members, destroy them')
    .description('Groups: a label set at creation, owners and members whose certificate clearance is at least that label.')
    .addCommand(groupCreateCommand(ctx))
    .addCommand(groupAddCommand(ctx))
    .addCommand(groupRemoveCommand(ctx))
    .addCommand(groupListCommand(ctx))
    .addCommand(groupShowCommand(ctx))
    .addCommand(groupDestroyCommand(ctx));
  return withHelp(cmd, {
    examples: ['sigil group create ops --label secret', 'sigil group add ops bkim', "echo 'Stand by' | sigil send '#ops'", 'sigil group destroy ops --yes'],
    exitCodes: [EXIT.auth],
  });
}
