/**
 * Password changes of a logged-in account: the first login's (the envelope password replaced,
 * the signed envelope receipt stored) and a chosen password's. login-service.ts runs them one at a
 * time per login, with that login's attempts.
 */
import type { AccountRecord } from '../accounts/account-store.js';
import { EnvelopeExpiredError, PasswordWeakError } from '../accounts/errors.js';
import { checkNewPassword, envelopePasswordForm } from '../accounts/password.js';
import type { ClientCert } from '../middleware/types.js';
import { AccountChangedError, AccountLockedError, PasswordChangeNotPendingError, PasswordWrongError, ReceiptInvalidError } from './errors.js';
import type { FailedAttempts } from './failed-attempts.js';
import type { LoginServiceDeps } from './login-service.js';
import { securityEvent } from './security-events.js';
import type { Session } from './session-store.js';
import { envelopeReceiptStatement, signedBy } from './statements.js';

/** Dependencies of {@link PasswordChanges}: those of the login service it needs. */
export type PasswordChangesDeps = Pick<LoginServiceDeps, 'db' | 'accounts' | 'sessions' | 'lockout' | 'hasher' | 'audit' | 'now'>;

/** The first login's password change and later ones. */
export class PasswordChanges {
  constructor(
    private readonly d: PasswordChangesDeps,
    private readonly attempts: FailedAttempts,
  ) {}

  /**
   * Throws ACCOUNT_CHANGED unless `session` is still open (call inside the write's transaction).
   * The session middleware judged it when the request began; a disable or a revocation of its
   * certificate while argon2 ran ended it, and the change went on to write a password (and, at the
   * first login, an envelope receipt signed by the revoked certificate) for a session that no
   * longer existed. The hash comparison below catches only a reset.
   */
  async #assertSessionOpen(session: Session): Promise<void> {
    if (!(await this.d.sessions.isOpen(session.id))) {
      throw new AccountChangedError('this session was ended meanwhile (account disabled, certificate revoked, or reset); nothing was changed');
    }
  }

  /**
   * First login: replaces the envelope password and stores the signed envelope receipt.
   * Throws PASSWORD_CHANGE_NOT_PENDING, PASSWORD_WEAK, RECEIPT_INVALID or ENVELOPE_EXPIRED.
   */
  async firstLogin(account: AccountRecord, session: Session, input: { newPassword: string; receipt: string }, cc: ClientCert): Promise<void> {
    if (!account.mustChangePassword) throw new PasswordChangeNotPendingError();
    const env = await this.d.accounts.pendingEnvelope(account.login);
    if (!env) throw new PasswordChangeNotPendingError();
    if (env.expiresAt.getTime() <= this.d.now().getTime()) throw new EnvelopeExpiredError(env.serial, env.expiresAt);
    checkNewPassword(input.newPassword, { login: account.login });
    // The envelope password is not kept in clear: compare through its hash, as typed and in the
    // form it is printed in (capitals, no dashes or spaces for dashes are the same password).
    const printed = envelopePasswordForm(input.newPassword);
    for (const candidate of new Set([input.newPassword, ...(printed !== undefined ? [printed] : [])])) {
      if (await this.d.hasher.verify(account.passwordHash, candidate)) throw new PasswordWeakError('it must not be the envelope password');
    }
    const receipt = Buffer.from(input.receipt, 'base64');
    if (!(await signedBy(input.receipt, envelopeReceiptStatement(account.login, env.serial), cc)))
      // No serial in the message: the holder has the printed envelope, and a session left from an
      // older envelope must not learn the newer one's serial from its refusal.
      throw new ReceiptInvalidError(
        "expected a signature by the session's certificate over sigil-envelope-receipt for this login and the pending envelope's serial",
      );
    const hash = await this.d.hasher.hash(input.newPassword);
    const now = this.d.now();
    await this.d.db.transaction(async () => {
      await this.#assertSessionOpen(session);
      // An officer's reset may have landed while argon2 ran: it replaced the password and
      // superseded this envelope. Then the receipt is for an envelope that no longer counts.
      const replaced = await this.d.accounts.replacePassword(
        account.login,
        { hash: account.passwordHash, mustChange: true },
        { hash, mustChange: false },
      );
      if (!replaced || !(await this.d.accounts.useEnvelope(env.serial, now, receipt))) {
        throw new AccountChangedError(`envelope ${env.serial} was replaced by a newer one; nothing was changed, log in with the new envelope`);
      }
      // Other sessions opened with the envelope password would become full sessions now: whoever
      // else read the envelope keeps nothing.
      await this.d.sessions.endForLogin(account.login, 'password-changed', session.id);
      await this.d.audit.append([
        securityEvent(this.d.now(), 'envelope.used', account.login, account.login, { serial: env.serial, certificate: cc.serial }),
        securityEvent(this.d.now(), 'password.changed', account.login, account.login, { first: true }),
      ]);
    });
  }

  /** Changes a chosen password; other sessions of the account end. Throws PASSWORD_WRONG, PASSWORD_WEAK. */
  async changePassword(account: AccountRecord, session: Session, input: { currentPassword: string; newPassword: string }): Promise<void> {
    // A wrong current password counts as a failed login: a session in someone else's hands must
    // not become a way to guess the password without limit. The lock also ends the sessions.
    try {
      await this.d.lockout.assertNotLocked(account.login);
    } catch (err) {
      if (err instanceof AccountLockedError) await this.attempts.loginRefused(account.login, 'locked', session.certSerial);
      throw err;
    }
    if (!(await this.d.hasher.verify(account.passwordHash, input.currentPassword))) {
      await this.attempts.recordFailure(account.login, { reason: 'password-change-wrong-current' }, { endSessions: true });
      throw new PasswordWrongError();
    }
    checkNewPassword(input.newPassword, { login: account.login });
    if (input.newPassword === input.currentPassword) throw new PasswordWeakError('it must differ from the current password');
    const hash = await this.d.hasher.hash(input.newPassword);
    await this.d.db.transaction(async () => {
      await this.#assertSessionOpen(session);
      // Written only over the password this request checked: a reset that landed meanwhile wins.
      if (!(await this.d.accounts.replacePassword(account.login, { hash: account.passwordHash, mustChange: false }, { hash, mustChange: false }))) {
        throw new AccountChangedError('its password was reset or changed meanwhile; nothing was changed, log in again');
      }
      await this.d.sessions.endForLogin(account.login, 'password-changed', session.id);
      await this.d.audit.append([securityEvent(this.d.now(), 'password.changed', account.login, account.login, { first: false })]);
    });
  }
}
