/**
 * Reading a CMS SignedData (RFC 5652 §5) for verification and inspection. Internal to pki/.
 *
 * Why node-forge's DER reader and not asn1js here: this runs once per received message, and on this
 * appliance asn1js 4 needs about 1 ms to decode one 900-byte SignedData (it tries to decode every
 * OCTET/BIT STRING as nested ASN.1), which alone would cap a core at ~1,000 verifications/s — below
 * raw ECDSA speed by a factor of ten. forge decodes the same bytes in ~10 µs. Signing still builds
 * with pkijs/asn1js (cms-sign.ts); the round-trip and openssl tests hold the two in agreement.
 */
import * as asn1js from 'asn1js';
import { asn1, type Asn1 } from './forge-asn1.js';
import { CMS_OID } from './cms-algorithms.js';

const { Class, Type } = asn1;
type Node = Asn1;

/** Why parsing stopped; `reason` is one of CmsVerifyResult's. */
export class CmsParseError extends Error {
  constructor(
    readonly reason: 'malformed' | 'unsupported-algorithm',
    message: string,
  ) {
    super(message);
  }
}

/** The one SignerInfo (RFC 5652 §5.3) of a Sigil signature. */
export interface ParsedSignerInfo {
  /** issuerAndSerialNumber: DER of the issuer Name and the serial as lowercase hex without leading zeros. */
  issuerDer?: Buffer;
  serialHex?: string;
  /** subjectKeyIdentifier as hex (version 3 SignerInfo). */
  skiHex?: string;
  digestOid: string;
  signatureOid: string;
  signature: Uint8Array;
  /** DER of the signed attributes as the SET OF (tag 0x31) that the signature covers (RFC 5652 §5.4). */
  signedAttrsDer?: Uint8Array;
  /** Signed attribute values by type, each with exactly one value (RFC 5652 §11). */
  attributes: Map<string, Node>;
}

export interface ParsedSignedData {
  eContentType: string;
  /** True when eContent is absent (a detached signature). */
  detached: boolean;
  /** DER of each certificate carried in `certificates` (other choices skipped). */
  readonly certificates: Buffer[];
  signer: ParsedSignerInfo;
}

function fail(detail: string): never {
  throw new CmsParseError('malformed', detail);
}

function expect(node: Node | undefined, tagClass: number, type: number, what: string): Node {
  if (!node || node.tagClass !== tagClass || node.type !== type) fail(`expected ${what}`);
  return node;
}

function children(node: Node, what: string): Node[] {
  if (!Array.isArray(node.value)) fail(`expected ${what} to be constructed`);
  return node.value;
}

function primitive(node: Node, what: string): string {
  if (typeof node.value !== 'string') fail(`expected ${what} to be primitive`);
  return node.value;
}

function oid(node: Node | undefined, what: string): string {
  const content = primitive(expect(node, Class.UNIVERSAL, Type.OID, what), what);
  try {
    return asn1.derToOid(content);
  } catch {
    // forge decodes arcs up to 53 bits; UUID OIDs (2.25.…) need asn1js. Rare, so off the hot path.
    const parsed = asn1js.fromBER(new Uint8Array(Buffer.from(asn1.toDer(node!).getBytes(), 'binary')));
    if (!(parsed.result instanceof asn1js.ObjectIdentifier) || parsed.result.error) fail(`expected ${what} to be a valid OID`);
    return parsed.result.valueBlock.toString();
  }
}

function der(node: Node): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary');
}

/** Decodes DER bytes into a forge tree; every decoding fault becomes `malformed`. */
export function decode(bytes: Uint8Array, what: string): Node {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) fail(`empty input: expected ${what}`);
  try {
    return asn1.fromDer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('binary'), {
      strict: true,
      parseAllBytes: true,
      decodeBitStrings: false,
    } as never);
  } catch (cause) {
    fail(`not DER: expected ${what} (${cause instanceof Error ? cause.message : 'decode error'})`);
  }
}

