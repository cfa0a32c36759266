/**
 * Login = password + proof of possession of the certificate key (issue 3).
 *
 * The client asks for a nonce over its TLS connection, signs `sigil-login {login, nonce}` with
 * the key of the certificate it presented in TLS, and sends login, password, nonce and signature.
 * The certificate must be an active certificate of that account; the signer must be that very
 * certificate. Every failure that could tell whether a login exists answers AUTH_FAILED.
 *
 * The audit trail names a login that has an account in clear and any other by its keyed hash
 * (auth/login-hash.ts): what a client types as a login (an envelope password in the wrong field)
 * must not stay in clear in a trail that can never be cleaned. Refusals before the password check
 * (locked, bad nonce), refused tokens and refused certificates go through {@link RefusalAudit},
 * which bounds how many entries they can make.
 */
import { verifyDetached } from '../../pki/index.js';
import type { AccountRecord, AccountStore } from '../accounts/account-store.js';
import { EnvelopeExpiredError, PasswordWeakError } from '../accounts/errors.js';
import { checkNewPassword, type PasswordHasher } from '../accounts/password.js';
import type { CertificateStore } from '../certs/certificate-store.js';
import type { ClientCert } from '../middleware/types.js';
import { KeyedQueue } from '../keyed-queue.js';
import type { Db } from '../vault/index.js';
import {
  AccountChangedError,
  AccountLockedError,
  AuthFailedError,
  NonceInvalidError,
  PasswordChangeNotPendingError,
  PasswordWrongError,
  ReceiptInvalidError,
  type AuthFailureReason,
} from './errors.js';
import type { Admission, Lockout } from './lockout.js';
import { hiddenLoginName, type LoginHash } from './login-hash.js';
import type { NonceStore } from './nonce-store.js';
import { RefusalAudit, type CertificateRefusalReason, type Refusal } from './refusals.js';
import type { AuditSink, SecurityEvent } from './security-events.js';
import type { Session, SessionStore, TokenRefusal } from './session-store.js';
import { envelopeReceiptStatement, loginStatement } from './statements.js';

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

