/**
 * Attempts that did not get in, in the audit trail: failed password checks, counted toward the
 * lock (auth/lockout.ts) one `login.failed` entry each, and refusals (locked, bad nonce, refused
 * tokens and certificates), bounded through {@link RefusalAudit}. Used by login-service.ts and
 * password-change.ts.
 *
 * The audit trail names a login that has an account in clear and any other by its keyed hash
 * (auth/login-hash.ts): what a client types as a login (an envelope password in the wrong field)
 * must not stay in clear in a trail that can never be cleaned.
 */
import type { ClientCert } from '../middleware/types.js';
import type { Admission } from './lockout.js';
import { hiddenLoginName } from './login-hash.js';
import type { LoginServiceDeps } from './login-service.js';
import { RefusalAudit, type CertificateRefusalReason, type Refusal } from './refusals.js';
import { securityEvent, type SecurityEvent } from './security-events.js';
import type { TokenRefusal } from './session-store.js';

/** Dependencies of {@link FailedAttempts}: those of the login service it needs. */
export type FailedAttemptsDeps = Pick<LoginServiceDeps, 'db' | 'accounts' | 'certificates' | 'sessions' | 'lockout' | 'audit' | 'now' | 'loginHash'>;

/** Failed and refused authentication → the lockout counters and the audit trail. */
export class FailedAttempts {
  /** Refused attempts, tokens and certificates → the audit trail, bounded (auth/refusals.ts). */
  readonly refusals: RefusalAudit;

  constructor(private readonly d: FailedAttemptsDeps) {
    this.refusals = new RefusalAudit({ audit: d.audit, now: d.now });
  }

  /** Stamped when called: `certificate.locked` reads the clock after its holder lookup, as it always has. */
  private event(type: SecurityEvent['type'], actor: string, subject: string, detail?: SecurityEvent['detail']): SecurityEvent {
    return securityEvent(this.d.now(), type, actor, subject, detail);
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
  async loginRefused(login: string, reason: Refusal['reason'], certSerial: string, peer?: string): Promise<void> {
    const name = await this.#auditName(login);
    const detail = { certificate: certSerial, peer: peer ?? null };
    await this.refusals.record({ type: 'login.refused', reason, actor: name, subject: name, detail });
  }

  /** A bearer token the session store refused (SessionStore.onRefused). */
  async tokenRefused(r: TokenRefusal): Promise<void> {
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
   * login or challenge tried with such a certificate among them.
   */
  async certificateRefused(cc: ClientCert, reason: CertificateRefusalReason, peer?: string | null): Promise<void> {
    await this.refusals.record({
      type: 'certificate.refused',
      reason,
      actor: await this.#holder(cc),
      detail: { certificate: cc.serial, peer: peer ?? null },
    });
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
  async recordFailure(
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
}
