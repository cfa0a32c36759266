/** The `sigil cert …` noun: importing one's own certificate, and issuing/revoking (officer). */
import { Command } from 'commander';
import type { CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { withHelp } from '../../help.js';
import { certImportCommand } from './import.js';
import { certIssueCommand } from './issue.js';
import { certListCommand } from './list.js';
import { certRevokeCommand } from './revoke.js';

export function certCommand(ctx: CommandContext): Command {
  const cmd = new Command('cert')
    .summary('import, issue, list and revoke certificates')
    .description('Certificates: import your own (from the officer) into the profile; officers issue, list and revoke them.')
    .addCommand(certImportCommand(ctx))
    .addCommand(certIssueCommand(ctx))
    .addCommand(certListCommand(ctx))
    .addCommand(certRevokeCommand(ctx));
  return withHelp(cmd, {
    examples: ['sigil cert import alee.cert.pem', 'sigil cert issue alee --csr alee.csr.pem --out alee.cert.pem', 'sigil cert revoke 3f9a0c11d2 --reason keyCompromise'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}
