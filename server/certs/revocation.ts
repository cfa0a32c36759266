/**
 * Revoking certificates: one by serial (with keyCompromise, every other certificate of its key
 * too), all of a login's (a clearance change), and the guard that keeps one active officer able
 * to log in. CRLs go out through crl-publisher.ts.
 *
 * A revocation takes effect at once: the in-memory revoked set (checked on every request) is
 * updated, the certificate's sessions end, and a new CRL is published. Should that publication
 * fail after the commit (a full disk) or never run (a crash), the next refresh check (every
 * minute, and at start) or a repeated revocation publishes one: a CRL lacking a revoked
 * certificate counts as due. The revocation time recorded (database, API answer, CRL entry) is
 * the request's time rounded up to the next whole second ({@link revocationTime}).
 */
import { Certificate, type RevocationReason } from '../../pki/index.js';
import { securityEvent } from '../auth/security-events.js';
import { normaliseSerial, type CertificateRecord } from './certificate-store.js';
import type { CertificateServiceDeps } from './certificate-service.js';
import type { CrlPublisher } from './crl-publisher.js';
import { CertificateAlreadyRevokedError, CertificateNotFoundError, CrlNotPublishedError, LastOfficerCertificateError } from './errors.js';
import { spkiSha256 } from './key-reuse.js';

/** Dependencies of {@link Revocations}: those of the certificate service it needs. */
export type RevocationsDeps = Pick<CertificateServiceDeps, 'db' | 'certificates' | 'sessions' | 'revoked' | 'audit' | 'now'>;

/**
 * The revocation time recorded for a revocation requested at `requested`: the next whole second
 * after it. A CRL carries whole seconds only (RFC 5280 §5.1.2.6 UTCTime/GeneralizedTime, no
 * fraction), and a reader judges a message revoked when revocationDate <= its receipt time.
 * Rounded down, a message accepted at 12:00:00.579 looked revoked by a revocation requested at
 * 12:00:00.823 (the CRL said 12:00:00). Rounded up, every message accepted before the request has
 * receivedAt < revocationDate. Nothing is accepted in between: login, requests and sending check
 * the certificate's status (the in-memory revoked set, the stored status), which changes at the
 * request, not at the recorded time.
 */
export function revocationTime(requested: Date): Date {
  return new Date((Math.floor(requested.getTime() / 1000) + 1) * 1000);
}

/** A revocation's answer: the certificate, and the others of its key revoked with it (keyCompromise). */
export type Revoked = CertificateRecord & { sameKey: string[] };

/** Revocation of certificates, and the last officer's guard. */
export class Revocations {
  constructor(
    private readonly d: RevocationsDeps,
    private readonly crl: CrlPublisher,
  ) {}

