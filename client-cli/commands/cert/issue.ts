/**
 * `sigil cert issue LOGIN --csr FILE | --p12 OUT`: a certificate for an account (officer), either
 * from the holder's CSR (the key never left their workstation) or as a password-protected
 * PKCS#12 made on the appliance.
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { InputFileError, UsageError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { stageFile } from '../../output-file.js';
import { ENV, type Runtime } from '../../runtime.js';
import { escapeControls, oneLine } from '../../terminal-text.js';

export interface CertIssueOptions {
  login: string;
  csr?: string;
  p12?: string;
  out?: string;
  json?: boolean;
}

export function certIssueCommand(ctx: CommandContext): Command {
  const cmd = new Command('issue')
    .summary('issue a certificate from a CSR or as a PKCS#12')
    .description(
      'Issue a certificate to an account (officer only). A CSR whose key was revoked as compromised ' +
        '(KEY_COMPROMISED) or is certified for another login (KEY_IN_USE) is refused, exit 1: the holder ' +
        'makes a new key and CSR (sigil keygen).\n' +
        '  --csr FILE  from the holder\'s request (sigil keygen); the key never leaves their workstation.\n' +
        '  --p12 OUT   key made on the appliance, written as a PKCS#12; its password is printed once.',
    )
    .argument('<login>', 'login of the account')
    .option('--csr <file>', 'PKCS#10 request PEM made by sigil keygen')
    .option('--p12 <out>', 'write a PKCS#12 (key + certificate) to this file, owner-only (0600); an existing file is replaced')
    .option('--out <file>', 'with --csr: write the certificate and chain PEM here instead of stdout')
    .option('--json', 'print the result as JSON')
    .action(action1(ctx, 'login', run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, 'passphrase of the private key (else prompted)']])],
    examples: ['sigil cert issue alee --csr alee.csr.pem --out alee.cert.pem', 'sigil cert issue bkim --p12 bkim.p12'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(opts: CertIssueOptions, rt: Runtime): Promise<void> {
  const { IssuedCertSchema, IssuedP12Schema } = await import('../../api.js');
  if (Boolean(opts.csr) === Boolean(opts.p12)) throw new UsageError('give exactly one of --csr FILE or --p12 OUT');
  if (opts.p12 && opts.out) throw new UsageError('--out goes with --csr; with --p12 the file is the --p12 argument');
  const path = `/v1/users/${encodeURIComponent(opts.login)}/certificates`;
  if (opts.csr) {
    let csr: string;
    try {
      csr = await readFile(opts.csr, 'utf8');
    } catch (cause) {
      throw new InputFileError(opts.csr, 'a readable file', { cause });
    }
    if (!csr.includes('-----BEGIN CERTIFICATE REQUEST-----')) throw new InputFileError(opts.csr, 'a PEM certificate request');
    // Staged first, as --p12 below: an --out that cannot be written fails before anything is issued.
    const out = opts.out ? await stageFile(opts.out, { mode: 0o644 }) : undefined;
    let issued: { serial: string; certificate: string; chain: string };
    let bundle: string;
    try {
      const http = await rt.client({ session: true });
      issued = await http.post(path, { csr }, IssuedCertSchema);
      bundle = issued.certificate.trimEnd() + '\n' + issued.chain.trimEnd() + '\n';
      await out?.write(bundle);
      await out?.commit();
    } finally {
      await out?.discard();
    }
    if (rt.json) return rt.out.json({ serial: issued.serial, certificate: issued.certificate, chain: issued.chain, file: opts.out });
    if (opts.out) {
      rt.out.fields([
        ['serial', issued.serial],
        ['written', opts.out],
      ]);
    } else {
      rt.io.stdout.write(escapeControls(bundle));
      rt.out.note(`serial ${oneLine(issued.serial)}`);
    }
    return;
  }
  // The file is a new owner-only file renamed over OUT (output-file.ts), never an existing file
  // rewritten with its old mode. Staged before the request: an OUT that cannot be written fails
  // before the appliance makes a key and certificate whose only copy would then be lost.
  const p12 = await stageFile(opts.p12 as string, { mode: 0o600 });
  let issued: { serial: string; p12: string; password: string };
  try {
    const http = await rt.client({ session: true });
    issued = await http.post(`${path}/p12`, {}, IssuedP12Schema);
    await p12.write(Buffer.from(issued.p12, 'base64'));
    await p12.commit();
  } finally {
    await p12.discard();
  }
  if (rt.json) return rt.out.json({ serial: issued.serial, file: opts.p12, password: issued.password });
  rt.out.fields([
    ['serial', issued.serial],
    ['written', opts.p12],
    ['password', issued.password],
  ]);
  rt.out.note('hand the password over apart from the file; it is shown only now');
}
