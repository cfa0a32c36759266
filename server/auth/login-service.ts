/**
 * Login = password + proof of possession of the certificate key (issue 3).
 *
 * The client asks for a nonce over its TLS connection, signs `sigil-login {login, nonce}` with
 * the key of the certificate it presented in TLS, and sends login, password, nonce and signature.
 * The certificate must be an active certificate of that account; the signer must be that very
 * certificate. Every failure that could tell whether a login exists answers AUTH_FAILED.
 *
 * Failed and refused attempts go to the lockout and the audit trail through failed-attempts.ts
 * (which names a login without an account by its keyed hash, and bounds refusals through
 * {@link RefusalAudit}); password changes are password-change.ts, queued here with the attempts.
 */
import type { AccountRecord, AccountStore } from '../accounts/account-store.js';
import { EnvelopeExpiredError } from '../accounts/errors.js';
import type { PasswordHasher } from '../accounts/password.js';
import type { CertificateStore } from '../certs/certificate-store.js';
import type { ClientCert } from '../middleware/types.js';
import { KeyedQueue } from '../keyed-queue.js';
import type { Db } from '../vault/index.js';
import { AccountLockedError, AuthFailedError, NonceInvalidError, type AuthFailureReason } from './errors.js';
import { FailedAttempts } from './failed-attempts.js';
import type { Admission, Lockout } from './lockout.js';
import type { LoginHash } from './login-hash.js';
import type { NonceStore } from './nonce-store.js';
import { PasswordChanges } from './password-change.js';
import type { CertificateRefusalReason, RefusalAudit } from './refusals.js';
import { securityEvent, type AuditSink, type SecurityEvent } from './security-events.js';
import type { Session, SessionStore } from './session-store.js';
import { loginStatement, signedBy } from './statements.js';

/** Dependencies of {@link LoginService}. */
export interface LoginServiceDeps {
  db: Db;
  accounts: AccountStore;
  certificates: CertificateStore;
  sessions: SessionStore;
  nonces: NonceStore;
  lockout: Lockout;
  hasher: PasswordHasher;
  audit: AuditSink;
  now: () => Date;
  /** A hash of a random password at the configured cost, verified for unknown logins so timing does not tell. */
  decoyHash: string;
  /** Names logins that have no account in the audit trail (auth/login-hash.ts). */
  loginHash: LoginHash;
}

/** Result of a successful login. */
export interface LoginResult {
  token: string;
  expiresAt: Date;
  mustChangePassword: boolean;
  envelopeSerial?: string;
  account: AccountRecord;
}

/** The account a login was checked against, and its access generation then (AccountStore.accessGeneration). */
interface Checked {
  account: AccountRecord;
  generation: number;
}

/** The login flow and password changes. */
export class LoginService {
  /**
   * A login's attempts, first logins and password changes run one at a time: each reads the
   * lockout counter and the password, spends ~10–50 ms in argon2, then writes. Overlapping
   * attempts all passed the lock check before the first failure was counted (30 guesses at once
   * got through a 5-failure lock); queued, each sees the failures before it.
   */
  readonly #perLogin = new KeyedQueue();

  /** Failed and refused attempts → the lockout and the audit trail (auth/failed-attempts.ts). */
  readonly #attempts: FailedAttempts;

  readonly #passwords: PasswordChanges;

  /** Refused attempts, tokens and certificates → the audit trail, bounded (auth/refusals.ts). */
  readonly refusals: RefusalAudit;

