/**
 * Officer operations on certificates: issue from a CSR (the key never leaves the workstation),
 * issue as a password-protected PKCS#12, revoke with a reason, publish the CRL, list a user's.
 *
 * A revocation takes effect at once: the in-memory revoked set (checked on every request) is
 * updated, the certificate's sessions end, and a new CRL is published.
 */
import { randomBytes } from 'node:crypto';
import {
  createPkcs12,
  generateKeyPair,
  type Certificate,
  type CryptoKey,
  type Issuer,
  type RevocationReason,
} from '../../pki/index.js';
import type { AccountRecord, AccountStore } from '../accounts/account-store.js';
import { AccountStateError } from '../accounts/errors.js';
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
import { CertificateAlreadyRevokedError, CertificateNotFoundError } from './errors.js';

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
  /**
   * CRLs are published one at a time. Two at once (two revocations, or a revocation and a
   * clearance change) read the same last number and the same revoked list: the second insert
   * failed on the number, and the CRL that was kept lacked the other revocation.
   */
  readonly #crl = new KeyedQueue();

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
      await this.d.certificates.add({
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
   * A certificate for the key in `csrPem`; identity and clearance come from the account.
   * @throws AccountNotFoundError, AccountStateError, and pki's CSR errors (MALFORMED_INPUT,
   *   CSR_BAD_SIGNATURE, WRONG_ALGORITHM, UNKNOWN_ALGORITHM).
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
   * Revokes one certificate, ends its sessions, and publishes a new CRL.
   * @throws CertificateNotFoundError, CertificateAlreadyRevokedError
   */
  async revoke(serial: string, reason: RevocationReason, officer: string): Promise<CertificateRecord> {
    const s = normaliseSerial(serial);
    const rec = await this.d.certificates.get(s);
    if (!rec) throw new CertificateNotFoundError(s);
    if (rec.status === 'revoked' && rec.revokedAt) throw new CertificateAlreadyRevokedError(s, rec.revokedAt);
    const at = this.d.now();
    await this.d.db.transaction(async () => {
      await this.d.certificates.revoke(s, at, reason);
      await this.d.sessions.endForCertificate(s, 'certificate-revoked');
      await this.d.audit.append([this.event('certificate.revoked', officer, rec.login, { serial: s, reason })]);
    });
    this.d.revoked.add(s);
    await this.publishCrl(officer);
    return (await this.d.certificates.get(s)) as CertificateRecord;
  }

  /** Revokes (`superseded`) every active certificate of `login`; returns how many. */
  async revokeAllOf(login: string, reason: RevocationReason, officer: string): Promise<number> {
    const active = (await this.d.certificates.ofLogin(login)).filter((r) => r.status === 'active');
    const at = this.d.now();
    for (const r of active) {
      await this.d.certificates.revoke(r.serial, at, reason);
      await this.d.sessions.endForCertificate(r.serial, 'certificate-revoked');
      await this.d.audit.append([this.event('certificate.revoked', officer, login, { serial: r.serial, reason })]);
      this.d.revoked.add(r.serial);
    }
    return active.length;
  }

  /** Signs and stores a new CRL listing every revoked certificate (one publication at a time). */
  publishCrl(officer: string): Promise<CrlRecord> {
    return this.#crl.run('crl', () => this.#publishCrl(officer));
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
