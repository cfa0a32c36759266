/** `sigil crl publish`: make the appliance sign and publish a new CRL now (officer). */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface CrlPublishOptions {
  json?: boolean;
}

export function crlPublishCommand(ctx: CommandContext): Command {
  const cmd = new Command('publish')
    .summary('publish a new CRL now')
    .description('Have the appliance sign and publish a new CRL at once, e.g. right after a revocation (officer only).')
    .option('--json', 'print {crlNumber, thisUpdate, nextUpdate} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil crl publish'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(_opts: CrlPublishOptions, rt: Runtime): Promise<void> {
  const { CrlPublishedSchema } = await import('../../api.js');
  const http = await rt.client({ session: true });
  const published = await http.post('/v1/crl', {}, CrlPublishedSchema);
  if (rt.json) return rt.out.json(published);
  rt.out.fields([
    ['crl number', published.crlNumber],
    ['this update', published.thisUpdate],
    ['next update', published.nextUpdate],
  ]);
}
