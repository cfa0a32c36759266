/** The `sigil user …` noun: account administration for security officers. */
import { Command } from 'commander';
import type { CommandContext } from '../../context.js';
import { withHelp } from '../../help.js';
import { EXIT } from '../../exit-codes.js';
import { userClearanceCommand } from './clearance.js';
import { userCreateCommand } from './create.js';
import { userDeleteCommand } from './delete.js';
import { userListCommand } from './list.js';
import { userRenameCommand } from './rename.js';
import { userResetCommand } from './reset.js';
import { userShowCommand } from './show.js';
import { userStateCommand } from './state.js';

export function userCommand(ctx: CommandContext): Command {
  const cmd = new Command('user')
    .summary('manage accounts (officer)')
    .description('Create accounts and envelopes, change their state, clearance and names, and delete never-certified ones (security officers).')
    .addCommand(userCreateCommand(ctx))
    .addCommand(userListCommand(ctx))
    .addCommand(userShowCommand(ctx))
    .addCommand(userStateCommand(ctx, 'disable'))
    .addCommand(userStateCommand(ctx, 'enable'))
    .addCommand(userStateCommand(ctx, 'unlock'))
    .addCommand(userResetCommand(ctx))
    .addCommand(userClearanceCommand(ctx))
    .addCommand(userRenameCommand(ctx))
    .addCommand(userDeleteCommand(ctx));
  return withHelp(cmd, {
    examples: ['sigil user create --login alee --name "Ann Lee" --department Signals --clearance secret', 'sigil user list'],
    exitCodes: [EXIT.auth],
  });
}
