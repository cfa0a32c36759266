/**
 * Shapes of the appliance's answers (server/API.md), checked with zod before any command reads
 * them: a server that drifts from the contract yields BAD_RESPONSE, not undefined fields.
 * Objects are loose (`passthrough`) so additive server changes do not break old CLIs.
 */
import { z } from 'zod';

export { ROLES, type Role } from './choices.js';

export const AccountSchema = z
  .object({
    login: z.string(),
    fullName: z.string(),
    department: z.string(),
    rank: z.string().nullish(),
    role: z.string(),
    clearance: z.string(),
    status: z.string(),
    // Absent from appliances older than this client: then the password line is not shown.
    mustChangePassword: z.boolean().optional(),
    certificate: z.object({ serial: z.string(), notAfter: z.string() }).passthrough().nullish(),
  })
  .passthrough();
export type Account = z.infer<typeof AccountSchema>;

export const EnvelopeSchema = z
  .object({
    serial: z.string(),
    login: z.string(),
    password: z.string(),
    issuedBy: z.string(),
    issuedAt: z.string(),
    expiresAt: z.string(),
    text: z.string(),
    html: z.string(),
  })
  .passthrough();
export type Envelope = z.infer<typeof EnvelopeSchema>;

export const OkSchema = z.object({ ok: z.literal(true) }).passthrough();

export const CaSchema = z.object({ root: z.string(), chain: z.string() }).passthrough();

export const CrlSchema = z
  .object({ crl: z.string(), crlNumber: z.union([z.string(), z.number()]), thisUpdate: z.string(), nextUpdate: z.string() })
  .passthrough();

export const CrlPublishedSchema = z
  .object({ crlNumber: z.union([z.string(), z.number()]), thisUpdate: z.string(), nextUpdate: z.string() })
  .passthrough();

export const ChallengeSchema = z.object({ nonce: z.string(), expiresAt: z.string() }).passthrough();

export const LoginSchema = z
  .object({
    token: z.string(),
    expiresAt: z.string(),
    mustChangePassword: z.boolean(),
    envelopeSerial: z.string().nullish(),
    account: AccountSchema,
  })
  .passthrough();

export const UserCreatedSchema = z.object({ account: AccountSchema, envelope: EnvelopeSchema }).passthrough();
export const UsersSchema = z.object({ users: z.array(AccountSchema) }).passthrough();

export const IssuedCertSchema = z.object({ certificate: z.string(), chain: z.string(), serial: z.string() }).passthrough();
export const IssuedP12Schema = z.object({ p12: z.string(), password: z.string(), serial: z.string() }).passthrough();

export const CertListSchema = z
  .object({
    certificates: z.array(
      z
        .object({
          serial: z.string(),
          notBefore: z.string(),
          notAfter: z.string(),
          status: z.string(),
          revokedAt: z.string().nullish(),
          reason: z.string().nullish(),
        })
        .passthrough(),
    ),
  })
  .passthrough();

export const RevokedSchema = z.object({ serial: z.string(), revokedAt: z.string(), reason: z.string(), sameKey: z.array(z.string()).optional() }).passthrough();


/** `DELETE /v1/users/:login`: the account is gone. */
export const UserDeletedSchema = z.object({ login: z.string(), deleted: z.literal(true) }).passthrough();

/** `GET /v1/directory`: the active people, by department (no clearance: need to know). */
export const DirectorySchema = z
  .object({
    people: z.array(z.object({ login: z.string(), fullName: z.string(), department: z.string(), rank: z.string().nullish(), role: z.string() }).passthrough()),
  })
  .passthrough();
export type DirectoryPerson = z.infer<typeof DirectorySchema>['people'][number];
