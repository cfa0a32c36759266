/**
 * Encoding helpers for signing CMS SignedData (pki/cms-sign.ts): DER ordering, signing time, and
 * blocks encoded once and reused so asn1js does not re-encode constant parts for every message.
 * Internal to pki/.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Certificate } from './certificate.js';
import { InvalidParameterError } from './errors.js';

/** RFC 5652 §11.3: UTCTime for 1950–2049, GeneralizedTime otherwise; whole seconds either way. */
export function signingTimeValue(at: Date): asn1js.UTCTime | asn1js.GeneralizedTime {
  const valueDate = new Date(Math.floor(at.getTime() / 1000) * 1000);
  const year = valueDate.getUTCFullYear();
  return year >= 1950 && year < 2050 ? new asn1js.UTCTime({ valueDate }) : new asn1js.GeneralizedTime({ valueDate });
}

/** X.690 §11.6: a SET OF is ordered by the encodings of its elements. */
export function derSorted<T>(items: T[], encode: (item: T) => Uint8Array): T[] {
  return items
    .map((item) => ({ item, der: Buffer.from(encode(item)) }))
    .sort((x, y) => Buffer.compare(x.der, y.der))
    .map((x) => x.item);
}

/**
 * Per certificate, its asn1js tree and its IssuerAndSerialNumber (RFC 5652 §10.2.4), built once:
 * re-encoding a certificate through pkijs (which re-parses the TBS every time) cost more than the
 * ECDSA signature itself. The tree is checked to re-encode to the exact DER, so what is embedded is
 * the certificate as issued.
 */
const signingParts = new WeakMap<Certificate, { block: asn1js.AsnType; sid: asn1js.AsnType }>();

export function partsOf(cert: Certificate, field: string): { block: asn1js.AsnType; sid: asn1js.AsnType } {
  let parts = signingParts.get(cert);
  if (!parts) {
    // The certificate's own content octets under a SEQUENCE tag: asn1js writes the tag and length and
    // copies the content verbatim, instead of re-encoding hundreds of nodes for every message.
    const parsed = asn1js.fromBER(cert.der.slice()).result;
    const block = new asn1js.Primitive({ idBlock: { tagClass: 1, tagNumber: 16 }, valueHex: parsed.valueBlock.valueBeforeDecodeView.slice() });
    block.idBlock.isConstructed = true;
    if (!Buffer.from(block.toBER(false)).equals(Buffer.from(cert.der))) {
      throw new InvalidParameterError(field, `certificate ${cert.subjectString} is not DER-encoded and cannot be embedded faithfully`);
    }
    const sid = preEncoded(new pkijs.IssuerAndSerialNumber({ issuer: cert.asn.issuer, serialNumber: cert.asn.serialNumber }).toSchema());
    parts = { block, sid };
    signingParts.set(cert, parts);
  }
  return parts;
}

/**
 * `block` encoded once and frozen: asn1js writes the tag and length and copies the content octets,
 * so constant parts (OIDs, algorithm identifiers, the label of each level) are not re-encoded for
 * every message. asn1js's OID encoder alone was a third of the signing time.
 */
export function preEncoded(block: asn1js.AsnType): asn1js.AsnType {
  const der = new Uint8Array(block.toBER(false));
  const parsed = asn1js.fromBER(der).result;
  const header = parsed.idBlock.blockLength + parsed.lenBlock.blockLength;
  const frozen = new asn1js.Primitive({
    idBlock: { tagClass: parsed.idBlock.tagClass, tagNumber: parsed.idBlock.tagNumber },
    valueHex: der.slice(header),
  });
  frozen.idBlock.isConstructed = parsed.idBlock.isConstructed;
  if (!Buffer.from(frozen.toBER(false)).equals(Buffer.from(der))) throw new Error('internal: pre-encoded block differs');
  return frozen;
}

const constants = new Map<string, asn1js.AsnType>();
export function constant(key: string, build: () => asn1js.AsnType): asn1js.AsnType {
  let block = constants.get(key);
  if (!block) constants.set(key, (block = preEncoded(build())));
  return block;
}

/** `Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }` (RFC 5652 §5.3). */
export function attribute(type: string, value: asn1js.AsnType): asn1js.Sequence {
  const oid = constant(`oid:${type}`, () => new asn1js.ObjectIdentifier({ value: type }));
  return new asn1js.Sequence({ value: [oid, new asn1js.Set({ value: [value] })] });
}

export function contextTag(tagNumber: number, value: asn1js.AsnType[]): asn1js.Constructed {
  return new asn1js.Constructed({ idBlock: { tagClass: 3, tagNumber }, value });
}

