/** zod schemas shared by the account, auth and certificate routes (API.md). */
import { z } from 'zod';
import { CLEARANCES } from '../../pki/index.js';
import { ROLES } from './account-store.js';
import { MAX_PASSWORD_LENGTH } from './password.js';
import { REVOCATION_REASONS } from '../certs/certificate-store.js';

/** Logins: lower-case letter first, then letters, digits, `.`, `_`, `-`; 2–32 characters. */
export const Login = z.string().regex(/^[a-z][a-z0-9._-]{1,31}$/, 'expected 2–32 characters: a-z first, then a-z 0-9 . _ -');
export const Password = z.string().min(1).max(MAX_PASSWORD_LENGTH);
export const Base64 = z
  .string()
  .min(1)
  .max(64 * 1024)
  .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'expected standard base64');
export const Clearance = z.enum(CLEARANCES);
export const Role = z.enum(ROLES);
export const Reason = z.enum(REVOCATION_REASONS);
export const Serial = z.string().regex(/^(0x)?[0-9a-fA-F:]{1,80}$/, 'expected a hexadecimal serial number');
/**
 * Full names and departments. They become the certificate's CN and OU, which hold at most 64
 * characters (RFC 5280 ub-common-name, ub-organizational-unit-name; pki/names.ts): a longer one
 * made an account that could never get a certificate. Accounts made before this cap may have up
 * to 128; they are shortened with {@link NamesBody} (account-service.ts `rename`).
 */
export const NAME_MAX_LENGTH = 64;
export const Name = z
  .string()
  .trim()
  .min(1)
  .max(NAME_MAX_LENGTH, `expected at most ${NAME_MAX_LENGTH} characters (the certificate's CN and OU hold no more)`)
  // Shown on one line by every reader (the directory, envelopes, certificate subjects): no
  // control character (C0, DEL, C1), line separator or bidirectional override either.
  .regex(/^[^\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069<>]*$/, 'no control characters, bidirectional overrides or angle brackets');

export const LoginParam = z.object({ login: Login });
export const SerialParam = z.object({ serial: Serial });

/**
 * `POST /v1/users/:login/name`: a new full name, department and/or rank (each ≤ 64, like a new
 * account's); `rank: null` removes the rank.
 */
export const NamesBody = z
  .object({ fullName: Name.optional(), department: Name.optional(), rank: Name.nullable().optional() })
  .strict()
  .refine((b) => b.fullName !== undefined || b.department !== undefined || b.rank !== undefined, 'expected fullName, department or rank');
