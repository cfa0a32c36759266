/**
 * Key wrapping: a data key is 32 random bytes sealed (see `aead.ts`) under a key-encryption key
 * with an AAD naming its purpose and id (`ck:<convId>`, `dek:<msgId>`, `key:<name>`), so a
 * wrapped key copied onto another row fails to unwrap. The sealed layout is exactly what
 * WebCrypto's `wrapKey('raw', …, AES-GCM)` produces, so unwrapping goes through `unwrapKey` and
 * the plaintext key never exists as JavaScript bytes on the read path.
 */
import { webcrypto } from 'node:crypto';
import { IV_BYTES, SEAL_OVERHEAD, SEAL_VERSION, TAG_BYTES, fullAad, importDataKey, open, randomBytes, seal, type RandomBytes } from './aead.js';
import { VaultDecryptError } from './errors.js';
import type { CryptoKey, KeyUsage } from './crypto-types.js';

const subtle = webcrypto.subtle;

/** Length of every data key: AES-256. */
export const DATA_KEY_BYTES = 32;
/** Length of a wrapped data key. */
export const WRAPPED_KEY_BYTES = DATA_KEY_BYTES + SEAL_OVERHEAD;

/** The AAD of a conversation key wrapped under the master key: `ck:<convId>`. */
export const ckAad = (convId: string): string => `ck:${convId}`;

/** The AAD of a message's (or file's) key under its conversation key: `dek:<msgId>`. */
export const dekAad = (msgId: string): string => `dek:${msgId}`;

/** What a key-encryption key must allow. */
export const KEK_USAGES: KeyUsage[] = ['encrypt', 'decrypt', 'unwrapKey'];

/** Usages of unwrapped data keys: they encrypt data and may themselves wrap keys (a CK wraps DEKs). */
export const DATA_KEY_USAGES: KeyUsage[] = ['encrypt', 'decrypt', 'unwrapKey'];

/**
 * Makes a fresh data key and its wrapped form under `kek`.
 *
 * @returns `key`: non-extractable AES-256-GCM CryptoKey; `wrapped`: bytes to store.
 */
export async function createWrappedKey(
  kek: CryptoKey,
  aad: string,
  random: RandomBytes = randomBytes,
): Promise<{ key: CryptoKey; wrapped: Uint8Array }> {
  const raw = random(DATA_KEY_BYTES);
  try {
    const [key, wrapped] = await Promise.all([importDataKey(raw, DATA_KEY_USAGES), seal(kek, raw, aad, random)]);
    return { key, wrapped };
  } finally {
    raw.fill(0);
  }
}

/**
 * Unwraps a key made by {@link createWrappedKey} into a non-extractable CryptoKey.
 *
 * @throws VaultDecryptError if `wrapped` was modified, or `kek` or `aad` differ.
 */
export async function unwrapDataKey(kek: CryptoKey, wrapped: Uint8Array, aad: string): Promise<CryptoKey> {
  if (wrapped.length !== WRAPPED_KEY_BYTES || wrapped[0] !== SEAL_VERSION) {
    throw new VaultDecryptError(
      `wrapped key: expected ${WRAPPED_KEY_BYTES} bytes of version ${SEAL_VERSION}, got ${wrapped.length} bytes of version ${wrapped[0]}`,
    );
  }
  try {
    return await subtle.unwrapKey(
      'raw',
      wrapped.subarray(1 + IV_BYTES),
      kek,
      { name: 'AES-GCM', iv: wrapped.subarray(1, 1 + IV_BYTES), additionalData: fullAad(aad), tagLength: TAG_BYTES * 8 },
      { name: 'AES-GCM', length: 256 },
      false,
      DATA_KEY_USAGES,
    );
  } catch (err) {
    throw new VaultDecryptError(`wrapped key for ${aad} did not unwrap: modified, or wrong key or AAD`, { cause: err });
  }
}

/** Re-wraps a wrapped key from `oldKek` to `newKek` under the same AAD (master-key rotation). */
export async function rewrapKey(
  oldKek: CryptoKey,
  newKek: CryptoKey,
  wrapped: Uint8Array,
  aad: string,
  random: RandomBytes = randomBytes,
): Promise<Uint8Array> {
  const raw = await open(oldKek, wrapped, aad);
  try {
    return await seal(newKek, raw, aad, random);
  } finally {
    raw.fill(0);
  }
}
