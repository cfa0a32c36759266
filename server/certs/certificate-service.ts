/**
 * Officer operations on certificates: issue from a CSR (the key never leaves the workstation),
 * issue as a password-protected PKCS#12, revoke with a reason, publish the CRL, list a user's;
 * and the CRL's republication before it goes stale ({@link CertificateService.refreshCrlIfDue},
 * driven by crl-refresher.ts while the server runs).
 *
 * A revocation takes effect at once: the in-memory revoked set (checked on every request) is
 * updated, the certificate's sessions end, and a new CRL is published. Should that publication
 * fail after the commit (a full disk) or never run (a crash), the next refresh check (every
 * minute, and at start) or a repeated revocation publishes one: a CRL lacking a revoked
 * certificate counts as due. The revocation time recorded (database, API answer, CRL entry) is
 * the request's time rounded up to the next whole second ({@link revocationTime}).
 */
import { randomBytes } from 'node:crypto';
import {
  Certificate,
  createPkcs12,
  Crl,
  generateKeyPair,
  type CryptoKey,
  type Issuer,
  type RevocationReason,
} from '../../pki/index.js';
import { assertNamesFitCertificate } from '../accounts/account-service.js';
import type { AccountRecord, AccountStore } from '../accounts/account-store.js';
import { AccountStateError } from '../accounts/errors.js';
import { checkNewPassword } from '../accounts/password.js';
import type { AuditSink, SecurityEvent } from '../auth/security-events.js';
import type { SessionStore } from '../auth/session-store.js';
import { AccountChangedError } from '../auth/errors.js';
import { KeyedQueue } from '../keyed-queue.js';
import type { Db } from '../vault/index.js';
import {
  normaliseSerial,
  type CertificateRecord,
  type CertificateStore,
  type CrlRecord,
  type RevokedSet,
} from './certificate-store.js';
import {
  CertificateAlreadyRevokedError,
  CertificateNotFoundError,
  CrlNotPublishedError,
  LastOfficerCertificateError,
} from './errors.js';
import { assertKeyMayBeCertified, spkiSha256 } from './key-reuse.js';

/** Dependencies of {@link CertificateService}. */
export interface CertificateServiceDeps {
  db: Db;
  accounts: AccountStore;
  certificates: CertificateStore;
  sessions: SessionStore;
  revoked: RevokedSet;
  issuer: Issuer;
  audit: AuditSink;
  now: () => Date;
  org: string;
  crlValidityMs: number;
  /** Validity of staff certificates in days (pki default 365). */
  staffValidityDays?: number;
}

/** A certificate as listed by the API. */
export interface CertificateView {
  serial: string;
  notBefore: string;
  notAfter: string;
  status: 'active' | 'revoked';
  clearance: string;
  revokedAt?: string;
  reason?: RevocationReason;
}

