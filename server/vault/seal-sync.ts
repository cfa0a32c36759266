/**
 * The sealed formats of aead.ts (`seal`) and key-wrap.ts (`createWrappedKey`), made with
 * synchronous node:crypto. For worker threads only (messaging/check-worker.ts): there a message
 * key and a message's ciphertext cost a few microseconds, where each WebCrypto job costs the main
 * thread a thread-pool round trip. Never call these on the event loop. A test holds their output
 * to what `open` and `unwrapDataKey` accept.
 */
import { createCipheriv, randomBytes, type KeyObject } from 'node:crypto';
import { IV_BYTES, SEAL_VERSION, TAG_BYTES, fullAad } from './aead.js';
import { DATA_KEY_BYTES } from './key-wrap.js';

/** {@link seal} on this thread: `0x01 ‖ IV ‖ ciphertext ‖ tag` under an AES-256 key. */
export function sealSync(key: KeyObject | Uint8Array, plaintext: Uint8Array, aad: Uint8Array | string): Uint8Array {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(fullAad(aad));
  const parts = [Buffer.of(SEAL_VERSION), iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()];
  return Buffer.concat(parts);
}

/**
 * {@link createWrappedKey} on this thread: a fresh data key and its wrapped form under `kek`.
 * The caller uses `raw` at once and zeroes it.
 */
export function createWrappedKeySync(kek: KeyObject, aad: string): { raw: Buffer; wrapped: Uint8Array } {
  const raw = randomBytes(DATA_KEY_BYTES);
  return { raw, wrapped: sealSync(kek, raw, aad) };
}
