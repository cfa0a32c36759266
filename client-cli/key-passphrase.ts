/**
 * The policy for a passphrase that will encrypt the profile's private key. The key file is open to
 * an offline guesser once copied (PBKDF2, 600k iterations, is all that slows one down), so the bar
 * is the account password's (server/accounts/password.ts): at least 12 characters, not the login.
 * A PKCS#12 password kept as the key passphrase is not checked here: the appliance made it at random,
 * or the officer chose it under the account-password policy, which the appliance enforces.
 */
import { KeyPassphraseWeakError } from './errors.js';
import type { Prompter } from './prompt.js';

export const MIN_KEY_PASSPHRASE_LENGTH = 12;
/** Bounds the PBKDF2 input; far beyond anything typed. */
export const MAX_KEY_PASSPHRASE_LENGTH = 1024;

/** @throws KeyPassphraseWeakError naming the rule broken */
export function checkNewKeyPassphrase(passphrase: string, login?: string): void {
  const length = [...passphrase].length;
  if (length < MIN_KEY_PASSPHRASE_LENGTH) throw new KeyPassphraseWeakError(`it must have at least ${MIN_KEY_PASSPHRASE_LENGTH} characters`);
  if (length > MAX_KEY_PASSPHRASE_LENGTH) throw new KeyPassphraseWeakError(`it must have at most ${MAX_KEY_PASSPHRASE_LENGTH} characters`);
  if (login && passphrase.toLowerCase().includes(login.toLowerCase())) throw new KeyPassphraseWeakError('it must not contain the login');
}

/** Asks for a new key passphrase (twice on a terminal, or from `envVar`) and checks it. */
export async function newKeyPassphrase(prompter: Prompter, envVar: string, login?: string): Promise<string> {
  const passphrase = await prompter.newSecret('New key passphrase', envVar);
  checkNewKeyPassphrase(passphrase, login);
  return passphrase;
}
