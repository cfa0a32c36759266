/**
 * `sigil passphrase`: the profile's private key re-encrypted under a new passphrase. For a key
 * imported from a PKCS#12 under its issuer's password, and for a passphrase that leaked. The key
 * itself, its certificate and the session stay: only the file's encryption changes, written beside
 * the old one and renamed over it (output-file.ts), so a failure leaves the old file.
 */
import { Command } from 'commander';
import { action, type CommandContext } from '../../context.js';
import { CredentialMissingError, KeyPassphraseWeakError } from '../../errors.js';
import { EXIT } from '../../exit-codes.js';
import { envSection, withHelp } from '../../help.js';
import { MIN_KEY_PASSPHRASE_LENGTH, newKeyPassphrase } from '../../key-passphrase.js';
import { ENV, type Runtime } from '../../runtime.js';

export interface PassphraseOptions {
  json?: boolean;
}

export function passphraseCommand(ctx: CommandContext): Command {
  const cmd = new Command('passphrase')
    .summary('change the passphrase of your private key')
    .description(
      'Encrypt the private key in the profile under a new passphrase. Asks for the current one (or the PKCS#12 ' +
        'password it was imported with), then the new one twice (no echo). Works offline; the certificate and the ' +
        'session stay as they are.',
    )
    .option('--json', 'print {keyFile} as JSON')
    .action(action(ctx, run));
  return withHelp(cmd, {
    sections: [
      envSection([
        [ENV.keyPassphrase, 'the current passphrase (else prompted)'],
        [ENV.newKeyPassphrase, `the new passphrase, at least ${MIN_KEY_PASSPHRASE_LENGTH} characters, not containing the login (else prompted twice)`],
      ]),
    ],
    examples: ['sigil passphrase'],
    exitCodes: [EXIT.auth],
  });
}

export async function run(_opts: PassphraseOptions, rt: Runtime): Promise<void> {
  const config = await rt.config();
  const pem = await rt.profile.readOptional('key');
  if (pem === undefined) throw new CredentialMissingError('key', 'run: sigil keygen --login LOGIN, or sigil cert import FILE.p12');
  const { isEncryptedKeyPem, unlockKey } = await import('../../credentials.js');
  const { exportPrivateKeyPem } = await import('../../../pki/index.js');
  const current = isEncryptedKeyPem(pem) ? await rt.io.prompter.secret('Key passphrase', ENV.keyPassphrase) : undefined;
  const key = await unlockKey(pem, current);
  const next = await newKeyPassphrase(rt.io.prompter, ENV.newKeyPassphrase, config.login);
  if (current !== undefined && next === current) throw new KeyPassphraseWeakError('it must differ from the current one');
  const staged = await rt.profile.stage('key', await exportPrivateKeyPem(key, next));
  try {
    await staged.commit();
  } finally {
    await staged.discard();
  }
  if (rt.json) return rt.out.json({ keyFile: rt.profile.path('key') });
  rt.out.note(`key re-encrypted in ${rt.profile.path('key')}; use the new passphrase from now on`);
}
