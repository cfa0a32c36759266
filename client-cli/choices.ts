/**
 * Allowed values of enumerated flags, as plain constants so that building the command tree
 * (and `--help`) never loads pki/ or zod. They mirror pki's lists (CLEARANCES, PROFILE_NAMES,
 * REVOCATION_REASON_CODES) and the API's roles; `test/client-cli/choices.test.ts` fails when they drift.
 */

/** pki CLEARANCES, ascending. */
export const CLEARANCE_CHOICES = ['unmarked', 'restricted', 'confidential', 'secret', 'top-secret'] as const;

/** Account roles of server/API.md. */
export const ROLES = ['staff', 'officer', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** pki PROFILE_NAMES; the first is pki's DEFAULT_PROFILE. */
export const KEY_ALGORITHMS = ['p384', 'p256', 'rsa3072'] as const;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];
export const DEFAULT_KEY_ALGORITHM: KeyAlgorithm = 'p384';

/** RFC 5280 §5.3.1 CRLReason names offered by pki (REVOCATION_REASON_CODES) and accepted by the server. */
export const REVOCATION_REASONS = [
  'unspecified',
  'keyCompromise',
  'cACompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
] as const;