function parseSignerInfo(node: Node): ParsedSignerInfo {
  const parts = children(expect(node, Class.UNIVERSAL, Type.SEQUENCE, 'SignerInfo SEQUENCE'), 'SignerInfo');
  let i = 1; // [0] is version: 1 with issuerAndSerialNumber, 3 with subjectKeyIdentifier
  const out: Partial<ParsedSignerInfo> & { attributes: Map<string, Node> } = { attributes: new Map() };
  const sid = parts[i++];
  if (sid?.tagClass === Class.UNIVERSAL && sid.type === Type.SEQUENCE) {
    const [issuer, serial] = children(sid, 'issuerAndSerialNumber');
    out.issuerDer = der(expect(issuer, Class.UNIVERSAL, Type.SEQUENCE, 'issuer Name'));
    const serialBytes = Buffer.from(primitive(expect(serial, Class.UNIVERSAL, Type.INTEGER, 'serial number'), 'serial number'), 'binary');
    let z = 0;
    while (z < serialBytes.length - 1 && serialBytes[z] === 0) z++;
    out.serialHex = serialBytes.subarray(z).toString('hex');
  } else if (sid?.tagClass === Class.CONTEXT_SPECIFIC && sid.type === 0) {
    out.skiHex = Buffer.from(primitive(sid, 'subjectKeyIdentifier'), 'binary').toString('hex');
  } else {
    fail('expected a SignerIdentifier');
  }
  out.digestOid = oid(children(expect(parts[i++], Class.UNIVERSAL, Type.SEQUENCE, 'digestAlgorithm'), 'digestAlgorithm')[0], 'digest algorithm OID');
  if (parts[i]?.tagClass === Class.CONTEXT_SPECIFIC && parts[i].type === 0) {
    const attrs = parts[i++];
    // The signature covers the attributes re-tagged as SET OF (RFC 5652 §5.4). forge re-encodes
    // from the decoded tree, which reproduces DER input exactly; RFC 5652 requires DER here.
    const set = asn1.create(Class.UNIVERSAL, Type.SET, true, children(attrs, 'signedAttrs'));
    out.signedAttrsDer = der(set);
    for (const attr of children(attrs, 'signedAttrs')) {
      const [type, values] = children(expect(attr, Class.UNIVERSAL, Type.SEQUENCE, 'Attribute'), 'Attribute');
      const typeOid = oid(type, 'attribute type');
      const vals = children(expect(values, Class.UNIVERSAL, Type.SET, 'attribute values SET'), 'attribute values');
      if (out.attributes.has(typeOid)) fail(`signed attribute ${typeOid} appears twice`);
      if (vals.length !== 1) fail(`signed attribute ${typeOid} has ${vals.length} values, expected 1`);
      out.attributes.set(typeOid, vals[0]);
    }
  }
  out.signatureOid = oid(children(expect(parts[i++], Class.UNIVERSAL, Type.SEQUENCE, 'signatureAlgorithm'), 'signatureAlgorithm')[0], 'signature algorithm OID');
  out.signature = Buffer.from(primitive(expect(parts[i++], Class.UNIVERSAL, Type.OCTETSTRING, 'signature OCTET STRING'), 'signature'), 'binary');
  return out as ParsedSignerInfo;
}

/**
 * Parses `ContentInfo { id-signedData, SignedData }` down to what verification needs.
 * Requires exactly one SignerInfo: Sigil messages have one signer, and a second signer that the
 * verifier silently ignored would be a forgery channel.
 * @throws CmsParseError
 */