  /**
   * Revokes one certificate, ends its sessions, and publishes a new CRL. With keyCompromise, every
   * other active certificate of its key goes with it; a certificate revoked before for another
   * reason is then recorded as compromised ({@link #compromised}).
   *
   * The status check is a compare-and-set inside the transaction: of several revocations of one
   * serial at once, one wins; the others get CERTIFICATE_ALREADY_REVOKED and change nothing (no
   * reason overwritten, no extra CRL).
   * @throws CertificateNotFoundError, CertificateAlreadyRevokedError (after publishing a CRL
   *   that lists it, if none did yet), LastOfficerCertificateError (the last active officer's last
   *   certificate), CrlNotPublishedError (revoked and in force, but its CRL is not out yet)
   */
  async revoke(serial: string, reason: RevocationReason, officer: string): Promise<Revoked> {
    const s = normaliseSerial(serial);
    const rec = await this.d.certificates.get(s);
    if (!rec) throw new CertificateNotFoundError(s);
    if (rec.status === 'revoked' && rec.revokedAt) {
      // Revoked before for another reason (superseded by a renewal, say), then reported
      // compromised: the key's other certificates must go, and the key never be certified again.
      if (reason === 'keyCompromise' && rec.reason !== 'keyCompromise') return this.#compromised(rec, officer);
      return this.#alreadyRevoked(s, rec.revokedAt, officer);
    }
    const requested = this.d.now();
    const at = revocationTime(requested);
    const siblings: CertificateRecord[] = [];
    const won = await this.d.db.transaction(async () => {
      if (reason === 'keyCompromise') siblings.push(...(await this.#sameKey(rec)));
      await this.#keepLastOfficer([s, ...siblings.map((c) => c.serial)], requested);
      if (!(await this.d.certificates.revoke(s, at, reason))) return false;
      await this.d.sessions.endForCertificate(s, 'certificate-revoked');
      await this.d.audit.append([securityEvent(this.d.now(), 'certificate.revoked', officer, rec.login, { serial: s, reason })]);
      await this.#revokeSameKey(siblings, s, at, officer);
      return true;
    });
    if (!won) {
      const now = await this.d.certificates.get(s);
      // Lost to a revocation for another reason at the same moment: the compromise still counts.
      if (reason === 'keyCompromise' && now && now.reason !== 'keyCompromise') return this.#compromised(now, officer);
      return this.#alreadyRevoked(s, now?.revokedAt ?? at, officer);
    }
    this.d.revoked.add(s);
    for (const c of siblings) this.d.revoked.add(c.serial);
    await this.#publishUnlisted(s, at, officer);
    return { ...((await this.d.certificates.get(s)) as CertificateRecord), sameKey: siblings.map((c) => c.serial) };
  }

  /**
   * A compromised key is compromised in every certificate of it (renewals keep the key): the
   * other active ones, which go with it in the same transaction, or the holder of the copy signs
   * on with the next one.
   */
  async #sameKey(rec: CertificateRecord): Promise<CertificateRecord[]> {
    const spki = spkiSha256(Certificate.fromDer(rec.der));
    return (await this.d.certificates.ofKey(spki)).filter((c) => c.serial !== rec.serial && c.status === 'active');
  }

  /** Revokes (keyCompromise) `siblings` of the compromised certificate `of`, inside the caller's transaction. */
  async #revokeSameKey(siblings: readonly CertificateRecord[], of: string, at: Date, officer: string): Promise<void> {
    for (const c of siblings) {
      if (!(await this.d.certificates.revoke(c.serial, at, 'keyCompromise'))) continue;
      await this.d.sessions.endForCertificate(c.serial, 'certificate-revoked');
      await this.d.audit.append([securityEvent(this.d.now(), 'certificate.revoked', officer, c.login, { serial: c.serial, reason: 'keyCompromise', sameKeyAs: of })]);
    }
  }

  /**
   * keyCompromise for a certificate revoked before for another reason: its reason becomes
   * keyCompromise (its time stays), which also bars the key from being certified again
   * (key-reuse.ts), and every other active certificate of the key is revoked; a new CRL carries
   * both. Answers the record (200), as a first revocation does.
   */
  async #compromised(rec: CertificateRecord, officer: string): Promise<Revoked> {
    const requested = this.d.now();
    const at = revocationTime(requested);
    const siblings: CertificateRecord[] = [];
    const changed = await this.d.db.transaction(async () => {
      siblings.push(...(await this.#sameKey(rec)));
      await this.#keepLastOfficer(siblings.map((c) => c.serial), requested);
      if (!(await this.d.certificates.markCompromised(rec.serial))) return false;
      await this.d.audit.append([
        securityEvent(this.d.now(), 'certificate.revoked', officer, rec.login, { serial: rec.serial, reason: 'keyCompromise', previousReason: rec.reason ?? 'unspecified' }),
      ]);
      await this.#revokeSameKey(siblings, rec.serial, at, officer);
      return true;
    });
    // Another officer recorded the compromise meanwhile: theirs stands.
    if (!changed) return this.#alreadyRevoked(rec.serial, rec.revokedAt ?? at, officer);
    for (const c of siblings) this.d.revoked.add(c.serial);
    try {
      // Always a new CRL: the serial is listed already, with the old reason.
      await this.crl.publish(officer);
    } catch (cause) {
      throw new CrlNotPublishedError(`certificate ${rec.serial} is recorded as compromised`, cause);
    }
    return { ...((await this.d.certificates.get(rec.serial)) as CertificateRecord), sameKey: siblings.map((c) => c.serial) };
  }

  /**
   * The answer to revoking a revoked certificate: CERTIFICATE_ALREADY_REVOKED, once a CRL lists it.
   * A revocation whose publication failed (or was cut by a crash) is published here, so retrying
   * the revocation is the officer's way to finish it.
   */
  async #alreadyRevoked(serial: string, revokedAt: Date, officer: string): Promise<never> {
    await this.#publishUnlisted(serial, revokedAt, officer);
    throw new CertificateAlreadyRevokedError(serial, revokedAt);
  }

