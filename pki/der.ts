/**
 * Small internal helpers around asn1js: strict DER decoding into pkijs objects, byte conversions and
 * times. Internal to pki/ (not exported from index.ts).
 */
import * as asn1js from 'asn1js';
import { MalformedInputError } from './errors.js';

/** A copy of `bytes` as a standalone ArrayBuffer (pkijs and WebCrypto want ArrayBuffers). */
export function toArrayBuffer(bytes: Uint8Array | ArrayBuffer): ArrayBuffer {
  if (bytes instanceof ArrayBuffer) return bytes;
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}

export function toHex(bytes: Uint8Array | ArrayBuffer): string {
  return Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString('hex');
}

/**
 * Decodes `der` as exactly one ASN.1 value and hands it to `build` (a pkijs constructor call).
 * Trailing bytes, truncation and schema mismatches all become MalformedInputError naming `what`.
 */
export function decodeDer<T>(der: Uint8Array, what: string, build: (schema: asn1js.AsnType) => T): T {
  if (!(der instanceof Uint8Array) || der.length === 0) throw new MalformedInputError(`empty input: expected a DER ${what}`);
  const parsed = asn1js.fromBER(toArrayBuffer(der));
  if (parsed.offset === -1 || parsed.result.error) {
    throw new MalformedInputError(`not DER: expected a ${what} (${parsed.result.error || 'decode error'})`);
  }
  if (parsed.offset !== der.length) {
    throw new MalformedInputError(`expected a ${what} of ${parsed.offset} bytes, found ${der.length - parsed.offset} trailing bytes`);
  }
  try {
    return build(parsed.result);
  } catch (cause) {
    throw new MalformedInputError(`DER does not match the ${what} structure`, { cause });
  }
}

/** `date` truncated to whole seconds: RFC 5280 §4.1.2.5 forbids fractional seconds. */
export function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** Integer bytes (big-endian, two's complement) as lowercase hex without leading zero bytes. */
export function integerHex(value: asn1js.Integer): string {
  let bytes = value.valueBlock.valueHexView;
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  bytes = bytes.subarray(i);
  return toHex(bytes);
}

/** Normalises a serial number given by a caller: lowercase, no separators, no leading "00" pairs. */
export function normaliseSerial(serial: string): string {
  let s = serial.toLowerCase().replace(/[:\s]/g, '');
  if (s.length % 2 === 1) s = `0${s}`;
  while (s.startsWith('00') && s.length > 2) s = s.slice(2);
  return s;
}

/** pkijs writes encrypted content as a constructed (BER) OCTET STRING; DER wants it primitive. */
export function primitiveOctetString(value: asn1js.OctetString): asn1js.OctetString {
  if (!value.idBlock.isConstructed) return value;
  const parts = (value.valueBlock.value as asn1js.OctetString[]).map((p) => primitiveOctetString(p).valueBlock.valueHexView);
  return new asn1js.OctetString({ valueHex: toArrayBuffer(Buffer.concat(parts)) });
}
