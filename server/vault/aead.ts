/**
 * Authenticated encryption for everything the vault stores: AES-256-GCM (NIST SP 800-38D) through
 * WebCrypto, which runs on libuv's thread pool so sealing never blocks the event loop.
 *
 * Sealed format (version 1): `0x01 ‖ IV (12 bytes, random) ‖ ciphertext ‖ tag (16 bytes)`.
 * The version byte is authenticated too (it is prefixed to the caller's AAD), so a future format
 * cannot be confused with this one.
 */
import { webcrypto } from 'node:crypto';
import { VaultDecryptError } from './errors.js';
import type { CryptoKey, KeyUsage } from './crypto-types.js';

const subtle = webcrypto.subtle;

/** Current sealed-blob version. */
export const SEAL_VERSION = 1;
/** GCM IV length in bytes (96 bits, the length GCM is designed for). */
export const IV_BYTES = 12;
/** GCM tag length in bytes. */
export const TAG_BYTES = 16;
/** Bytes a sealed blob adds to its plaintext. */
export const SEAL_OVERHEAD = 1 + IV_BYTES + TAG_BYTES;

/** Random source, a parameter so tests can pin IVs. */
export type RandomBytes = (n: number) => Uint8Array;

/** Default random source: WebCrypto's CSPRNG. */
export const randomBytes: RandomBytes = (n) => webcrypto.getRandomValues(new Uint8Array(n));

const encoder = new TextEncoder();

/** AAD as bytes: strings are UTF-8. */
export function aadBytes(aad: Uint8Array | string): Uint8Array {
  return typeof aad === 'string' ? encoder.encode(aad) : aad;
}

/** The AAD actually given to GCM: the version byte, then the caller's AAD. */
export function fullAad(aad: Uint8Array | string): Uint8Array {
  const a = aadBytes(aad);
  const out = new Uint8Array(1 + a.length);
  out[0] = SEAL_VERSION;
  out.set(a, 1);
  return out;
}

/**
 * Encrypts and authenticates `plaintext` with `key` (AES-GCM, 256-bit), binding `aad`.
 *
 * @param key - an AES-GCM CryptoKey with usage `encrypt`
 * @param aad - associated data (e.g. `dek:<msgId>`) that must be presented again to open
 * @param random - IV source; default CSPRNG
 * @returns `0x01 ‖ IV ‖ ciphertext ‖ tag`
 */
export async function seal(
  key: CryptoKey,
  plaintext: Uint8Array,
  aad: Uint8Array | string,
  random: RandomBytes = randomBytes,
): Promise<Uint8Array> {
  const iv = random(IV_BYTES);
  const ct = new Uint8Array(
    await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: fullAad(aad), tagLength: TAG_BYTES * 8 }, key, plaintext),
  );
  const out = new Uint8Array(1 + IV_BYTES + ct.length);
  out[0] = SEAL_VERSION;
  out.set(iv, 1);
  out.set(ct, 1 + IV_BYTES);
  return out;
}

/**
 * Authenticates and decrypts a blob made by {@link seal}.
 *
 * @throws VaultDecryptError (`VAULT_DECRYPT_FAILED`) if the blob is malformed, of an unknown
 *   version, was modified, or the key or AAD differ.
 */
export async function open(key: CryptoKey, sealed: Uint8Array, aad: Uint8Array | string): Promise<Uint8Array> {
  if (sealed.length < SEAL_OVERHEAD) {
    throw new VaultDecryptError(`sealed blob too short: expected at least ${SEAL_OVERHEAD} bytes, got ${sealed.length}`);
  }
  if (sealed[0] !== SEAL_VERSION) {
    throw new VaultDecryptError(`sealed blob version: expected ${SEAL_VERSION}, got ${sealed[0]}`);
  }
  const iv = sealed.subarray(1, 1 + IV_BYTES);
  const ct = sealed.subarray(1 + IV_BYTES);
  try {
    return new Uint8Array(
      await subtle.decrypt({ name: 'AES-GCM', iv, additionalData: fullAad(aad), tagLength: TAG_BYTES * 8 }, key, ct),
    );
  } catch (err) {
    throw new VaultDecryptError('authentication failed: the blob was modified, or the key or AAD differ', { cause: err });
  }
}

/** Generates a fresh AES-256-GCM data key (non-extractable unless asked, e.g. to wrap it). */
export async function generateDataKey(extractable = false): Promise<CryptoKey> {
  return subtle.generateKey({ name: 'AES-GCM', length: 256 }, extractable, ['encrypt', 'decrypt']);
}

/** Imports 32 raw bytes as a non-extractable AES-256-GCM key. */
export async function importDataKey(raw: Uint8Array, usages: KeyUsage[] = ['encrypt', 'decrypt']): Promise<CryptoKey> {
  return subtle.importKey('raw', raw, { name: 'AES-GCM', length: 256 }, false, usages);
}
