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
export function sealSync(
  key: KeyObject | Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array | string,
  iv: Uint8Array = randomBytes(IV_BYTES),
): Uint8Array {
  if (iv.length !== IV_BYTES) throw new RangeError(`an IV has ${IV_BYTES} bytes`);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(fullAad(aad));
  const parts = [Buffer.of(SEAL_VERSION), iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()];
  return Buffer.concat(parts);
}

/** Fresh random bytes one message's seal takes: its data key, the wrap's IV and the seal's IV. */
export const FRESH_BYTES_PER_MESSAGE = DATA_KEY_BYTES + 2 * IV_BYTES;

/**
 * {@link createWrappedKey} on this thread: a fresh data key and its wrapped form under `kek`.
 * The caller uses `raw` at once and zeroes it. `fresh` (optional) supplies the key and the wrap's
 * IV (DATA_KEY_BYTES + IV_BYTES from the CSPRNG): the check worker draws a whole batch's at once,
 * because each separate draw costs ~2 µs of OpenSSL's DRBG, more under two threads' contention.
 */
export function createWrappedKeySync(kek: KeyObject, aad: string, fresh?: Uint8Array): { raw: Buffer; wrapped: Uint8Array } {
  if (fresh && fresh.length !== DATA_KEY_BYTES + IV_BYTES) throw new RangeError(`fresh bytes for a wrapped key are ${DATA_KEY_BYTES + IV_BYTES}`);
  const raw = fresh ? Buffer.from(fresh.buffer, fresh.byteOffset, DATA_KEY_BYTES) : randomBytes(DATA_KEY_BYTES);
  return { raw, wrapped: sealSync(kek, raw, aad, fresh?.subarray(DATA_KEY_BYTES)) };
}
