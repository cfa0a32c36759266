/**
 * Object identifiers and algorithm tables for CMS SignedData (RFC 5652), and the conversion between
 * the DER `ECDSA-Sig-Value` of CMS and X.509 (RFC 5753 §2.1.1, RFC 3279 §2.2.3) and the fixed-width
 * IEEE P1363 `r || s` that WebCrypto speaks. Internal to pki/.
 */
import * as asn1js from 'asn1js';
import { asn1, type Asn1 } from './forge-asn1.js';
import * as pkijs from 'pkijs';

/** RFC 5652 §4, §5.1, §11 and RFC 2634 §5.4 identifiers. */
export const CMS_OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  securityLabel: '1.2.840.113549.1.9.16.2.2',
} as const;

export type HashName = 'SHA-256' | 'SHA-384' | 'SHA-512';
export type SignatureKind = 'ECDSA' | 'RSASSA-PKCS1-v1_5';

/** RFC 5754 §2 digest algorithm identifiers. */
const DIGEST_OIDS: Readonly<Record<string, HashName>> = {
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
};

/** A signature algorithm identifier understood by the verifier. */
export interface SignatureAlgorithm {
  kind: SignatureKind;
  /** Hash bound to the identifier; absent for rsaEncryption, whose hash is the digestAlgorithm's (RFC 3370 §3.2). */
  hash?: HashName;
}

/** RFC 5754 §3 (ECDSA, RSA) signature algorithm identifiers. */
const SIGNATURE_OIDS: Readonly<Record<string, SignatureAlgorithm>> = {
  '1.2.840.10045.4.3.2': { kind: 'ECDSA', hash: 'SHA-256' },
  '1.2.840.10045.4.3.3': { kind: 'ECDSA', hash: 'SHA-384' },
  '1.2.840.10045.4.3.4': { kind: 'ECDSA', hash: 'SHA-512' },
  '1.2.840.113549.1.1.1': { kind: 'RSASSA-PKCS1-v1_5' },
  '1.2.840.113549.1.1.11': { kind: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  '1.2.840.113549.1.1.12': { kind: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
  '1.2.840.113549.1.1.13': { kind: 'RSASSA-PKCS1-v1_5', hash: 'SHA-512' },
};

export function hashOfDigestOid(oid: string): HashName | undefined {
  return Object.prototype.hasOwnProperty.call(DIGEST_OIDS, oid) ? DIGEST_OIDS[oid] : undefined;
}

export function digestOidOf(hash: HashName): string {
  const oid = Object.keys(DIGEST_OIDS).find((k) => DIGEST_OIDS[k] === hash);
  if (!oid) throw new Error(`no digest OID for ${hash}`);
  return oid;
}

export function signatureAlgorithmOfOid(oid: string): SignatureAlgorithm | undefined {
  return Object.prototype.hasOwnProperty.call(SIGNATURE_OIDS, oid) ? SIGNATURE_OIDS[oid] : undefined;
}

/**
 * The signature algorithm identifier Sigil emits: ecdsa-with-SHAxxx (parameters absent, RFC 5758 §3.2)
 * or rsaEncryption with NULL parameters, which RFC 3370 §3.2 obliges every receiver to accept and
 * which `openssl cms -sign` itself writes.
 */
export function signatureAlgorithmIdentifier(kind: SignatureKind, hash: HashName): pkijs.AlgorithmIdentifier {
  if (kind === 'RSASSA-PKCS1-v1_5') {
    return new pkijs.AlgorithmIdentifier({ algorithmId: '1.2.840.113549.1.1.1', algorithmParams: new asn1js.Null() });
  }
  const oid = Object.keys(SIGNATURE_OIDS).find((k) => SIGNATURE_OIDS[k].kind === kind && SIGNATURE_OIDS[k].hash === hash);
  if (!oid) throw new Error(`no signature OID for ${kind} with ${hash}`);
  return new pkijs.AlgorithmIdentifier({ algorithmId: oid });
}

/** Byte length of one coordinate (and of r, s) for a WebCrypto named curve. */
export function ecCoordinateSize(namedCurve: string): number | undefined {
  switch (namedCurve) {
    case 'P-256':
      return 32;
    case 'P-384':
      return 48;
    case 'P-521':
      return 66;
    default:
      return undefined;
  }
}

/**
 * `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER }` (DER) → `r || s`, each left-padded with zeros
 * to `size` bytes. DER integers drop leading zero bytes and add one before a high bit, so r and s come
 * in anywhere from 1 to size+1 bytes; both cases are normalised here. Undefined when the bytes are not
 * two non-negative integers that fit the curve.
 */
export function ecdsaDerToP1363(der: Uint8Array, size: number): Uint8Array | undefined {
  let seq: Asn1;
  try {
    seq = asn1.fromDer(Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('binary'), {
      strict: true,
      parseAllBytes: true,
      decodeBitStrings: false,
    } as never);
  } catch {
    return undefined;
  }
  const parts = seq.value;
  if (seq.tagClass !== asn1.Class.UNIVERSAL || seq.type !== asn1.Type.SEQUENCE || !Array.isArray(parts) || parts.length !== 2) return undefined;
  const out = new Uint8Array(size * 2);
  for (let i = 0; i < 2; i++) {
    const n = parts[i];
    if (n.tagClass !== asn1.Class.UNIVERSAL || n.type !== asn1.Type.INTEGER || typeof n.value !== 'string' || n.value.length === 0) return undefined;
    const bytes = Buffer.from(n.value, 'binary');
    if (bytes[0] & 0x80) return undefined; // negative: never a valid r or s
    let start = 0;
    while (start < bytes.length && bytes[start] === 0) start++;
    const magnitude = bytes.subarray(start);
    if (magnitude.length > size) return undefined;
    out.set(magnitude, size * (i + 1) - magnitude.length);
  }
  return out;
}
