/**
 * Sigil server's error model at the HTTP edge.
 *
 * Domain errors (accounts, auth, certs, pki, vault) carry a stable string `code` and know nothing
 * of HTTP. This module owns the one table mapping codes to HTTP statuses, and the error body
 * `{"error":{"code","message","requestId"}}`. Anything without a known code becomes 500 INTERNAL
 * with a generic message; the cause goes to the log only.
 */

/** An error raised at the HTTP edge itself (routing, schemas, sessions, roles). */
export class ServerError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ServerError';
  }
}

/** Schema failure of a request body, query or parameter. The message names the field. */
export class BadRequestError extends ServerError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BAD_REQUEST', message, options);
    this.name = 'BadRequestError';
  }
}

/** Unknown route. */
export class NotFoundError extends ServerError {
  constructor(what = 'no such route') {
    super('NOT_FOUND', what);
    this.name = 'NotFoundError';
  }
}

/** Body above the route's limit. */
export class BodyTooLargeError extends ServerError {
  constructor(limit: number) {
    super('BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
    this.name = 'BodyTooLargeError';
  }
}

/** Authenticated, but the role may not do this. */
export class ForbiddenError extends ServerError {
  constructor(needed: readonly string[], actual: string) {
    super('FORBIDDEN', `this operation needs role ${needed.join(' or ')}; the session's role is ${actual}`);
    this.name = 'ForbiddenError';
  }
}

/**
 * HTTP status of each stable code. Codes of other modules (pki, vault, messaging) are listed here
 * too, so the whole mapping lives in one place. Unknown codes → 500.
 */
export const STATUS_BY_CODE: Readonly<Record<string, number>> = {
  // edge
  BAD_REQUEST: 400,
  MALFORMED_INPUT: 400,
  NOT_FOUND: 404,
  BODY_TOO_LARGE: 413,
  TOO_MANY_STREAMS: 429,
  FORBIDDEN: 403,
  PASSWORD_CHANGE_REQUIRED: 403,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  // transport / client certificate
  CLIENT_CERT_REQUIRED: 401,
  CERT_REVOKED: 401,
  ISSUING_CA_REVOKED: 401,
  CERT_EXPIRED: 401,
  CERT_NOT_YET_VALID: 401,
  // auth
  AUTH_REQUIRED: 401,
  AUTH_FAILED: 401,
  NONCE_INVALID: 401,
  SESSION_INVALID: 401,
  SESSION_EXPIRED: 401,
  ACCOUNT_LOCKED: 423,
  RECEIPT_INVALID: 400,
  PASSWORD_WEAK: 400,
  PASSWORD_WRONG: 401,
  PASSWORD_CHANGE_NOT_PENDING: 409,
  ACCOUNT_CHANGED: 409,
  ENVELOPE_EXPIRED: 401,
  // accounts
  ACCOUNT_NOT_FOUND: 404,
  ACCOUNT_EXISTS: 409,
  ACCOUNT_STATE: 409,
  CLEARANCE_UNCHANGED: 409,
  ACCOUNT_NAME_TOO_LONG: 409,
  ACCOUNT_IN_USE: 409,
  // certificates
  CERTIFICATE_NOT_FOUND: 404,
  // ca/root-crl.pem is there but not a CRL: the appliance has no root CRL it can serve (routes/crl.ts)
  ROOT_CRL_UNUSABLE: 404,
  CERTIFICATE_ALREADY_REVOKED: 409,
  KEY_COMPROMISED: 409,
  KEY_IN_USE: 409,
  // pki (input-driven failures)
  UNKNOWN_ALGORITHM: 400,
  WRONG_ALGORITHM: 400,
  CSR_BAD_SIGNATURE: 400,
  INVALID_PARAMETER: 400,
  PKCS12_BAD_PASSWORD: 400,
  // the issuing CA's certificate has expired: a state of the appliance, not of the request
  ISSUER_EXPIRED: 409,
};

/** The wire shape of every error answer. */
export interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

/** What the edge makes of any thrown value: a status and a body safe to show the client. */
export interface MappedError {
  status: number;
  body: ErrorBody;
  /** True when the cause is unknown: the client sees a generic message, the log gets the cause. */
  internal: boolean;
}

/** A 4xx status an error carries itself (messaging errors do), used when the table has no entry. */
function ownStatusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status < 500 ? status : undefined;
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Maps any thrown value to a status and body. Only errors whose `code` is in
 * {@link STATUS_BY_CODE} (or that carry their own 4xx `status`, as messaging errors do) keep their message (domain messages are written to be shown: they say
 * expected vs actual and never echo secrets). Everything else becomes 500 INTERNAL.
 */
export function mapError(err: unknown, requestId: string): MappedError {
  const code = codeOf(err);
  const status = code !== undefined ? (STATUS_BY_CODE[code] ?? ownStatusOf(err)) : undefined;
  if (code !== undefined && status !== undefined && status < 500) {
    const message = err instanceof Error ? err.message : code;
    return { status, body: { error: { code, message, requestId } }, internal: false };
  }
  if (code === 'CRL_NOT_PUBLISHED' && err instanceof Error) {
    // Half done: a revocation is in force but its CRL is not out. The message says so (a bare 507
    // VAULT_FULL would say "nothing was written"); the status says free space (507) or retry (503).
    return { status: (err as { status?: unknown }).status === 507 ? 507 : 503, body: { error: { code, message: err.message, requestId } }, internal: false };
  }
  if (code === 'VAULT_FULL') {
    // Not the client's fault and not a crash: the appliance's disk is full. 507 Insufficient Storage
    // says so; the transaction was rolled back, so nothing half-written remains (issue 8, disk full).
    return {
      status: 507,
      body: { error: { code, message: "the appliance's storage is full; nothing was written — ask the administrator", requestId } },
      internal: false,
    };
  }
  if (code === 'UNAVAILABLE') {
    return {
      status: 503,
      body: { error: { code, message: 'the appliance is shutting down', requestId } },
      internal: false,
    };
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL', message: 'internal error; see the server log', requestId } },
    internal: true,
  };
}

/** `init` on a data directory that already holds an appliance. */
export class ApplianceExistsError extends Error {
  readonly code = 'APPLIANCE_EXISTS';
  constructor(dataDir: string) {
    super(`${dataDir} already holds a Sigil appliance; refusing to overwrite it (choose another --data)`);
    this.name = 'ApplianceExistsError';
  }
}

/** `start` on a data directory without an appliance. */
export class ApplianceMissingError extends Error {
  readonly code = 'APPLIANCE_NOT_INITIALISED';
  constructor(dataDir: string, options?: { cause?: unknown }) {
    super(`${dataDir} holds no Sigil appliance; run "sigil-server init --data ${dataDir}" first`, options);
    this.name = 'ApplianceMissingError';
  }
}

/** `start` (or `backup`, …: `before` says what) on a vault whose master-key rotation was interrupted: finish it first. */
export class RotationPendingError extends Error {
  readonly code = 'ROTATION_PENDING';
  constructor(dataDir: string, before = 'starting') {
    super(
      `the master-key rotation of ${dataDir} was interrupted; finish it with "sigil-server rotate-master-key --data ${dataDir}" (same new key) before ${before}`,
    );
    this.name = 'RotationPendingError';
  }
}