export function parseSignedData(bytes: Uint8Array): ParsedSignedData {
  const ci = children(expect(decode(bytes, 'a CMS ContentInfo'), Class.UNIVERSAL, Type.SEQUENCE, 'ContentInfo SEQUENCE'), 'ContentInfo');
  const contentType = oid(ci[0], 'content type');
  if (contentType !== CMS_OID.signedData) fail(`content type ${contentType} is not SignedData (${CMS_OID.signedData})`);
  const explicit = expect(ci[1], Class.CONTEXT_SPECIFIC, 0, 'SignedData in [0]');
  const sd = children(expect(children(explicit, 'content')[0], Class.UNIVERSAL, Type.SEQUENCE, 'SignedData SEQUENCE'), 'SignedData');
  expect(sd[0], Class.UNIVERSAL, Type.INTEGER, 'SignedData version');
  expect(sd[1], Class.UNIVERSAL, Type.SET, 'digestAlgorithms SET');
  const encap = children(expect(sd[2], Class.UNIVERSAL, Type.SEQUENCE, 'EncapsulatedContentInfo'), 'EncapsulatedContentInfo');
  const eContentType = oid(encap[0], 'eContentType');
  let i = 3;
  const certificateNodes: Node[] = [];
  if (sd[i]?.tagClass === Class.CONTEXT_SPECIFIC && sd[i].type === 0) {
    for (const c of children(sd[i++], 'certificates')) {
      if (c.tagClass === Class.UNIVERSAL && c.type === Type.SEQUENCE) certificateNodes.push(c);
    }
  }
  if (sd[i]?.tagClass === Class.CONTEXT_SPECIFIC && sd[i].type === 1) i++; // crls: not used
  const signerInfos = children(expect(sd[i++], Class.UNIVERSAL, Type.SET, 'signerInfos SET'), 'signerInfos');
  if (i !== sd.length) fail('unexpected data after signerInfos');
  if (signerInfos.length !== 1) fail(`expected exactly one SignerInfo, found ${signerInfos.length}`);
  const signer = parseSignerInfo(signerInfos[0]);
  return new SignedDataReading(eContentType, encap.length < 2, signer, certificateNodes);
}

/**
 * A {@link ParsedSignedData}, as a class and not an object literal with a getter. Why: each
 * literal's getter is a fresh closure, so V8 made each result a hidden class of its own, held
 * from old space; that kept every parse's tree and bytes alive through the next scavenge. 40 % of
 * what a parse allocated was copied and promoted, and the message check workers spent about as
 * much time in GC as in parsing (bench/experiments/gc-survival.ts: 41.7 % → 0.2 % survival).
 */
class SignedDataReading implements ParsedSignedData {
  readonly #certificateNodes: Node[];
  #certificates: Buffer[] | undefined;

  constructor(
    readonly eContentType: string,
    readonly detached: boolean,
    readonly signer: ParsedSignerInfo,
    certificateNodes: Node[],
  ) {
    this.#certificateNodes = certificateNodes;
  }

  /** Re-encoded on first use only: a verifier that knows the signer never looks at them. */
  get certificates(): Buffer[] {
    return (this.#certificates ??= this.#certificateNodes.map(der));
  }
}

/** An OCTET STRING value as bytes. @throws CmsParseError */
export function octets(node: Node, what: string): Buffer {
  return Buffer.from(primitive(expect(node, Class.UNIVERSAL, Type.OCTETSTRING, what), what), 'binary');
}

/** An OBJECT IDENTIFIER value. @throws CmsParseError */
export function objectIdentifier(node: Node, what: string): string {
  return oid(node, what);
}

/** A `Time` (RFC 5652 §11.3: UTCTime or GeneralizedTime). @throws CmsParseError */
export function time(node: Node, what: string): Date {
  let date: Date | undefined;
  try {
    if (node.tagClass === Class.UNIVERSAL && node.type === Type.UTCTIME) date = asn1.utcTimeToDate(primitive(node, what));
    else if (node.tagClass === Class.UNIVERSAL && node.type === Type.GENERALIZEDTIME) date = asn1.generalizedTimeToDate(primitive(node, what));
  } catch {
    date = undefined;
  }
  if (!date || Number.isNaN(date.getTime())) fail(`expected ${what} as UTCTime or GeneralizedTime`);
  return date;
}
