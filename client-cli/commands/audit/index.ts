/** The `sigil audit …` noun: the tamper-evident audit trail (issue 6). */
import { Command } from 'commander';
import type { CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { withHelp } from '../../help.js';
import { auditCheckpointCommand } from './checkpoint.js';
import { auditEventsCommand } from './events.js';
import { auditExportCommand } from './export.js';
import { auditProofCommand } from './proof.js';
import { auditRoomAccessCommand } from './room-access.js';
import { auditVerifyCommand } from './verify.js';

export function auditCommand(ctx: CommandContext): Command {
  const cmd = new Command('audit')
    .summary('verify the tamper-evident audit trail; room access register')
    .description(
      'The audit trail: an RFC 9162 Merkle log of every security event, accepted message (keyed hash) and deletion ' +
        "(tombstone), with checkpoints signed by the appliance's audit certificate. Verify it online or offline, list " +
        'events, export it, and (officers) keep the room access register.',
    )
    .addCommand(auditCheckpointCommand(ctx))
    .addCommand(auditVerifyCommand(ctx))
    .addCommand(auditEventsCommand(ctx))
    .addCommand(auditExportCommand(ctx))
    .addCommand(auditProofCommand(ctx))
    .addCommand(auditRoomAccessCommand(ctx));
  return withHelp(cmd, {
    examples: [
      'sigil audit checkpoint',
      'sigil audit verify',
      'sigil audit events --type deletion',
      'sigil audit export --out /media/audit/2026-03',
      'sigil audit verify --offline /media/audit/2026-03 --ca sigil-root.pem',
    ],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}
