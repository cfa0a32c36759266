/**
 * X.501 distinguished names (RFC 5280 §4.1.2.4) to and from Sigil's `DistinguishedName`.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { InvalidParameterError } from './errors.js';

/** The subject or issuer name of a certificate, CSR or CRL, as Sigil uses it. */
export interface DistinguishedName {
  commonName?: string;
  /** userid / UID, 0.9.2342.19200300.100.1.1 (RFC 4519 §2.39): the staff login. */
  login?: string;
  organization?: string;
  organizationalUnit?: string;
  country?: string;
  emailAddress?: string;
}

type NameKey = keyof DistinguishedName;

/** Attribute OIDs, in the order they are written (most significant first, as X.500 does). */
const ATTRIBUTES: ReadonlyArray<{ key: NameKey; oid: string; short: string }> = [
  { key: 'country', oid: '2.5.4.6', short: 'C' },
  { key: 'organization', oid: '2.5.4.10', short: 'O' },
  { key: 'organizationalUnit', oid: '2.5.4.11', short: 'OU' },
  { key: 'login', oid: '0.9.2342.19200300.100.1.1', short: 'UID' },
  { key: 'commonName', oid: '2.5.4.3', short: 'CN' },
  { key: 'emailAddress', oid: '1.2.840.113549.1.9.1', short: 'emailAddress' },
];

/** Upper bounds of RFC 5280 Appendix A.1 (ub-common-name 64, …). */
const MAX_LENGTH: Readonly<Record<NameKey, number>> = {
  country: 2,
  organization: 64,
  organizationalUnit: 64,
  login: 256,
  commonName: 64,
  emailAddress: 255,
};

/** Builds a pkijs name. Country is a PrintableString and email an IA5String as RFC 5280 requires. */
export function buildName(dn: DistinguishedName): pkijs.RelativeDistinguishedNames {
  const typesAndValues: pkijs.AttributeTypeAndValue[] = [];
  for (const { key, oid } of ATTRIBUTES) {
    const value = dn[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH[key]) {
      throw new InvalidParameterError(key, `expected 1..${MAX_LENGTH[key]} characters, got ${typeof value === 'string' ? value.length : typeof value}`);
    }
    let asn: asn1js.BaseStringBlock;
    if (key === 'country') asn = new asn1js.PrintableString({ value });
    else if (key === 'emailAddress') asn = new asn1js.IA5String({ value });
    else asn = new asn1js.Utf8String({ value });
    typesAndValues.push(new pkijs.AttributeTypeAndValue({ type: oid, value: asn }));
  }
  if (typesAndValues.length === 0) throw new InvalidParameterError('subject', 'a name needs at least one attribute');
  // One attribute per RDN (pkijs's own toSchema would put them all in one multi-valued RDN).
  const schema = new asn1js.Sequence({
    value: typesAndValues.map((tv) => new asn1js.Set({ value: [tv.toSchema()] })),
  });
  return new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(schema.toBER(false)).result });
}

/** Reads the attributes Sigil knows from a pkijs name; others are ignored here (kept in the DER). */
export function parseName(name: pkijs.RelativeDistinguishedNames): DistinguishedName {
  const dn: DistinguishedName = {};
  for (const tv of name.typesAndValues) {
    const attr = ATTRIBUTES.find((a) => a.oid === tv.type);
    const v = (tv.value as { valueBlock?: { value?: unknown } }).valueBlock?.value;
    if (attr && typeof v === 'string' && dn[attr.key] === undefined) dn[attr.key] = v;
  }
  return dn;
}

function escape4514(value: string): string {
  return value
    .replace(/([\\,+"<>;=])/g, '\\$1')
    .replace(/^([ #])/, '\\$1')
    .replace(/ $/, '\\ ');
}

/** RFC 4514-style string, least significant first: `CN=Ann Lee,UID=alee,OU=Signals,O=MoD`. */
export function nameToString(name: pkijs.RelativeDistinguishedNames): string {
  return name.typesAndValues
    .map((tv) => {
      const attr = ATTRIBUTES.find((a) => a.oid === tv.type);
      const v = (tv.value as { valueBlock?: { value?: unknown } }).valueBlock?.value;
      return `${attr ? attr.short : tv.type}=${escape4514(typeof v === 'string' ? v : '#')}`;
    })
    .reverse()
    .join(',');
}

/** Byte equality of two encoded names (RFC 5280 §7.1 allows binary comparison for names we issue). */
export function sameName(a: pkijs.RelativeDistinguishedNames, b: pkijs.RelativeDistinguishedNames): boolean {
  return Buffer.from(a.toSchema().toBER()).equals(Buffer.from(b.toSchema().toBER()));
}
