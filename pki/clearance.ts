/**
 * Classification levels shared by certificates (the holder's clearance) and signatures (the
 * message's ESS security label), and the security policy they belong to.
 *
 * Values follow the ESS `SecurityClassification` of RFC 2634 §5.4.3 (unmarked 0, unclassified 1,
 * restricted 2, confidential 3, secret 4, top-secret 5) and the `ClassList` bit positions of the
 * X.501 Clearance attribute (RFC 5755 §4.4.6), so one number means one level everywhere.
 * Sigil does not use "unclassified": the mission's scale is unmarked → top secret.
 */

/** Levels in ascending order. */
export const CLEARANCES = ['unmarked', 'restricted', 'confidential', 'secret', 'top-secret'] as const;
export type Clearance = (typeof CLEARANCES)[number];

/** RFC 2634 §5.4.3 SecurityClassification integer of each level (also the RFC 5755 ClassList bit). */
export const CLASSIFICATION_VALUE: Readonly<Record<Clearance, number>> = {
  unmarked: 0,
  restricted: 2,
  confidential: 3,
  secret: 4,
  'top-secret': 5,
};

/**
 * Sigil's security policy identifier, carried in every ESS label and Clearance attribute.
 * A UUID-derived OID (ITU-T X.667, arc 2.25) so no registration is needed and it cannot collide:
 * uuid 7bc73742-00e1-4a1f-85ce-7614f05d5710.
 */
export const SIGIL_SECURITY_POLICY_OID = '2.25.164529431318252368194589299344320321296';

/** Banner text shown to people, e.g. `TOP SECRET`. */
export function clearanceBanner(level: Clearance): string {
  return level.replace('-', ' ').toUpperCase();
}

export function isClearance(value: unknown): value is Clearance {
  return typeof value === 'string' && (CLEARANCES as readonly string[]).includes(value);
}

/** Position on the scale; higher is more secret. */
export function clearanceRank(level: Clearance): number {
  return CLEARANCES.indexOf(level);
}

/** True when `holder` may see material labelled `label`. */
export function dominates(holder: Clearance, label: Clearance): boolean {
  return clearanceRank(holder) >= clearanceRank(label);
}

/** The level whose RFC 2634 value is `value`, or undefined (e.g. 1 = unclassified, not used by Sigil). */
export function clearanceFromValue(value: number): Clearance | undefined {
  return CLEARANCES.find((c) => CLASSIFICATION_VALUE[c] === value);
}
