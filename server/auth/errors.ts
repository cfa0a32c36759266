/**
 * Failure modes of login and sessions. Domain errors: no HTTP here.
 *
 * Login failures that could reveal whether a login exists (unknown login, wrong password, wrong
 * nonce signer, certificate of another account) all surface as one `AuthFailedError` with one
 * message; the precise reason is kept in `reason` for the audit trail and the log only.
 */

/** Why a login failed, for the audit trail; never shown to the client. */
export type AuthFailureReason =
  | 'unknown-login'
  | 'wrong-password'
  | 'bad-signature'
  | 'certificate-not-of-account'
  | 'certificate-not-active'
  | 'account-disabled'
  /** The password was reset or replaced while this login's password was being checked. */
  | 'account-changed';

/** Login refused. One message for every reason. */
export class AuthFailedError extends Error {
  readonly code = 'AUTH_FAILED';
  constructor(readonly reason: AuthFailureReason) {
    super('login failed: wrong login, password or certificate');
    this.name = 'AuthFailedError';
  }
}

/**
 * Too many failures: locked until an officer unlocks it or the delay passes. One message whether
 * the login is locked or the certificate the attempt came over is (auth/lockout.ts); `scope` says
 * which for the audit trail only.
 */
export class AccountLockedError extends Error {
  readonly code = 'ACCOUNT_LOCKED';
  constructor(readonly scope: 'login' | 'certificate' = 'login') {
    super('too many failed logins: this login is locked; ask a security officer or wait');
    this.name = 'AccountLockedError';
  }
}

/** Why a nonce was refused (the client is told too: it only concerns its own request). */
export type NonceRefusal = 'unknown' | 'expired' | 'used' | 'wrong-certificate' | 'wrong-login';

/** A nonce that is unknown, expired, already used, or bound to another certificate or login. */
export class NonceInvalidError extends Error {
  readonly code = 'NONCE_INVALID';
  constructor(readonly why: NonceRefusal) {
    super(`the login nonce is not valid (${why}); ask for a new challenge`);
    this.name = 'NonceInvalidError';
  }
}

/** No bearer token on a route that needs a session. */
export class AuthRequiredError extends Error {
  readonly code = 'AUTH_REQUIRED';
  constructor() {
    super('this route needs a session: send Authorization: Bearer <token>');
    this.name = 'AuthRequiredError';
  }
}

/** Why a bearer token was refused, for the audit trail; never shown to the client. */
export type SessionRefusal = 'malformed' | 'unknown-token' | 'other-certificate' | 'ended' | 'account-disabled';

/**
 * A token that is unknown, ended (logout, revocation, disabled account) or bound to another
 * certificate. One message for all; `why` and `about` (the session the token names) are for the
 * audit trail only.
 */
export class SessionInvalidError extends Error {
  readonly code = 'SESSION_INVALID';
  constructor(
    readonly why: SessionRefusal = 'unknown-token',
    readonly about?: { login: string; certSerial: string; endReason?: string | null },
  ) {
    super('the session token is not valid for this certificate; log in again');
    this.name = 'SessionInvalidError';
  }
}

/** A session past its idle or absolute timeout. */
export class SessionExpiredError extends Error {
  readonly code = 'SESSION_EXPIRED';
  constructor(which: 'idle' | 'absolute') {
    super(`the session expired (${which === 'idle' ? 'idle timeout' : 'absolute lifetime'}); log in again`);
    this.name = 'SessionExpiredError';
  }
}

/** A session that must change the envelope password first. */
export class PasswordChangeRequiredError extends Error {
  readonly code = 'PASSWORD_CHANGE_REQUIRED';
  constructor() {
    super('the envelope password must be changed first: log in again to choose a new one (sigil login; API: POST /v1/auth/first-login)');
    this.name = 'PasswordChangeRequiredError';
  }
}

/** `first-login` on a session that has no pending password change. */
export class PasswordChangeNotPendingError extends Error {
  readonly code = 'PASSWORD_CHANGE_NOT_PENDING';
  constructor() {
    super('no envelope password change is pending for this account');
    this.name = 'PasswordChangeNotPendingError';
  }
}

/**
 * The account changed while a request about it was being worked out (an officer reset the password
 * during a password change, changed the clearance during an issuance): nothing was written.
 */
export class AccountChangedError extends Error {
  readonly code = 'ACCOUNT_CHANGED';
  constructor(detail: string) {
    super(`the account changed while this request ran: ${detail}`);
    this.name = 'AccountChangedError';
  }
}

/** The current password given to change it is wrong. */
export class PasswordWrongError extends Error {
  readonly code = 'PASSWORD_WRONG';
  constructor() {
    super('the current password is wrong');
    this.name = 'PasswordWrongError';
  }
}

/** An envelope receipt whose signature does not verify, or names another login or serial. */
export class ReceiptInvalidError extends Error {
  readonly code = 'RECEIPT_INVALID';
  constructor(detail: string) {
    super(`the envelope receipt is not valid: ${detail}`);
    this.name = 'ReceiptInvalidError';
  }
}