export function certificateView(r: CertificateRecord): CertificateView {
  return {
    serial: r.serial,
    notBefore: r.notBefore.toISOString(),
    notAfter: r.notAfter.toISOString(),
    status: r.status,
    clearance: r.clearance,
    ...(r.revokedAt ? { revokedAt: r.revokedAt.toISOString() } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
  };
}

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

/** Whether `crl` has used half its validity (or more) at `now`: time to publish the next one. */
export function crlRefreshDue(crl: Pick<CrlRecord, 'thisUpdate' | 'nextUpdate'>, now: Date): boolean {
  const half = (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2;
  return now.getTime() >= crl.thisUpdate.getTime() + half;
}

/** A random PKCS#12 password: 24 base64url characters (144 bits). */
export function newP12Password(random: (n: number) => Buffer = randomBytes): string {
  return random(18).toString('base64url');
}

/** A revocation's answer: the certificate, and the others of its key revoked with it (keyCompromise). */
export type Revoked = CertificateRecord & { sameKey: string[] };

/** Certificate lifecycle for accounts. */
export class CertificateService {
  /**
   * CRLs are published one at a time. Two at once (two revocations, or a revocation and a
   * clearance change) read the same last number and the same revoked list: the second insert
   * failed on the number, and the CRL that was kept lacked the other revocation.
   */
  readonly #crl = new KeyedQueue();

  /** The latest CRL, parsed once per number: the refresher asks about it every minute. */
  #parsed?: { number: number; crl: Crl };

  constructor(private readonly d: CertificateServiceDeps) {}

  private event(type: SecurityEvent['type'], actor: string, subject: string, detail?: SecurityEvent['detail']): SecurityEvent {
    return { type, at: this.d.now(), actor, subject, ...(detail ? { detail } : {}) };
  }

  /** The issuing CA certificate first, then the root, as PEM. */
  chainPem(): string {
    return this.d.issuer.chain.map((c) => c.pem).join('');
  }

  private async issuable(login: string): Promise<AccountRecord> {
    const a = await this.d.accounts.require(login);
    // Before any key or CSR work: the officer learns to shorten the names (an account from before
    // the 64-character cap), not pki's INVALID_PARAMETER about an "organizationalUnit".
    assertNamesFitCertificate(a);
    if (a.status === 'disabled') throw new AccountStateError(login, 'active', 'disabled');
    return a;
  }

  private params(a: AccountRecord) {
    return {
      fullName: a.fullName,
      login: a.login,
      organization: this.d.org,
      department: a.department,
      clearance: a.clearance,
      ...(this.d.staffValidityDays ? { validityDays: this.d.staffValidityDays } : {}),
    };
  }

  private async record(cert: Certificate, a: AccountRecord, officer: string, how: 'csr' | 'p12'): Promise<void> {
    await this.d.db.transaction(async () => {
      // The certificate was made from the account as read before signing (~0.1–0.3 s). A clearance
      // change or a disable in between would leave an active certificate that carries the old
      // clearance (messaging trusts the clearance in the certificate): refuse, record nothing.
      const now = await this.d.accounts.require(a.login);
      if (now.clearance !== a.clearance || now.status === 'disabled') {
        throw new AccountChangedError(
          now.status === 'disabled'
            ? 'it was disabled while the certificate was made; nothing was recorded'
            : `its clearance changed to ${now.clearance} while the certificate was made; nothing was recorded, issue it again`,
        );
      }
      // Here, not before signing: inside the transaction two issuances of one key cannot both pass.
      const spki = spkiSha256(cert);
      await assertKeyMayBeCertified(this.d.certificates, a.login, spki);
      await this.d.certificates.add({
        spkiSha256: spki,
        serial: cert.serialNumber,
        login: a.login,
        fingerprint: cert.fingerprint,
        der: Buffer.from(cert.der),
        clearance: a.clearance,
        notBefore: cert.notBefore,
        notAfter: cert.notAfter,
        issuedAt: this.d.now(),
        issuedBy: officer,
      });
      await this.d.audit.append([
        this.event('certificate.issued', officer, a.login, { serial: cert.serialNumber, clearance: a.clearance, how }),
      ]);
    });
  }

  /**
   * A certificate for the key in `csrPem`; identity and clearance come from the account. The key
   * must be new, or the same login's and never revoked as compromised (key-reuse.ts).
   * @throws AccountNotFoundError, AccountStateError, KeyCompromisedError, KeyInUseError, and pki's
   *   CSR errors (MALFORMED_INPUT, CSR_BAD_SIGNATURE, WRONG_ALGORITHM, UNKNOWN_ALGORITHM).
   */
  async issueFromCsr(login: string, csrPem: string, officer: string): Promise<{ certificate: Certificate; chainPem: string }> {
    const a = await this.issuable(login);
    const cert = await this.d.issuer.issueFromCsr(csrPem, this.params(a));
    await this.record(cert, a, officer, 'csr');
    return { certificate: cert, chainPem: this.chainPem() };
  }

  /**
   * A fresh key pair generated here and returned once, with its certificate and chain, in a
   * PKCS#12 protected by `password` (or a generated one). The key is not kept.
   */
  async issuePkcs12(
    login: string,
    officer: string,
    password?: string,
  ): Promise<{ p12: Uint8Array; password: string; certificate: Certificate; key: CryptoKey }> {
    const a = await this.issuable(login);
    // A chosen password guards a key as the account password guards the account, and the file
    // travels; it meets the same policy (the envelope-password rule does not apply).
    if (password !== undefined) checkNewPassword(password, { login: a.login });
    const keys = await generateKeyPair(this.d.issuer.profile);
    const cert = await this.d.issuer.issueStaffCertificate({ ...this.params(a), publicKey: keys.publicKey });
    const pw = password ?? newP12Password();
    const p12 = await createPkcs12({
      key: keys.privateKey,
      cert,
      chain: this.d.issuer.chain,
      password: pw,
      friendlyName: a.login,
    });
    await this.record(cert, a, officer, 'p12');
    return { p12, password: pw, certificate: cert, key: keys.privateKey };
  }

  /** The login's certificates, oldest first. @throws AccountNotFoundError */
  async list(login: string): Promise<CertificateRecord[]> {
    await this.d.accounts.require(login);
    return this.d.certificates.ofLogin(login);
  }

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
      await this.d.audit.append([this.event('certificate.revoked', officer, rec.login, { serial: s, reason })]);
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
      await this.d.audit.append([this.event('certificate.revoked', officer, c.login, { serial: c.serial, reason: 'keyCompromise', sameKeyAs: of })]);
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
        this.event('certificate.revoked', officer, rec.login, { serial: rec.serial, reason: 'keyCompromise', previousReason: rec.reason ?? 'unspecified' }),
      ]);
      await this.#revokeSameKey(siblings, rec.serial, at, officer);
      return true;
    });
    // Another officer recorded the compromise meanwhile: theirs stands.
    if (!changed) return this.#alreadyRevoked(rec.serial, rec.revokedAt ?? at, officer);
    for (const c of siblings) this.d.revoked.add(c.serial);
    try {
      // Always a new CRL: the serial is listed already, with the old reason.
      await this.#crl.run('crl', () => this.#publishCrl(officer));
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
   * Publishes a CRL unless the latest one lists `serial` already. Decided in the publication queue:
   * of concurrent revocations of one serial (the winner and the losers), only the first publishes.
   * @throws CrlNotPublishedError: the revocation is recorded, its CRL is not out yet
   */
  async #publishUnlisted(serial: string, revokedAt: Date, officer: string): Promise<void> {
    try {
      await this.#crl.run('crl', async () => {
        if (!(await this.#unlisted(await this.d.certificates.latestCrl(), [serial]))) return;
        await this.#publishCrl(officer);
      });
    } catch (cause) {
      throw new CrlNotPublishedError(`certificate ${serial} is revoked (since ${revokedAt.toISOString()})`, cause);
    }
  }

  /** Whether `crl` (none: true) lacks any of `serials`. */
  async #unlisted(crl: CrlRecord | undefined, serials: readonly string[]): Promise<boolean> {
    if (!crl) return true;
    if (this.#parsed?.number !== crl.number) this.#parsed = { number: crl.number, crl: Crl.fromDer(crl.der) };
    const parsed = this.#parsed.crl;
    return serials.some((s) => !parsed.find(s));
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
      await this.d.audit.append([this.event('certificate.revoked', officer, login, { serial: r.serial, reason })]);
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

  /** Signs and stores a new CRL listing every revoked certificate (one publication at a time). */
  publishCrl(officer: string): Promise<CrlRecord> {
    return this.#crl.run('crl', () => this.#publishCrl(officer));
  }

  /**
   * Publishes a new CRL, exactly as {@link publishCrl} does (audit entry `crl.published` by
   * `actor`), when there is none, the latest has used half its validity at the service clock
   * (stale ones included), or the latest lacks a revoked certificate: a revocation whose own
   * publication failed (a full disk) or was cut by a crash after its commit is out within a check,
   * not days later. Decided in the publication queue, so a publication just queued ahead (a
   * revocation, `sigil crl publish`) counts and no second one follows it.
   * @returns the new CRL, or undefined when the latest is still fresh and complete.
   */
  refreshCrlIfDue(actor = 'system'): Promise<CrlRecord | undefined> {
    return this.#crl.run('crl', async () => {
      const last = await this.d.certificates.latestCrl();
      const due = !last || crlRefreshDue(last, this.d.now()) || (await this.#unlisted(last, await this.d.certificates.revokedSerials()));
      return due ? this.#publishCrl(actor) : undefined;
    });
  }

  async #publishCrl(officer: string): Promise<CrlRecord> {
    const revoked = await this.d.certificates.revoked();
    const last = await this.d.certificates.latestCrl();
    const number = (last?.number ?? 0) + 1;
    const thisUpdate = this.d.now();
    const nextUpdate = new Date(thisUpdate.getTime() + this.d.crlValidityMs);
    const crl = await this.d.issuer.createCrl({
      revoked: revoked.map((r) => ({
        serialNumber: r.serial,
        revocationDate: r.revokedAt ?? thisUpdate,
        reason: r.reason ?? 'unspecified',
      })),
      crlNumber: BigInt(number),
      thisUpdate,
      nextUpdate,
    });
    const rec: CrlRecord = { number, der: Buffer.from(crl.der), thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate };
    await this.d.db.transaction(async () => {
      await this.d.certificates.addCrl(rec);
      await this.d.audit.append([this.event('crl.published', officer, 'crl', { count: revoked.length, crlNumber: number })]);
    });
    return rec;
  }
}