  constructor(private readonly d: LoginServiceDeps) {
    this.#attempts = new FailedAttempts(d);
    this.#passwords = new PasswordChanges(d, this.#attempts);
    this.refusals = this.#attempts.refusals;
    d.sessions.onRefused((r) => this.#attempts.tokenRefused(r));
  }

  /** Writes the refusal counts still held (call before the vault closes). */
  close(): Promise<void> {
    return this.refusals.close();
  }

  /**
   * A request refused at the client-certificate check (revoked, expired, not yet valid): every
   * login or challenge tried with such a certificate among them. Wired by app.ts.
   */
  certificateRefused(cc: ClientCert, reason: CertificateRefusalReason, peer?: string | null): Promise<void> {
    return this.#attempts.certificateRefused(cc, reason, peer);
  }

  private event(type: SecurityEvent['type'], actor: string, subject: string, detail?: SecurityEvent['detail']): SecurityEvent {
    return securityEvent(this.d.now(), type, actor, subject, detail);
  }

  /** Issues a nonce bound to `login` and this TLS certificate. Answers for any login. */
  challenge(login: string, cc: ClientCert): { nonce: string; expiresAt: Date } {
    return this.d.nonces.issue(login, cc.fingerprint);
  }

  /**
   * Counts the failed attempt `admission` admitted and answers AUTH_FAILED — or ACCOUNT_LOCKED,
   * counting nothing, if its certificate is locked by now (auth/lockout.ts).
   */
  private async fail(login: string, reason: AuthFailureReason, cc: ClientCert, admission: Admission, peer?: string): Promise<never> {
    await this.#attempts.recordFailure(login, { reason, serial: cc.serial, peer: peer ?? null }, { cc, admission });
    throw new AuthFailedError(reason);
  }

  /**
   * Logs in. Throws ACCOUNT_LOCKED, NONCE_INVALID, AUTH_FAILED or ENVELOPE_EXPIRED.
   * Order matters: the lock is checked first (a locked login learns nothing more) and the attempt
   * takes its place in the certificate's count (auth/lockout.ts: attempts waiting for argon2 over
   * one certificate cannot pass its limit together), the nonce is consumed before any password
   * work (a replay costs no argon2), the password is always verified (also for unknown logins,
   * against a decoy) so timing does not reveal existence.
   */
  login(input: { login: string; password: string; nonce: string; signature: string }, cc: ClientCert, peer?: string): Promise<LoginResult> {
    return this.#perLogin.run(input.login, () => this.#login(input, cc, peer));
  }

  async #login(
    input: { login: string; password: string; nonce: string; signature: string },
    cc: ClientCert,
    peer?: string,
  ): Promise<LoginResult> {
    const { login } = input;
    let admission: Admission | undefined;
    try {
      admission = await this.d.lockout.admit(login, cc.fingerprint);
      this.d.nonces.consume(input.nonce, login, cc.fingerprint);
    } catch (err) {
      admission?.release();
      // Refused before any password work: audited, aggregated per login, certificate and peer.
      if (err instanceof AccountLockedError) {
        await this.#attempts.loginRefused(login, err.scope === 'certificate' ? 'certificate-locked' : 'locked', cc.serial, peer);
      }
      if (err instanceof NonceInvalidError) await this.#attempts.loginRefused(login, `nonce-${err.why}`, cc.serial, peer);
      throw err;
    }
    try {
      return await this.#checkAndOpen(input, cc, admission, peer);
    } catch (err) {
      // The certificate locked while this attempt was in flight: counted as nothing, refused as
      // the attempts after it are.
      if (err instanceof AccountLockedError) await this.#attempts.loginRefused(login, 'certificate-locked', cc.serial, peer);
      throw err;
    } finally {
      admission.release();
    }
  }

