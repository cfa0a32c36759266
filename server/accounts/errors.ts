/** Failure modes of accounts, passwords and envelopes. Domain errors: no HTTP here. */

/** No account with this login. (Login answers never use it: they say AUTH_FAILED.) */
export class AccountNotFoundError extends Error {
  readonly code = 'ACCOUNT_NOT_FOUND';
  constructor(readonly login: string) {
    super(`no account with login "${login}"`);
    this.name = 'AccountNotFoundError';
  }
}

/** Creating an account whose login is taken. */
export class AccountExistsError extends Error {
  readonly code = 'ACCOUNT_EXISTS';
  constructor(readonly login: string) {
    super(`an account with login "${login}" already exists`);
    this.name = 'AccountExistsError';
  }
}

/** An operation that does not apply to the account's current status (e.g. enable an active one). */
export class AccountStateError extends Error {
  readonly code = 'ACCOUNT_STATE';
  constructor(login: string, expected: string, actual: string) {
    super(`account "${login}" must be ${expected} for this operation; it is ${actual}`);
    this.name = 'AccountStateError';
  }
}

/** Setting the clearance an account already has. */
export class ClearanceUnchangedError extends Error {
  readonly code = 'CLEARANCE_UNCHANGED';
  constructor(login: string, clearance: string) {
    super(`account "${login}" already has clearance ${clearance}`);
    this.name = 'ClearanceUnchangedError';
  }
}

/** A new password that breaks the policy. The message says which rule, never the password. */
export class PasswordWeakError extends Error {
  readonly code = 'PASSWORD_WEAK';
  constructor(rule: string) {
    super(`the new password is refused: ${rule}`);
    this.name = 'PasswordWeakError';
  }
}

/** The envelope (one-time password) was not used before its expiry. */
export class EnvelopeExpiredError extends Error {
  readonly code = 'ENVELOPE_EXPIRED';
  constructor(serial: string, expiresAt: Date) {
    super(`envelope ${serial} expired at ${expiresAt.toISOString()}; ask a security officer to reissue it`);
    this.name = 'EnvelopeExpiredError';
  }
}

/**
 * A certificate cannot be issued to an account whose full name or department is longer than a
 * certificate's CN or OU holds (64): an account created before names were capped at 64 (they
 * were allowed 128). The officer shortens them first (`POST /v1/users/:login/name`).
 */
export class AccountNameTooLongError extends Error {
  readonly code = 'ACCOUNT_NAME_TOO_LONG';
  constructor(login: string, fields: readonly { field: 'fullName' | 'department'; length: number }[], max: number) {
    const what = fields.map((f) => `a ${f.field} of ${f.length} characters`).join(' and ');
    super(`account "${login}" has ${what}; a certificate holds at most ${max}: shorten it first (POST /v1/users/${login}/name)`);
    this.name = 'AccountNameTooLongError';
  }
}

/**
 * Deleting an account that has had a certificate (active, expired or revoked): its signatures,
 * sessions and audit entries must stay attributable to an account, so it can only be disabled.
 */
export class AccountInUseError extends Error {
  readonly code = 'ACCOUNT_IN_USE';
  constructor(login: string) {
    super(`account "${login}" has had a certificate, so it may have logged in or signed: disable it instead of deleting it`);
    this.name = 'AccountInUseError';
  }
}