/** Verifies a detached CMS signature made by exactly the TLS certificate. */
async function signedBy(signatureB64: string, content: Uint8Array, cc: ClientCert): Promise<boolean> {
  const sig = Buffer.from(signatureB64, 'base64');
  if (sig.length === 0) return false;
  try {
    const r = await verifyDetached(new Uint8Array(sig), content, { expectedSigner: cc.cert });
    return r.ok;
  } catch {
    // Malformed CMS is a failed proof, not a server error.
    return false;
  }
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

  /** Refused attempts, tokens and certificates → the audit trail, bounded (auth/refusals.ts). */
  readonly refusals: RefusalAudit;

  constructor(private readonly d: LoginServiceDeps) {
    this.refusals = new RefusalAudit({ audit: d.audit, now: d.now });
    d.sessions.onRefused((r) => this.#tokenRefused(r));
  }

  /** Writes the refusal counts still held (call before the vault closes). */
  close(): Promise<void> {
    return this.refusals.close();
  }

  /**
   * How the audit trail names `login`: itself when it has an account, else its keyed hash. The
   * hash is computed either way, so both cost the same.
   */
  async #auditName(login: string): Promise<string> {
    const hidden = hiddenLoginName(this.d.loginHash, login);
    return (await this.d.accounts.get(login)) ? login : hidden;
  }

  /** Who holds the certificate `cc` (its account's login), for the actor of a refusal. */
  async #holder(cc: { fingerprint: string; serial: string }): Promise<string> {
    // On a refusal path: a failed lookup must not turn the refusal's answer into a 500.
    const rec = await this.d.certificates.byFingerprint(cc.fingerprint).catch(() => undefined);
    return rec?.login ?? `certificate:${cc.serial}`;
  }

  /** A login attempt by `login` over the certificate `certSerial`, refused before its password was checked. */
  async #loginRefused(login: string, reason: Refusal['reason'], certSerial: string, peer?: string): Promise<void> {
    const name = await this.#auditName(login);
    const detail = { certificate: certSerial, peer: peer ?? null };
    await this.refusals.record({ type: 'login.refused', reason, actor: name, subject: name, detail });
  }

  async #tokenRefused(r: TokenRefusal): Promise<void> {
    const { why, about } = r.error;
    await this.refusals.record({
      type: 'session.refused',
      reason: why,
      actor: await this.#holder(r.presented),
      ...(about ? { subject: about.login } : {}),
      detail: {
        certificate: r.presented.serial,
        ...(why === 'other-certificate' && about ? { sessionCertificate: about.certSerial } : {}),
        ...(why === 'ended' && about?.endReason ? { endReason: about.endReason } : {}),
        peer: r.peer,
      },
    });
  }

  /**
   * A request refused at the client-certificate check (revoked, expired, not yet valid): every
   * login or challenge tried with such a certificate among them. Wired by app.ts.
   */
  async certificateRefused(cc: ClientCert, reason: CertificateRefusalReason, peer?: string | null): Promise<void> {
    await this.refusals.record({
      type: 'certificate.refused',
      reason,
      actor: await this.#holder(cc),
      detail: { certificate: cc.serial, peer: peer ?? null },
    });
  }

  private event(type: SecurityEvent['type'], actor: string, subject: string, detail?: SecurityEvent['detail']): SecurityEvent {
    return { type, at: this.d.now(), actor, subject, ...(detail ? { detail } : {}) };
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
    await this.#recordFailure(login, { reason, serial: cc.serial, peer: peer ?? null }, { cc, admission });
    throw new AuthFailedError(reason);
  }

  /**
   * One failed password check of `login`: counted toward the lock of the login (and of the
   * certificate `cc` it came over), audited as `login.failed` (and `login.locked` when it locked
   * the login, `certificate.locked` when it locked the certificate; with `endSessions`, the
   * login's sessions end then too). Counters and entries commit in one transaction, the same
   * writes whether the login has an account or not. `admission` (the attempt's, over `cc`) is
   * released once they have committed.
   * @returns whether it locked the login.
   * @throws AccountLockedError (`certificate`) when `cc` is locked already: nothing is written.
   */
  async #recordFailure(
    login: string,
    detail: SecurityEvent['detail'],
    o: { endSessions?: boolean; cc?: ClientCert; admission?: Admission } = {},
  ): Promise<boolean> {
    return this.d.db.transaction(async () => {
      const r = await this.d.lockout.recordFailure(login, o.cc?.fingerprint, o.admission);
      const name = await this.#auditName(login);
      const events = [this.event('login.failed', name, name, detail)];
      if (r.locked) events.push(this.event('login.locked', 'system', name));
      if (r.certificateLocked && o.cc) {
        events.push(
          this.event('certificate.locked', 'system', await this.#holder(o.cc), {
            serial: o.cc.serial,
            until: r.certificateLockedUntil?.toISOString() ?? null,
          }),
        );
      }
      if (r.locked && o.endSessions) await this.d.sessions.endForLogin(login, 'account-locked');
      await this.d.audit.append(events);
      return r.locked;
    });
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
        await this.#loginRefused(login, err.scope === 'certificate' ? 'certificate-locked' : 'locked', cc.serial, peer);
      }
      if (err instanceof NonceInvalidError) await this.#loginRefused(login, `nonce-${err.why}`, cc.serial, peer);
      throw err;
    }
    try {
      return await this.#checkAndOpen(input, cc, admission, peer);
    } catch (err) {
      // The certificate locked while this attempt was in flight: counted as nothing, refused as
      // the attempts after it are.
      if (err instanceof AccountLockedError) await this.#loginRefused(login, 'certificate-locked', cc.serial, peer);
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
   * First login: replaces the envelope password and stores the signed envelope receipt.
   * Throws PASSWORD_CHANGE_NOT_PENDING, PASSWORD_WEAK, RECEIPT_INVALID or ENVELOPE_EXPIRED.
   */
  firstLogin(account: AccountRecord, session: Session, input: { newPassword: string; receipt: string }, cc: ClientCert): Promise<void> {
    return this.#perLogin.run(account.login, () => this.#firstLogin(account, session, input, cc));
  }

  async #firstLogin(account: AccountRecord, session: Session, input: { newPassword: string; receipt: string }, cc: ClientCert): Promise<void> {
    if (!account.mustChangePassword) throw new PasswordChangeNotPendingError();
    const env = await this.d.accounts.pendingEnvelope(account.login);
    if (!env) throw new PasswordChangeNotPendingError();
    if (env.expiresAt.getTime() <= this.d.now().getTime()) throw new EnvelopeExpiredError(env.serial, env.expiresAt);
    checkNewPassword(input.newPassword, { login: account.login });
    // The envelope password is not kept in clear: compare through its hash.
    if (await this.d.hasher.verify(account.passwordHash, input.newPassword))
      throw new PasswordWeakError('it must not be the envelope password');
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
        this.event('envelope.used', account.login, account.login, { serial: env.serial, certificate: cc.serial }),
        this.event('password.changed', account.login, account.login, { first: true }),
      ]);
    });
  }

  /** Changes a chosen password; other sessions of the account end. Throws PASSWORD_WRONG, PASSWORD_WEAK. */
  changePassword(account: AccountRecord, session: Session, input: { currentPassword: string; newPassword: string }): Promise<void> {
    return this.#perLogin.run(account.login, () => this.#changePassword(account, session, input));
  }

  async #changePassword(
    account: AccountRecord,
    session: Session,
    input: { currentPassword: string; newPassword: string },
  ): Promise<void> {
    // A wrong current password counts as a failed login: a session in someone else's hands must
    // not become a way to guess the password without limit. The lock also ends the sessions.
    try {
      await this.d.lockout.assertNotLocked(account.login);
    } catch (err) {
      if (err instanceof AccountLockedError) await this.#loginRefused(account.login, 'locked', session.certSerial);
      throw err;
    }
    if (!(await this.d.hasher.verify(account.passwordHash, input.currentPassword))) {
      await this.#recordFailure(account.login, { reason: 'password-change-wrong-current' }, { endSessions: true });
      throw new PasswordWrongError();
    }
    checkNewPassword(input.newPassword, { login: account.login });
    if (input.newPassword === input.currentPassword) throw new PasswordWeakError('it must differ from the current password');
    const hash = await this.d.hasher.hash(input.newPassword);
    await this.d.db.transaction(async () => {
      // Written only over the password this request checked: a reset that landed meanwhile wins.
      if (!(await this.d.accounts.replacePassword(account.login, { hash: account.passwordHash, mustChange: false }, { hash, mustChange: false }))) {
        throw new AccountChangedError('its password was reset or changed meanwhile; nothing was changed, log in again');
      }
      await this.d.sessions.endForLogin(account.login, 'password-changed', session.id);
      await this.d.audit.append([this.event('password.changed', account.login, account.login, { first: false })]);
    });
  }

  /** Ends the session. */
  async logout(account: AccountRecord, session: Session): Promise<void> {
    await this.d.sessions.end(session.id, 'logout');
    await this.d.audit.append([this.event('logout', account.login, account.login)]);
  }
}
