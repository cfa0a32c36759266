/**
 * How a message is laid out inside its sealed blob, and the AAD that binds the blob to its id.
 * Its own module without imports, because the check workers (check-worker.ts) seal messages too.
 */

/** AAD binding a sealed message to its id, so blobs cannot be swapped between rows. */
export function messageAad(id: string): string {
  return `sigil-msg:${id}`;
}

/**
 * Frames header, signature and body into one plaintext (`u32 len ‖ header ‖ u32 len ‖ signature
 * ‖ body`, big-endian), so a message costs one AES-GCM operation instead of three: WebCrypto's
 * per-call overhead, not the cipher, dominates for small messages.
 */
export function packMessage(header: Uint8Array, signature: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + header.length + signature.length + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, header.length);
  out.set(header, 4);
  dv.setUint32(4 + header.length, signature.length);
  out.set(signature, 8 + header.length);
  out.set(body, 8 + header.length + signature.length);
  return out;
}

/** Inverse of {@link packMessage}. @throws RangeError on a malformed frame (only after tampering, which GCM already refuses). */
export function unpackMessage(bytes: Uint8Array): { header: Uint8Array; signature: Uint8Array; body: Uint8Array } {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hl = dv.getUint32(0);
  const sl = dv.getUint32(4 + hl);
  if (8 + hl + sl > bytes.length) throw new RangeError('sealed message frame is malformed');
  return {
    header: bytes.subarray(4, 4 + hl),
    signature: bytes.subarray(8 + hl, 8 + hl + sl),
    body: bytes.subarray(8 + hl + sl),
  };
}
