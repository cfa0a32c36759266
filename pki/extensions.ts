/**
 * Building and reading the X.509 v3 extensions Sigil uses (RFC 5280 §4.2), including the holder's
 * clearance as an X.501 Clearance attribute (RFC 5755 §4.4.6) inside subjectDirectoryAttributes
 * (RFC 5280 §4.2.1.8). Internal to pki/.
 */
import { isIPv4, isIPv6 } from 'node:net';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { CLASSIFICATION_VALUE, SIGIL_SECURITY_POLICY_OID, clearanceFromValue, type Clearance } from './clearance.js';
import { InvalidParameterError } from './errors.js';
import { toArrayBuffer } from './der.js';

export const OID = {
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  subjectDirectoryAttributes: '2.5.29.9',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  /** id-at-clearance, X.501 / RFC 5755 §4.4.6. */
  clearance: '2.5.4.55',
} as const;

/** RFC 5280 §4.2.1.3 KeyUsage bit positions. */
export const KEY_USAGE_BITS = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsage = (typeof KEY_USAGE_BITS)[number];

/**
 * Sigil's own key purpose for the appliance's audit-log checkpoint signatures. No IETF purpose fits:
 * id-kp-timeStamping (RFC 3161) promises a TSA, id-kp-codeSigning promises code. A UUID-derived OID
 * (ITU-T X.667 arc 2.25) needs no registration: uuid cab4862a-8b41-4e38-8ddb-db33e223a2dc.
 */
export const SIGIL_AUDIT_SIGNING_OID = '2.25.269441389796656356153910755580700762844';

/**
 * asn1js prints OID arcs above 2^53 (all of the 2.25 UUID arc) as `{hex}` rather than decimal, though
 * it encodes them correctly. Comparing an OID read from DER with a dotted constant therefore goes
 * through asn1js's own text form of the constant's encoding.
 */
export function asn1OidText(dotted: string): string {
  const der = new asn1js.ObjectIdentifier({ value: dotted }).toBER(false);
  return (asn1js.fromBER(der).result as asn1js.ObjectIdentifier).getValue();
}

/** Dotted decimal for an OID text from asn1js, mapping the known big-arc OIDs back to their decimal form. */
export function oidFromAsn1Text(text: string): string {
  return BIG_OIDS.get(text) ?? text;
}

/** RFC 5280 §4.2.1.12 key purposes by name. */
export const EKU_OIDS = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  sigilAuditSigning: SIGIL_AUDIT_SIGNING_OID,
} as const;
export type ExtendedKeyUsageName = keyof typeof EKU_OIDS;

const BIG_OIDS = new Map<string, string>(
  [SIGIL_AUDIT_SIGNING_OID, SIGIL_SECURITY_POLICY_OID].map((oid) => [asn1OidText(oid), oid]),
);

function ext(extnID: string, critical: boolean, value: asn1js.AsnType, parsedValue?: unknown): pkijs.Extension {
  return new pkijs.Extension({ extnID, critical, extnValue: value.toBER(false), parsedValue });
}

/** basicConstraints, critical (RFC 5280 §4.2.1.9). `cA` FALSE is encoded as an empty SEQUENCE (DER default). */
export function basicConstraintsExtension(isCA: boolean, pathLength?: number): pkijs.Extension {
  const bc = new pkijs.BasicConstraints(isCA ? { cA: true, ...(pathLength !== undefined ? { pathLenConstraint: pathLength } : {}) } : {});
  return ext(OID.basicConstraints, true, bc.toSchema(), bc);
}

/** keyUsage, critical (RFC 5280 §4.2.1.3); a DER named bit string with trailing zero bits removed. */
export function keyUsageExtension(usages: readonly KeyUsage[]): pkijs.Extension {
  const bits = usages.map((u) => KEY_USAGE_BITS.indexOf(u));
  const max = Math.max(...bits);
  const bytes = new Uint8Array((max >> 3) + 1);
  for (const b of bits) bytes[b >> 3] |= 0x80 >> (b & 7);
  const bitString = new asn1js.BitString({ valueHex: toArrayBuffer(bytes), unusedBits: 7 - (max & 7) });
  return ext(OID.keyUsage, true, bitString);
}

/** extendedKeyUsage, non-critical (RFC 5280 §4.2.1.12). */
export function extKeyUsageExtension(purposes: readonly ExtendedKeyUsageName[]): pkijs.Extension {
  const eku = new pkijs.ExtKeyUsage({ keyPurposes: purposes.map((p) => EKU_OIDS[p]) });
  return ext(OID.extKeyUsage, false, eku.toSchema(), eku);
}

/** subjectKeyIdentifier: RFC 7093 §2 method 1, the leftmost 160 bits of SHA-256 of the subjectPublicKey bits. */
export async function subjectKeyIdentifier(spki: pkijs.PublicKeyInfo): Promise<Uint8Array> {
  const digest = await crypto.subtle.digest('SHA-256', spki.subjectPublicKey.valueBlock.valueHexView);
  return new Uint8Array(digest).subarray(0, 20);
}

