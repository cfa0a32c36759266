/** The `sigil crl …` noun: certificate revocation lists. */
import { Command } from 'commander';
import type { CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { withHelp } from '../../help.js';
import { crlFetchCommand } from './fetch.js';
import { crlPublishCommand } from './publish.js';

export function crlCommand(ctx: CommandContext): Command {
  const cmd = new Command('crl')
    .summary('fetch or publish revocation lists')
    .description("Certificate revocation lists (RFC 5280 §5) of the appliance's CAs: the issuing CA's, and the root's (--root).")
    .addCommand(crlFetchCommand(ctx))
    .addCommand(crlPublishCommand(ctx));
  return withHelp(cmd, { examples: ['sigil crl fetch --out sigil.crl.pem', 'sigil crl fetch --root --out root.crl.pem', 'sigil crl publish'], exitCodes: [EXIT.verification, EXIT.auth] });
}
