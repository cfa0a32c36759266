/** The `sigil meeting …` noun: schedule, list, answer, cancel (server/API.md "Meetings"). */
import { Command } from 'commander';
import type { CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { withHelp } from '../../help.js';
import { answerCommand } from './answer.js';
import { cancelCommand } from './cancel.js';
import { listCommand } from './list.js';
import { scheduleCommand } from './schedule.js';

export function meetingCommand(ctx: CommandContext): Command {
  const cmd = new Command('meeting')
    .summary('schedule meetings, answer them, see what is coming')
    .description(
      'Meetings are signed messages: an invitation (title, time, place) to a person or #group, answers to it, and the ' +
        "organiser's cancellation. Everyone's CLI builds the list from the verified messages; the appliance keeps no " +
        'meeting table.',
    )
    .addCommand(scheduleCommand(ctx))
    .addCommand(listCommand(ctx))
    .addCommand(answerCommand(ctx))
    .addCommand(cancelCommand(ctx));
  return withHelp(cmd, {
    examples: [
      'sigil meeting list',
      "echo 'Budget review' | sigil meeting schedule '#ops' --at '2026-12-03 10:00' --for 45m",
      'sigil meeting answer q3Jd0yP1xVfKX2aNw8e9Lg accept',
      'sigil meeting cancel q3Jd0yP1xVfKX2aNw8e9Lg',
    ],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}
