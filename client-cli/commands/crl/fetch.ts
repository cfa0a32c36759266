/** `sigil crl fetch`: the appliance's current certificate revocation list (RFC 5280 §5). */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface CrlFetchOptions {
  out?: string;
  json?: boolean;
}

export function crlFetchCommand(ctx: CommandContext): Command {
  const cmd = new Command('fetch')
    .summary('download the current CRL')
    .description('Download the current CRL, check its signature against the pinned CA, and print it (PEM) or write it to --out.')
    .option('--out <file>', 'write the CRL PEM to this file')
    .option('--json', 'print {crl, crlNumber, thisUpdate, nextUpdate} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil crl fetch --out sigil.crl.pem', 'sigil crl fetch | openssl crl -noout -text'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: CrlFetchOptions, rt: Runtime): Promise<void> {
  const { CaSchema, CrlSchema } = await import('../../api.js');
  const http = await rt.client({ session: false });
  const crl = await http.get('/v1/crl', CrlSchema);
  // The CRL is signed by the issuing CA; the pin may hold only the root, so take the served
  // chain, which checkCrl trusts only as far as it chains to the pin.
  const ca = await http.get('/v1/ca', CaSchema);
  const { checkCrl } = await import('../../crl-check.js');
  const checked = await checkCrl(crl.crl, await rt.profile.read('ca'), ca.chain, rt.io.now());
  if (opts.out) {
    // Through a new hidden file renamed over the name (output-file.ts): a link at --out is
    // replaced, never written through.
    const { writeFileAtomic } = await import('../../output-file.js');
    await writeFileAtomic(opts.out, crl.crl, { mode: 0o644 });
  }
  const result = { ...crl, crlNumber: String(crl.crlNumber), revoked: checked.revoked, issuer: checked.issuer, file: opts.out };
  if (rt.json) return rt.out.json(result);
  if (!opts.out) {
    rt.io.stdout.write(crl.crl.trimEnd() + '\n');
    rt.out.note(`CRL #${result.crlNumber} from ${checked.issuer}, ${checked.revoked} revoked, next update ${crl.nextUpdate}`);
    return;
  }
  rt.out.fields([
    ['crl number', result.crlNumber],
    ['issuer', checked.issuer],
    ['this update', crl.thisUpdate],
    ['next update', crl.nextUpdate],
    ['revoked', checked.revoked],
    ['written', opts.out],
  ]);
}