  /** The checks of an admitted login attempt after its nonce, and its session. */
  async #checkAndOpen(
    input: { login: string; password: string; nonce: string; signature: string },
    cc: ClientCert,
    admission: Admission,
    peer?: string,
  ): Promise<LoginResult> {
    const { login } = input;
    const fail = (reason: AuthFailureReason) => this.fail(login, reason, cc, admission, peer);
    // Read with the account, compared again when the session is made (#stillAdmitted).
    const generation = this.d.accounts.accessGeneration(login);
    const account = await this.d.accounts.get(login);
    const passwordOk = await this.d.hasher.verify(account?.passwordHash ?? this.d.decoyHash, input.password);
    // The signature and the certificate are checked whatever the password was: checked only after
    // a right one, the extra verify told whoever signed with their own certificate, for someone
    // else's login, that the password they guessed was right (by the answer's time alone).
    const signatureOk = await signedBy(input.signature, loginStatement(login, input.nonce), cc);
    const rec = await this.d.certificates.byFingerprint(cc.fingerprint);
    if (!account) return fail('unknown-login');
    if (!passwordOk) return fail('wrong-password');
    if (!signatureOk) return fail('bad-signature');
    if (!rec || rec.login !== login) return fail('certificate-not-of-account');
    if (rec.status !== 'active') return fail('certificate-not-active');
    if (account.status === 'disabled') return fail('account-disabled');

    let envelopeSerial: string | undefined;
    if (account.mustChangePassword) {
      const env = await this.d.accounts.pendingEnvelope(login);
      if (!env) return fail('wrong-password');
      if (env.expiresAt.getTime() <= this.d.now().getTime()) {
        await this.d.audit.append([this.event('login.failed', login, login, { reason: 'envelope-expired', serial: env.serial })]);
        throw new EnvelopeExpiredError(env.serial, env.expiresAt);
      }
      envelopeSerial = env.serial;
    }
    const opened = await this.#openSession({ account, generation }, cc, peer);
    // AUTH_FAILED, not ACCOUNT_CHANGED: the same request sent a moment later (replaced password,
    // disabled account, revoked certificate) answers AUTH_FAILED, and ACCOUNT_CHANGED would tell
    // whoever holds a stolen password that it was right until the officer's reset. Counted as a
    // failure like that later request would be.
    if ('refused' in opened) return fail(opened.refused);
    return {
      token: opened.token,
      expiresAt: opened.expiresAt,
      mustChangePassword: opened.account.mustChangePassword,
      ...(envelopeSerial ? { envelopeSerial } : {}),
      account: opened.account,
    };
  }

  /**
   * Opens the session of a login whose checks passed on `checked`, the account as read before
   * argon2 — unless an officer's reset or disable, or a revocation, came since. Those end the
   * account's sessions in their transaction; a session created afterwards from the stale read
   * would outlive them (a reset's old password kept a session, a disable+enable revived it). The
   * re-read and the insert share one transaction, so such a change lands either before it (seen
   * here) or after it (and ends this session with the others).
   */
  async #openSession(
    checked: Checked,
    cc: ClientCert,
    peer?: string,
  ): Promise<{ refused: AuthFailureReason } | { token: string; expiresAt: Date; account: AccountRecord }> {
    const { login } = checked.account;
    return this.d.db.transaction(async () => {
      const current = await this.#stillAdmitted(checked, cc);
      if (typeof current === 'string') return { refused: current };
      await this.d.lockout.recordSuccess(login);
      const { token, expiresAt } = await this.d.sessions.create(login, cc.fingerprint, cc.serial, cc.cert.notAfter);
      await this.d.audit.append([this.event('login.ok', login, login, { serial: cc.serial, peer: peer ?? null })]);
      return { token, expiresAt, account: (await this.d.accounts.get(login)) ?? current };
    });
  }

  /**
   * The account read again (call inside the session's transaction): still active, with the
   * password and pending-change flag the login was checked against and no status or password
   * write since (a disable then enable leaves the row as it was), over a certificate of it that is
   * still active. Otherwise why not, as the failure reason.
   */
  async #stillAdmitted(checked: Checked, cc: ClientCert): Promise<AccountRecord | AuthFailureReason> {
    const { account, generation } = checked;
    const current = await this.d.accounts.get(account.login);
    if (!current) return 'unknown-login';
    if (current.status !== 'active') return 'account-disabled';
    if (
      current.passwordHash !== account.passwordHash ||
      current.mustChangePassword !== account.mustChangePassword ||
      this.d.accounts.accessGeneration(account.login) !== generation
    )
      return 'account-changed';
    const rec = await this.d.certificates.byFingerprint(cc.fingerprint);
    if (!rec || rec.login !== account.login) return 'certificate-not-of-account';
    if (rec.status !== 'active') return 'certificate-not-active';
    return current;
  }

  /**
   * First login: replaces the envelope password and stores the signed envelope receipt
   * (password-change.ts). Throws PASSWORD_CHANGE_NOT_PENDING, PASSWORD_WEAK, RECEIPT_INVALID or
   * ENVELOPE_EXPIRED.
   */
  firstLogin(account: AccountRecord, session: Session, input: { newPassword: string; receipt: string }, cc: ClientCert): Promise<void> {
    return this.#perLogin.run(account.login, () => this.#passwords.firstLogin(account, session, input, cc));
  }

  /** Changes a chosen password; other sessions of the account end. Throws PASSWORD_WRONG, PASSWORD_WEAK. */
  changePassword(account: AccountRecord, session: Session, input: { currentPassword: string; newPassword: string }): Promise<void> {
    return this.#perLogin.run(account.login, () => this.#passwords.changePassword(account, session, input));
  }

  /** Ends the session. */
  async logout(account: AccountRecord, session: Session): Promise<void> {
    await this.d.sessions.end(session.id, 'logout');
    await this.d.audit.append([this.event('logout', account.login, account.login)]);
  }
}
