/**
 * `sigil keygen --login L`: a key pair made on this workstation. The private key is stored in the
 * profile encrypted (PKCS#8 EncryptedPrivateKeyInfo, PBES2; RFC 5958 §3, RFC 8018 §6.2) and a
 * PKCS#10 request (RFC 2986) is written for the officer: the key never leaves the workstation.
 */
import { Command, Option } from 'commander';
import { DEFAULT_KEY_ALGORITHM, KEY_ALGORITHMS, type KeyAlgorithm } from '../../choices.js';
import { action, type CommandContext } from '../../context.js';
import { KeyExistsError, UsageError } from '../../errors.js';
import { envSection, withHelp } from '../../help.js';
import { MIN_KEY_PASSPHRASE_LENGTH, newKeyPassphrase } from '../../key-passphrase.js';
import { stageFile, type StagedFile } from '../../output-file.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface KeygenOptions {
  login: string;
  algorithm: KeyAlgorithm;
  out?: string;
  force?: boolean;
  /** false with --no-passphrase */
  passphrase: boolean;
  insecure?: boolean;
  json?: boolean;
}

export function keygenCommand(ctx: CommandContext): Command {
  const cmd = new Command('keygen')
    .summary('make your key pair and a certificate request')
    .description(
      'Make a key pair on this workstation, store the private key encrypted with a passphrase in the profile, ' +
        'and write a certificate request (CSR) for the security officer. The private key never leaves this machine. ' +
        'The CSR is printed on stdout unless --out is given; a copy stays in the profile (request.csr.pem).',
    )
    .addOption(new Option('--login <login>', 'your login, as on your envelope').makeOptionMandatory())
    .addOption(new Option('--algorithm <profile>', "key algorithm; must match the appliance's profile").choices(KEY_ALGORITHMS).default(DEFAULT_KEY_ALGORITHM))
    .option('--out <file>', 'write the CSR PEM to this file (an existing file is replaced); if it cannot be written, the profile is left as it was')
    .option('--force', 'replace an existing key (its certificate is removed from the profile)')
    .option('--no-passphrase', 'store the private key unencrypted (needs --insecure)')
    .option('--insecure', 'allow --no-passphrase')
    .option('--json', 'print {login, algorithm, csr, keyFile} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [envSection([[ENV.keyPassphrase, `passphrase for the new private key, at least ${MIN_KEY_PASSPHRASE_LENGTH} characters, not containing the login (else prompted twice)`]])],
    examples: ['sigil keygen --login alee --out alee.csr.pem', 'sigil keygen --login alee --algorithm rsa3072 --force'],
  });
}

export async function run(opts: KeygenOptions, rt: Runtime): Promise<void> {
  if (!opts.passphrase && !opts.insecure) throw new UsageError('--no-passphrase leaves the private key readable by anyone with the file; add --insecure to confirm');
  const config = await rt.config();
  if ((await rt.profile.has('key')) && !opts.force) throw new KeyExistsError(rt.profile.path('key'));
  const { createCsr, exportPrivateKeyPem, generateKeyPair } = await import('../../../pki/index.js');
  // Everything that can fail comes before the profile changes: --out and the new profile files
  // are written beside their targets first (output-file.ts), and only then renamed into place.
  // A missing --out folder, a refused prompt or a full disk leaves the working key, certificate,
  // chain and session as they were (review: `keygen --force --out BADPATH` removed them, then failed).
  const staged: StagedFile[] = [];
  let passphrase: string | undefined;
  let csrPem: string;
  try {
    const out = opts.out ? await stageFile(opts.out, { mode: 0o644 }) : undefined;
    if (out) staged.push(out);
    passphrase = opts.passphrase ? await newKeyPassphrase(rt.io.prompter, ENV.keyPassphrase, opts.login) : undefined;
    const keyPair = await generateKeyPair(opts.algorithm);
    const csr = await createCsr({ keyPair, subject: { login: opts.login, commonName: opts.login }, profile: opts.algorithm });
    csrPem = csr.pem;
    await out?.write(csrPem);
    const key = await rt.profile.stage('key', await exportPrivateKeyPem(keyPair.privateKey, passphrase));
    staged.push(key);
    const request = await rt.profile.stage('csr', csrPem);
    staged.push(request);
    const cfg = await rt.profile.stageConfig({ ...config, login: opts.login });
    staged.push(cfg);
    // All written: from here only renames and removals.
    await out?.commit();
    await key.commit();
    // A certificate of the previous key is useless with the new one, and so is its session.
    await rt.profile.remove('cert');
    await rt.profile.remove('chain');
    await rt.profile.remove('session');
    await request.commit();
    await cfg.commit();
  } finally {
    for (const s of staged) await s.discard();
  }
  if (rt.json) return rt.out.json({ login: opts.login, algorithm: opts.algorithm, csr: csrPem, keyFile: rt.profile.path('key'), csrFile: opts.out });
  if (!opts.out) rt.io.stdout.write(csrPem);
  else rt.out.fields([['csr', opts.out]]);
  rt.out.note(`key stored ${passphrase ? 'encrypted' : 'UNENCRYPTED'} in ${rt.profile.path('key')}; give the request to your security officer, then run: sigil cert import FILE`);
}
