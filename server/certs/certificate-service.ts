/**
 * Officer operations on certificates: issue from a CSR (the key never leaves the workstation),
 * issue as a password-protected PKCS#12, list a user's; and the front of the rest of the
 * lifecycle, which lives beside it: revocation (revocation.ts: revoke with a reason, a login's
 * all, the last officer's guard) and the CRL (crl-publisher.ts: publish, and republish before it
 * goes stale, driven by crl-refresher.ts while the server runs through
 * {@link CertificateService.refreshCrlIfDue}).
 */
import { randomBytes } from 'node:crypto';
import {
  Certificate,
  createPkcs12,
  generateKeyPair,
  type CryptoKey,
  type Issuer,
  type RevocationReason,
} from '../../pki/index.js';
import { assertNamesFitCertificate } from '../accounts/account-service.js';
import type { AccountRecord, AccountStore } from '../accounts/account-store.js';
import { AccountStateError } from '../accounts/errors.js';
import { checkNewPassword } from '../accounts/password.js';
import { securityEvent, type AuditSink, type SecurityEvent } from '../auth/security-events.js';
import type { SessionStore } from '../auth/session-store.js';
import { AccountChangedError } from '../auth/errors.js';
import type { Db } from '../vault/index.js';
import type { CertificateRecord, CertificateStore, CrlRecord, RevokedSet } from './certificate-store.js';
import { CrlPublisher } from './crl-publisher.js';
import { assertKeyMayBeCertified, spkiSha256 } from './key-reuse.js';
import { Revocations, type Revoked } from './revocation.js';

// Moved out with the code they belong to; still exported here for existing importers.
export { crlRefreshDue } from './crl-publisher.js';
export { revocationTime, type Revoked } from './revocation.js';

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

/** A random PKCS#12 password: 24 base64url characters (144 bits). */
export function newP12Password(random: (n: number) => Buffer = randomBytes): string {
  return random(18).toString('base64url');
}

/** Certificate lifecycle for accounts. */
export class CertificateService {
  /** The one CRL publication queue: revocations and publications share it. */
  readonly #crl: CrlPublisher;

  readonly #revocations: Revocations;

  constructor(private readonly d: CertificateServiceDeps) {
    this.#crl = new CrlPublisher(d);
    this.#revocations = new Revocations(d, this.#crl);
  }

  private event(type: SecurityEvent['type'], actor: string, subject: string, detail?: SecurityEvent['detail']): SecurityEvent {
    return securityEvent(this.d.now(), type, actor, subject, detail);
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
   * Revokes one certificate, ends its sessions, and publishes a new CRL (Revocations.revoke).
   * @throws CertificateNotFoundError, CertificateAlreadyRevokedError, LastOfficerCertificateError,
   *   CrlNotPublishedError
   */
  revoke(serial: string, reason: RevocationReason, officer: string): Promise<Revoked> {
    return this.#revocations.revoke(serial, reason, officer);
  }

  /**
   * Revokes every active certificate of `login` inside the caller's transaction; returns how many
   * (Revocations.revokeAllOf).
   * @throws LastOfficerCertificateError
   */
  revokeAllOf(login: string, reason: RevocationReason, officer: string): Promise<number> {
    return this.#revocations.revokeAllOf(login, reason, officer);
  }

  /**
   * Refuses to take `login` out of service when that leaves no active officer with an active,
   * valid certificate (Revocations.keepOfficerBesides).
   * @throws LastOfficerCertificateError
   */
  keepOfficerBesides(login: string): Promise<void> {
    return this.#revocations.keepOfficerBesides(login);
  }

  /** Signs and stores a new CRL listing every revoked certificate (one publication at a time). */
  publishCrl(officer: string): Promise<CrlRecord> {
    return this.#crl.publish(officer);
  }

  /**
   * Publishes a new CRL, as {@link publishCrl} does, when the latest is missing, half used or lacks
   * a revoked certificate (CrlPublisher.refreshIfDue).
   * @returns the new CRL, or undefined when the latest is still fresh and complete.
   */
  refreshCrlIfDue(actor = 'system'): Promise<CrlRecord | undefined> {
    return this.#crl.refreshIfDue(actor);
  }
}
