/**
 * The ESS security label (RFC 2634 §5.4) that carries a message's classification inside its CMS
 * signature, so the label is covered by the sender's signature and cannot be changed in transit.
 *
 * ```asn
 * ESSSecurityLabel ::= SET {
 *   security-policy-identifier SecurityPolicyIdentifier,      -- OBJECT IDENTIFIER
 *   security-classification    SecurityClassification OPTIONAL, -- INTEGER
 *   privacy-mark               ESSPrivacyMark OPTIONAL,
 *   security-categories        SecurityCategories OPTIONAL }
 * ```
 * Sigil writes the policy {@link SIGIL_SECURITY_POLICY_OID} and the classification of
 * {@link CLASSIFICATION_VALUE}; it reads any order (BER) but refuses what it cannot enforce.
 */
import * as asn1js from 'asn1js';
import { asn1, type Asn1 } from './forge-asn1.js';
import { CLASSIFICATION_VALUE, SIGIL_SECURITY_POLICY_OID, clearanceFromValue, isClearance, type Clearance } from './clearance.js';

/** id-aa-securityLabel, the signed attribute type of an ESS security label (RFC 2634 §5.4). */
export const ID_AA_SECURITY_LABEL = '1.2.840.113549.1.9.16.2.2';

/**
 * The `ESSSecurityLabel` value for `label`. A SET (not SET OF), so DER orders its members by tag
 * (X.690 §10.3): the INTEGER classification (tag 2) comes before the policy OID (tag 6).
 * @throws TypeError when `label` is not a Sigil clearance level (callers validate first).
 */
export function securityLabelValue(label: Clearance): asn1js.Set {
  if (!isClearance(label)) throw new TypeError(`not a clearance level: ${String(label)}`);
  return new asn1js.Set({
    value: [
      new asn1js.Integer({ value: CLASSIFICATION_VALUE[label] }),
      new asn1js.ObjectIdentifier({ value: SIGIL_SECURITY_POLICY_OID }),
    ],
  });
}

/** The label read from a signature, or why it cannot be used. */
export type SecurityLabelReading =
  | { ok: true; label: Clearance }
  | { ok: false; reason: 'malformed' | 'label-unknown'; detail: string };

const { Class, Type } = asn1;

/**
 * The policy OID's content octets. Its UUID arc is 128 bits, beyond node-forge's 53-bit OID decoder,
 * so the label's policy is compared by encoding (DER OIDs have one encoding) and only decoded with
 * asn1js, off the hot path, to name a foreign policy in an error.
 */
const SIGIL_POLICY_CONTENT = Buffer.from(new asn1js.ObjectIdentifier({ value: SIGIL_SECURITY_POLICY_OID }).valueBlock.toBER(false)).toString('binary');

function describeOid(content: string): string {
  const tlv = asn1.toDer(asn1.create(Class.UNIVERSAL, Type.OID, false, content)).getBytes();
  const parsed = asn1js.fromBER(new Uint8Array(Buffer.from(tlv, 'binary')));
  return parsed.result instanceof asn1js.ObjectIdentifier ? parsed.result.valueBlock.toString() : 'an undecodable OID';
}

/**
 * Reads an `ESSSecurityLabel` value (as decoded by node-forge on the verify path). A label of another
 * policy, without a classification, with security categories (which Sigil could not enforce), or with
 * a classification Sigil does not use (1, unclassified) is `label-unknown`: a reader must not guess.
 */
export function readSecurityLabel(value: Asn1): SecurityLabelReading {
  if (value.tagClass !== Class.UNIVERSAL || value.type !== Type.SET || !Array.isArray(value.value)) {
    return { ok: false, reason: 'malformed', detail: 'ESS security label is not a SET' };
  }
  let policy: string | undefined; // content octets of the policy OID
  let classification: number | undefined;
  for (const member of value.value) {
    if (member.tagClass === Class.UNIVERSAL && member.type === Type.OID && typeof member.value === 'string' && policy === undefined) {
      policy = member.value;
    } else if (member.tagClass === Class.UNIVERSAL && member.type === Type.INTEGER && typeof member.value === 'string' && classification === undefined) {
      // ub-integer-options is 256 (RFC 2634 §5.4.3): anything longer than two bytes is out of range.
      if (member.value.length === 0 || member.value.length > 2) return { ok: false, reason: 'label-unknown', detail: 'security classification out of range' };
      classification = asn1.derToInteger(member.value);
    } else if (member.tagClass === Class.UNIVERSAL && (member.type === Type.PRINTABLESTRING || member.type === Type.UTF8)) {
      // privacy-mark: display text only, nothing to enforce.
    } else if (member.tagClass === Class.UNIVERSAL && member.type === Type.SET) {
      return { ok: false, reason: 'label-unknown', detail: 'security label has security categories, which Sigil cannot enforce' };
    } else {
      return { ok: false, reason: 'malformed', detail: 'unexpected member in ESS security label' };
    }
  }
  if (policy === undefined) return { ok: false, reason: 'malformed', detail: 'ESS security label has no security policy identifier' };
  if (policy !== SIGIL_POLICY_CONTENT) {
    return { ok: false, reason: 'label-unknown', detail: `security policy ${describeOid(policy)} is not Sigil's (${SIGIL_SECURITY_POLICY_OID})` };
  }
  if (classification === undefined) return { ok: false, reason: 'label-unknown', detail: 'security label has no classification' };
  const label = clearanceFromValue(classification);
  if (!label) return { ok: false, reason: 'label-unknown', detail: `security classification ${classification} is not a Sigil level` };
  return { ok: true, label };
}