  /**
   * Publishes a CRL unless the latest one lists `serial` already (CrlPublisher.publishUnlisted).
   * @throws CrlNotPublishedError: the revocation is recorded, its CRL is not out yet
   */
  async #publishUnlisted(serial: string, revokedAt: Date, officer: string): Promise<void> {
    try {
      await this.crl.publishUnlisted(serial, officer);
    } catch (cause) {
      throw new CrlNotPublishedError(`certificate ${serial} is revoked (since ${revokedAt.toISOString()})`, cause);
    }
  }

  /**
   * Revokes (`superseded`) every active certificate of `login`; returns how many. Runs inside the
   * caller's transaction (a clearance change). Refuses, before changing anything, to take the
   * last active officer's last certificate.
   * @throws LastOfficerCertificateError
   */
  async revokeAllOf(login: string, reason: RevocationReason, officer: string): Promise<number> {
    const active = (await this.d.certificates.ofLogin(login)).filter((r) => r.status === 'active');
    const requested = this.d.now();
    const at = revocationTime(requested);
    await this.#keepLastOfficer(active.map((r) => r.serial), requested);
    let count = 0;
    for (const r of active) {
      if (!(await this.d.certificates.revoke(r.serial, at, reason))) continue; // revoked meanwhile
      await this.d.sessions.endForCertificate(r.serial, 'certificate-revoked');
      await this.d.audit.append([securityEvent(this.d.now(), 'certificate.revoked', officer, login, { serial: r.serial, reason })]);
      this.d.revoked.add(r.serial);
      count++;
    }
    return count;
  }

  /**
   * Refuses a revocation of `serials` that would leave no active officer with an active, valid
   * certificate: nobody could log in to issue, revoke or publish a CRL again. Call inside the
   * revocation's transaction, so two officers revoking each other's last certificates at once
   * cannot both pass.
   * @throws LastOfficerCertificateError
   */
  async #keepLastOfficer(serials: readonly string[], at: Date): Promise<void> {
    const officers = await this.d.certificates.activeSerialsOfRole('officer', at);
    const taken = new Set(serials.map(normaliseSerial));
    const hit = officers.filter((s) => taken.has(s));
    if (hit.length === 0 || hit.length < officers.length) return;
    const rec = await this.d.certificates.get(hit[0] as string);
    throw new LastOfficerCertificateError(hit[0] as string, rec?.login ?? '?');
  }

  /**
   * Refuses to take `login` out of service (disabling the account) when that leaves no active
   * officer with an active, valid certificate: the same lockout as revoking the last officer's
   * last certificate. Call inside the account change's transaction.
   * @throws LastOfficerCertificateError
   */
  async keepOfficerBesides(login: string): Promise<void> {
    // #keepLastOfficer looks only at those of them that are active officer certificates.
    await this.#keepLastOfficer((await this.d.certificates.ofLogin(login)).map((r) => r.serial), this.d.now());
  }
}
