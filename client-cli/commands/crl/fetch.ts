/**
 * `sigil crl fetch`: the appliance's current certificate revocation list (RFC 5280 §5), the issuing
 * CA's (`GET /v1/crl`, it covers staff and server certificates) or, with `--root`, the root CA's
 * (`GET /v1/crl/root`, it covers the issuing CA; signed at the offline root key ceremony).
 */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { ENV, type Runtime } from '../../runtime.js';
import type { Certificate, Crl } from '../../../pki/index.js';
import type { HttpClient } from '../../http.js';
import { escapeControls, oneLine } from '../../terminal-text.js';

export interface CrlFetchOptions {
  out?: string;
  /** The root CA's CRL instead of the issuing CA's; it must be signed by a pinned root. */
  root?: boolean;
  json?: boolean;
}

export function crlFetchCommand(ctx: CommandContext): Command {
  const cmd = new Command('fetch')
    .summary('download the current CRL (the issuing CA\'s, or the root\'s with --root)')
    .description(
      "Download the current CRL, check its signature against the pinned CA, and print it (PEM) or write it to --out. " +
        "By default the issuing CA's CRL (it covers staff and server certificates); with --root the root CA's CRL " +
        '(it covers the issuing CA), which must be signed by the pinned root. An appliance without a root CRL answers ' +
        'with one error line (exit 1): its officer signs one with sigil-server sign-root-crl. A root CRL newer than the one ' +
        'the profile kept is kept (root-crl.pem; every messaging command judges the issuing CA by the newer of the two); ' +
        'one older than it gets a warning line.',
    )
    .option('--out <file>', 'write the CRL PEM to this file')
    .option('--root', "fetch the root CA's CRL (GET /v1/crl/root) instead of the issuing CA's")
    .option('--json', 'print {crl, crlNumber, thisUpdate, nextUpdate} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: [
      'sigil crl fetch --out sigil.crl.pem',
      'sigil crl fetch | openssl crl -noout -text',
      'sigil crl fetch --root --out root.crl.pem',
      'sigil verify --package ./evidence-q3Jd0yP1 --crl root.crl.pem --crl sigil.crl.pem',
    ],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

export async function run(opts: CrlFetchOptions, rt: Runtime): Promise<void> {
  const { CaSchema, CrlSchema } = await import('../../api.js');
  const http = await rt.client({ session: false });
  const pinned = await rt.profile.read('ca');
  let crl;
  let checked: { issuer: string; revoked: number };
  if (opts.root) {
    crl = await fetchRootCrl(http);
    // Signed by the root itself: only the pin's self-signed roots may have signed it, checked as
    // every messaging command checks the one it judges the issuing CA by (messaging/root-crl.ts).
    const { checkRootCrl, pinnedRoots } = await import('../../messaging/root-crl.js');
    const roots = await pinnedRoots(pinned);
    const rootCrl = await checkRootCrl(crl.crl, 'from the appliance', roots);
    checked = { issuer: rootCrl.issuerString, revoked: rootCrl.revoked.length };
    await keepRootCrl(rt, { crl: rootCrl, pem: crl.crl }, roots);
  } else {
    crl = await http.get('/v1/crl', CrlSchema);
    // The CRL is signed by the issuing CA; the pin may hold only the root, so take the served
    // chain, which checkCrl trusts only as far as it chains to the pin.
    const ca = await http.get('/v1/ca', CaSchema);
    const { checkCrl } = await import('../../crl-check.js');
    checked = await checkCrl(crl.crl, pinned, ca.chain, rt.io.now());
  }
  if (opts.out) {
    // Through a new hidden file renamed over the name (output-file.ts): a link at --out is
    // replaced, never written through.
    const { writeFileAtomic } = await import('../../output-file.js');
    await writeFileAtomic(opts.out, crl.crl, { mode: 0o644 });
  }
  const result = { ...crl, crlNumber: String(crl.crlNumber), revoked: checked.revoked, issuer: checked.issuer, file: opts.out };
  if (rt.json) return rt.out.json(result);
  if (!opts.out) {
    // The served text as it is (a checked CRL's PEM has no controls; anything around it is shown escaped).
    rt.io.stdout.write(escapeControls(crl.crl.trimEnd()) + '\n');
    rt.out.note(`${opts.root ? 'root ' : ''}CRL #${result.crlNumber} from ${oneLine(checked.issuer)}, ${checked.revoked} revoked, next update ${oneLine(crl.nextUpdate)}`);
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

/**
 * `GET /v1/crl/root`.
 * @throws ServerError NOT_FOUND, reworded, when the appliance has no root CRL yet
 */
async function fetchRootCrl(http: HttpClient): Promise<{ crl: string; crlNumber: number | string; thisUpdate: string; nextUpdate: string }> {
  const { CrlSchema } = await import('../../api.js');
  const { ServerError } = await import('../../errors.js');
  try {
    return await http.get('/v1/crl/root', CrlSchema);
  } catch (err) {
    // Only NOT_FOUND is "none yet": ROOT_CRL_UNUSABLE (its file is damaged) keeps the server's words.
    if (err instanceof ServerError && err.status === 404 && err.code === 'NOT_FOUND') {
      throw new ServerError(
        err.code,
        'the appliance has no root CRL yet (initialised before root CRLs, or its file is lost): its officer signs one at the root key ceremony with sigil-server sign-root-crl',
        err.status,
        err.requestId,
      );
    }
    throw err;
  }
}

/**
 * Weighs the fetched root CRL against the one the profile kept, as every messaging command does
 * (messaging/kept-root-crl.ts): a newer one is kept; an older one than the kept is said on stderr.
 */
async function keepRootCrl(rt: Runtime, served: { crl: Crl; pem: string }, roots: Certificate[]): Promise<void> {
  const { profileRootCrlStore, readKept, weighRootCrl } = await import('../../messaging/kept-root-crl.js');
  const store = profileRootCrlStore(rt.profile);
  const held = await weighRootCrl(served, await readKept(store, roots), store);
  for (const w of held.warnings) rt.out.note(`warning: ${w}`);
}
