/**
 * How a login that has no account is named wherever it is kept: the lockout table and the audit
 * trail hold its keyed hash, never the string itself.
 *
 * Why not the string: whatever a client types into the login field that fits the login pattern is
 * an "unknown login" — and an envelope password (`abcde-fghjk-…`, accounts/password.ts) fits it.
 * Typed into the wrong field, it would otherwise sit in clear in vault.db and, worse, in the
 * append-only audit trail that nobody can ever clean. Why keyed: logins are short and guessable,
 * so a plain SHA-256 could be reversed by trying candidates; the key is sealed in the keyring under
 * the master key, so a copy of vault.db alone confirms nothing.
 *
 * The key is the keyring's `audit-hmac` secret, the same that names deletion targets and messages
 * in the audit trail (messaging's `keyedHashFromKeyring`); the input is prefixed `login:` so no
 * hash of a login equals one of a deletion target (`user:<login>`) or a message (`message:<id>`).
 */
import { createHmac } from 'node:crypto';

/** The keyed hash of a login (lower-case hex, 64 characters). Synchronous: it runs on every failed login. */
export type LoginHash = (login: string) => string;

/** The keyring secret the hash is keyed with (shared with messaging's keyed hashes). */
export const LOGIN_HASH_SECRET = 'audit-hmac';

/** A {@link LoginHash} under `key` (tests pass their own; the appliance uses {@link loginHashFromKeyring}). */
export function loginHashWithKey(key: Uint8Array): LoginHash {
  const k = Buffer.from(key);
  return (login) => createHmac('sha256', k).update(`login:${login}`, 'utf8').digest('hex');
}

/**
 * The {@link LoginHash} under the keyring's `audit-hmac` secret (Keyring.ensureSecret: created on
 * first use).
 */
export async function loginHashFromKeyring(keyring: { ensureSecret(name: string): Promise<Uint8Array> }): Promise<LoginHash> {
  return loginHashWithKey(await keyring.ensureSecret(LOGIN_HASH_SECRET));
}

/** How the audit trail names a login that has no account: `login-hmac:<keyed hash>`. */
export function hiddenLoginName(hash: LoginHash, login: string): string {
  return `login-hmac:${hash(login)}`;
}
