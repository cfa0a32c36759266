/**
 * PEM ⇄ DER (RFC 7468). Strict on labels so a key is never mistaken for a certificate.
 */
import { MalformedInputError } from './errors.js';

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Every PEM block in `text`, in order. Text between blocks (openssl's "Bag Attributes", …) is ignored. */
export function splitPemBlocks(text: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = m[2].replace(/\s+/g, '');
    if (body.length === 0 || !BASE64.test(body)) {
      throw new MalformedInputError(`PEM block "${m[1]}" does not contain valid base64`);
    }
    blocks.push({ label: m[1], der: new Uint8Array(Buffer.from(body, 'base64')) });
  }
  return blocks;
}

/**
 * The DER of the first PEM block labelled `label`.
 * @throws MalformedInputError when there is no such block.
 */
export function pemToDer(pem: string, label: string): Uint8Array {
  if (typeof pem !== 'string') throw new MalformedInputError(`expected a PEM string with a ${label} block`);
  const block = splitPemBlocks(pem).find((b) => b.label === label);
  if (!block) throw new MalformedInputError(`expected a PEM block "${label}", found none`);
  return block.der;
}

/** PEM text for `der`, wrapped at 64 columns, ending with a newline. */
export function derToPem(der: Uint8Array | ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Accepts PEM (with `label`) or DER bytes; returns DER. */
export function toDer(input: string | Uint8Array | ArrayBuffer, label: string): Uint8Array {
  if (typeof input === 'string') return pemToDer(input, label);
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  throw new MalformedInputError(`expected PEM text or DER bytes for ${label}`);
}