export function subjectKeyIdentifierExtension(keyId: Uint8Array): pkijs.Extension {
  return ext(OID.subjectKeyIdentifier, false, new asn1js.OctetString({ valueHex: toArrayBuffer(keyId) }));
}

/** authorityKeyIdentifier with keyIdentifier only (RFC 5280 §4.2.1.1). */
export function authorityKeyIdentifierExtension(keyId: Uint8Array): pkijs.Extension {
  const aki = new pkijs.AuthorityKeyIdentifier({ keyIdentifier: new asn1js.OctetString({ valueHex: toArrayBuffer(keyId) }) });
  return ext(OID.authorityKeyIdentifier, false, aki.toSchema(), aki);
}

/** IPv4/IPv6 text to the 4/16 octets of GeneralName iPAddress (RFC 5280 §4.2.1.6). */
export function ipToBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return new Uint8Array(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new InvalidParameterError('ipAddresses', `"${ip.slice(0, 60)}" is not an IPv4 or IPv6 address`);
  let text = ip.split('%')[0];
  let tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + '0:0';
  }
  const [head, rest] = text.split('::');
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

/** 4 or 16 octets back to text (IPv6 as eight uncompressed lowercase groups without leading zeros). */
export function bytesToIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < bytes.length; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
  return groups.join(':');
}

const DNS_NAME = /^(?=.{1,253}$)([a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)*$/;

/** subjectAltName with dNSName and iPAddress entries (RFC 5280 §4.2.1.6). */
export function subjectAltNameExtension(dnsNames: readonly string[], ipAddresses: readonly string[]): pkijs.Extension {
  const altNames: pkijs.GeneralName[] = [];
  for (const name of dnsNames) {
    if (!DNS_NAME.test(name)) throw new InvalidParameterError('dnsNames', `"${name.slice(0, 60)}" is not a DNS name`);
    altNames.push(new pkijs.GeneralName({ type: 2, value: name }));
  }
  for (const ip of ipAddresses) {
    altNames.push(new pkijs.GeneralName({ type: 7, value: new asn1js.OctetString({ valueHex: toArrayBuffer(ipToBytes(ip)) }) }));
  }
  if (altNames.length === 0) throw new InvalidParameterError('dnsNames', 'a TLS server certificate needs at least one DNS name or IP address');
  const san = new pkijs.AltName({ altNames });
  return ext(OID.subjectAltName, false, san.toSchema(), san);
}

/**
 * subjectDirectoryAttributes (RFC 5280 §4.2.1.8, non-critical) holding one Clearance attribute
 * (RFC 5755 §4.4.6): `SEQUENCE { policyId OID, classList BIT STRING }` where policyId is Sigil's
 * security policy and exactly the bit of the holder's level is set (bit numbers of RFC 2634 §5.4.3).
 */
export function clearanceExtension(level: Clearance): pkijs.Extension {
  const bit = CLASSIFICATION_VALUE[level];
  const classList = new asn1js.BitString({ valueHex: toArrayBuffer(new Uint8Array([0x80 >> bit])), unusedBits: 7 - bit });
  const clearance = new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: SIGIL_SECURITY_POLICY_OID }), classList],
  });
  const sda = new pkijs.SubjectDirectoryAttributes({
    attributes: [new pkijs.Attribute({ type: OID.clearance, values: [clearance] })],
  });
  return ext(OID.subjectDirectoryAttributes, false, sda.toSchema(), sda);
}

/** Bits set in a BIT STRING, as positions. */
export function bitsSet(bitString: asn1js.BitString): number[] {
  const bytes = bitString.valueBlock.valueHexView;
  const total = bytes.length * 8 - bitString.valueBlock.unusedBits;
  const out: number[] = [];
  for (let i = 0; i < total; i++) if (bytes[i >> 3] & (0x80 >> (i & 7))) out.push(i);
  return out;
}

/**
 * The clearance level in a subjectDirectoryAttributes value, if it carries a Clearance under Sigil's
 * policy. With several bits set the highest level wins (ClassList allows a set).
 */
export function readClearance(sda: pkijs.SubjectDirectoryAttributes): Clearance | undefined {
  for (const attr of sda.attributes) {
    if (attr.type !== OID.clearance) continue;
    for (const value of attr.values) {
      if (!(value instanceof asn1js.Sequence)) continue;
      const [policy, classList] = value.valueBlock.value;
      if (!(policy instanceof asn1js.ObjectIdentifier) || oidFromAsn1Text(policy.getValue()) !== SIGIL_SECURITY_POLICY_OID) continue;
      if (!(classList instanceof asn1js.BitString)) continue;
      const levels = bitsSet(classList)
        .map((b) => clearanceFromValue(b))
        .filter((c): c is Clearance => c !== undefined);
      if (levels.length > 0) return levels.sort((a, b) => CLASSIFICATION_VALUE[b] - CLASSIFICATION_VALUE[a])[0];
    }
  }
  return undefined;
}
