/**
 * `sigil cert import FILE`: puts the certificate the officer issued into the profile.
 * - A PEM certificate (from `--csr` issuance): it must match the key made by `sigil keygen`.
 * - A PKCS#12 (RFC 7292) file: key and certificate both come from it; the key is re-stored as
 *   encrypted PKCS#8 in the profile.
 * Either way the certificate must chain to the pinned CA before it is accepted.
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { action1, type CommandContext } from '../../context.js';
import { CliError, InputFileError, KeyExistsError, Pkcs12OpenError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { MIN_KEY_PASSPHRASE_LENGTH, newKeyPassphrase } from '../../key-passphrase.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface CertImportOptions {
  file: string;
  force?: boolean;
  newPassphrase?: boolean;
  json?: boolean;
}

export function certImportCommand(ctx: CommandContext): Command {
  const cmd = new Command('import')
    .summary('import your certificate or PKCS#12 into the profile')
    .description(
      'Import the certificate issued to you. FILE is either the PEM certificate issued from your CSR (it must match ' +
        'the key made by sigil keygen) or a PKCS#12 file (.p12) holding key and certificate. The certificate must ' +
        'chain to the pinned CA.',
    )
    .argument('<file>', 'certificate PEM or PKCS#12 file')
    .option('--force', 'with a PKCS#12: replace an existing private key')
    .option('--new-passphrase', 'with a PKCS#12: store the key under a new passphrase instead of the PKCS#12 password')
    .option('--json', 'print {login, serial, subject, notAfter} as JSON')
    .action(action1(ctx, 'file', run));
  return withHelp(cmd, {
    sections: [
      envSection([
        [ENV.keyPassphrase, 'passphrase of the profile key; for a PKCS#12, its password (else prompted)'],
        [ENV.newKeyPassphrase, `with --new-passphrase: the new key passphrase, at least ${MIN_KEY_PASSPHRASE_LENGTH} characters (else prompted twice)`],
      ]),
    ],
    examples: ['sigil cert import alee.cert.pem', 'sigil cert import bkim.p12 --new-passphrase'],
    exitCodes: [EXIT.verification, EXIT.auth],
  });
}

async function readInput(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (cause) {
    throw new InputFileError(file, 'a readable file', { cause });
  }
}

export async function run(opts: CertImportOptions, rt: Runtime): Promise<void> {
  const { BadPasswordError, exportPrivateKeyPem, isPkcs12, MalformedInputError, openPkcs12, Pkcs12IncompleteError, UnknownAlgorithmError } = await import('../../../pki/index.js');
  const { assertCertMatchesKey, assertChainsToPinnedCa, readCertificates } = await import('../../credentials.js');
  const config = await rt.config();
  const bytes = await readInput(opts.file);
  const caPem = await rt.profile.read('ca');
  const isPem = bytes.includes('-----BEGIN CERTIFICATE-----');
  let leafPem: string;
  let chainPem: string;
  let login: string | undefined;
  let serial: string;
  let subject: string;
  let notAfter: Date;
  // The PKCS#12 password was chosen by whoever made the file (the appliance, read out by the officer).
  let keptIssuersPassword = false;
  if (isPem) {
    const [leaf, ...rest] = readCertificates(bytes.toString('utf8'), opts.file);
    const { key } = await rt.unlock({ needCertificate: false });
    await assertCertMatchesKey(leaf, key);
    await assertChainsToPinnedCa(leaf, rest, caPem, rt.io.now(), 'tls-client');
    ({ serial, subject, notAfter, login } = describe(leaf));
    leafPem = leaf.pem;
    chainPem = rest.map((c) => c.pem).join('');
  } else {
    // Neither form: said as such, not as a key that --force would replace.
    if (!isPkcs12(new Uint8Array(bytes))) throw new InputFileError(opts.file, 'a PEM certificate or a PKCS#12 file');
    if ((await rt.profile.has('key')) && !opts.force) throw new KeyExistsError(rt.profile.path('key'));
    const password = await rt.io.prompter.secret('PKCS#12 password', ENV.keyPassphrase);
    let opened;
    try {
      opened = await openPkcs12(new Uint8Array(bytes), password);
    } catch (err) {
      if (err instanceof BadPasswordError) throw new Pkcs12OpenError(opts.file, { cause: err });
      // A legacy-encrypted file (openssl -legacy): not a wrong password, and the message says what to do.
      if (err instanceof UnknownAlgorithmError) throw new CliError('P12_UNSUPPORTED', `${opts.file}: ${err.message}`, { cause: err });
      if (err instanceof MalformedInputError || err instanceof Pkcs12IncompleteError) throw new InputFileError(opts.file, 'a PEM certificate or a PKCS#12 file', { cause: err });
      throw err;
    }
    await assertChainsToPinnedCa(opened.cert, opened.chain, caPem, rt.io.now(), 'tls-client');
    const passphrase = opts.newPassphrase ? await newKeyPassphrase(rt.io.prompter, ENV.newKeyPassphrase, describe(opened.cert).login ?? config.login) : password;
    await rt.profile.write('key', await exportPrivateKeyPem(opened.key, passphrase));
    keptIssuersPassword = !opts.newPassphrase;
    ({ serial, subject, notAfter, login } = describe(opened.cert));
    leafPem = opened.cert.pem;
    chainPem = opened.chain.filter((c) => !c.isSelfIssued).map((c) => c.pem).join('');
  }
  await rt.profile.write('cert', leafPem);
  await rt.profile.write('chain', chainPem);
  // A session was bound to the previous certificate; it cannot be used with this one.
  await rt.profile.remove('session');
  await rt.profile.writeConfig({ ...config, login: login ?? config.login });
  const result = { login: login ?? config.login, serial, subject, notAfter: notAfter.toISOString() };
  if (rt.json) return rt.out.json(result);
  rt.out.fields([
    ['login', result.login],
    ['serial', serial],
    ['subject', subject],
    ['expires', result.notAfter],
  ]);
  if (keptIssuersPassword) rt.out.note('the key is stored under the PKCS#12 password, which whoever made the file knows; choose your own with: sigil passphrase');
}

function describe(cert: { serialNumber: string; subjectString: string; notAfter: Date; subject: { login?: string; commonName?: string } }) {
  return {
    serial: cert.serialNumber,
    subject: cert.subjectString,
    notAfter: cert.notAfter,
    login: cert.subject.login ?? cert.subject.commonName,
  };
}
