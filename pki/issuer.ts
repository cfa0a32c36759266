/**
 * The `Issuer`: signs staff, TLS server and audit certificates and CRLs with the issuing CA's key.
 * Each certificate profile follows RFC 5280 §4.2; see pki/README.md for the choices.
 */
import type * as pkijs from 'pkijs';
import type { Clearance } from './clearance.js';
import { isClearance } from './clearance.js';
import type { Certificate } from './certificate.js';
import { keyId, signCertificate, validityUnder } from './certificate-builder.js';
import { CertificationRequest } from './csr.js';
import { buildCrl, type Crl, type RevokedEntry } from './crl.js';
import { InvalidParameterError, IssuerMismatchError, WrongAlgorithmError } from './errors.js';
import { basicConstraintsExtension, clearanceExtension, extKeyUsageExtension, keyUsageExtension, subjectAltNameExtension } from './extensions.js';
import { buildName, type DistinguishedName } from './names.js';
import { profileOfKey, type AlgorithmProfile } from './profiles.js';
import type { CryptoKey } from './webcrypto.js';

/** Identity and clearance of a staff member, decided by the security officer. */
export interface StaffCertificateParams {
  fullName: string;
  login: string;
  organization: string;
  department: string;
  clearance: Clearance;
  /** Default 365. */
  validityDays?: number;
}

export interface TlsServerCertificateParams {
  publicKey: CryptoKey;
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  /** Default 825. */
  validityDays?: number;
}

export interface AuditCertificateParams {
  publicKey: CryptoKey;
  commonName: string;
  /** Default 3650. */
  validityDays?: number;
}

export interface CreateCrlParams {
  revoked: RevokedEntry[];
  crlNumber: bigint;
  /** Default: now. */
  thisUpdate?: Date;
  nextUpdate: Date;
}

export interface IssuerOptions {
  cert: Certificate;
  key: CryptoKey;
  /** The issuing CA first, then up to the root. */
  chain: Certificate[];
  now?: () => Date;
  random?: (n: number) => Uint8Array;
}

/** Signs end-entity certificates and CRLs with an issuing CA's key. */
export class Issuer {
  readonly cert: Certificate;
  readonly #key: CryptoKey;
  readonly #chain: Certificate[];
  readonly #now: () => Date;
  readonly #random?: (n: number) => Uint8Array;
  readonly profile: AlgorithmProfile;

  /**
   * @throws IssuerMismatchError when `cert` is not a CA with keyCertSign, or `key` is not of its profile.
   */
  constructor(options: IssuerOptions) {
    if (!options.cert.isCA || !options.cert.keyUsage.includes('keyCertSign')) {
      throw new IssuerMismatchError(`expected a CA certificate with keyCertSign, got ${options.cert.subjectString}`);
    }
    const keyProfile = profileOfKey(options.key);
    if (options.key.type !== 'private' || keyProfile.name !== options.cert.profile) {
      throw new IssuerMismatchError(`expected a ${options.cert.profile} private key for ${options.cert.subjectString}, got a ${keyProfile.name} ${options.key.type} key`);
    }
    this.cert = options.cert;
    this.#key = options.key;
    this.#chain = [...options.chain];
    this.#now = options.now ?? (() => new Date());
    this.#random = options.random;
    this.profile = keyProfile;
  }

  /** The issuing CA certificate first, then its issuers up to the root. */
  get chain(): Certificate[] {
    return [...this.#chain];
  }

  #checkKey(publicKey: CryptoKey): void {
    const profile = profileOfKey(publicKey);
    if (profile.name !== this.profile.name) {
      throw new WrongAlgorithmError(`this appliance issues ${this.profile.name} keys only, got a ${profile.name} key`);
    }
  }

  #issue(subject: DistinguishedName, publicKey: CryptoKey, days: number, field: string, extensions: pkijs.Extension[]): Promise<Certificate> {
    this.#checkKey(publicKey);
    return signCertificate({
      subject: buildName(subject),
      issuer: this.cert.asn.subject,
      publicKey,
      signingKey: this.#key,
      issuerKeyId: keyId(this.cert),
      ...validityUnder(this.cert, this.#now(), days, field),
      extensions,
      random: this.#random,
    });
  }

  /**
   * A staff signature certificate: keyUsage digitalSignature + nonRepudiation, extendedKeyUsage
   * clientAuth (TLS login) + emailProtection (what `openssl cms -verify` requires by default), subject
   * CN = full name, UID = login, O, OU = department, and the clearance attribute.
   * @throws WrongAlgorithmError when the key is not of the appliance profile.
   */
  async issueStaffCertificate(p: StaffCertificateParams & { publicKey: CryptoKey }): Promise<Certificate> {
    if (!isClearance(p.clearance)) throw new InvalidParameterError('clearance', `expected a clearance level, got ${String(p.clearance).slice(0, 30)}`);
    return this.#issue(
      { commonName: p.fullName, login: p.login, organization: p.organization, organizationalUnit: p.department },
      p.publicKey,
      p.validityDays ?? 365,
      'validityDays',
      [
        basicConstraintsExtension(false),
        keyUsageExtension(['digitalSignature', 'nonRepudiation']),
        extKeyUsageExtension(['clientAuth', 'emailProtection']),
        clearanceExtension(p.clearance),
      ],
    );
  }

  /**
   * A staff certificate for the key in a PKCS#10 request. The request's signature is checked first
   * (proof of possession); its subject is ignored: identity comes from `p`, set by the officer.
   * @throws BadCsrSignatureError, MalformedInputError, UnknownAlgorithmError, WrongAlgorithmError
   */
  async issueFromCsr(csr: CertificationRequest | Uint8Array | string, p: StaffCertificateParams): Promise<Certificate> {
    const request = csr instanceof CertificationRequest ? csr : typeof csr === 'string' ? CertificationRequest.fromPem(csr) : CertificationRequest.fromDer(csr);
    const publicKey = await request.publicKey();
    this.#checkKey(publicKey);
    await request.assertSignature();
    return this.issueStaffCertificate({ ...p, publicKey });
  }

  /** The appliance's TLS server certificate: digitalSignature, serverAuth, subjectAltName DNS names and IPs. */
  async issueTlsServerCertificate(p: TlsServerCertificateParams): Promise<Certificate> {
    const san = subjectAltNameExtension(p.dnsNames ?? [], p.ipAddresses ?? []);
    return this.#issue(
      { commonName: p.commonName, organization: this.cert.subject.organization },
      p.publicKey,
      p.validityDays ?? 825,
      'validityDays',
      [basicConstraintsExtension(false), keyUsageExtension(['digitalSignature']), extKeyUsageExtension(['serverAuth']), san],
    );
  }

  /**
   * The appliance's audit-signing certificate for log checkpoints: digitalSignature + nonRepudiation,
   * extendedKeyUsage Sigil audit-signing only, so it can sign neither messages nor TLS.
   */
  async issueAuditCertificate(p: AuditCertificateParams): Promise<Certificate> {
    return this.#issue(
      { commonName: p.commonName, organization: this.cert.subject.organization },
      p.publicKey,
      p.validityDays ?? 3650,
      'validityDays',
      [basicConstraintsExtension(false), keyUsageExtension(['digitalSignature', 'nonRepudiation']), extKeyUsageExtension(['sigilAuditSigning'])],
    );
  }

  /** A CRL v2 (RFC 5280 §5) signed by the issuing CA. */
  async createCrl(p: CreateCrlParams): Promise<Crl> {
    return buildCrl({
      issuer: this.cert,
      key: this.#key,
      revoked: p.revoked,
      crlNumber: p.crlNumber,
      thisUpdate: p.thisUpdate ?? this.#now(),
      nextUpdate: p.nextUpdate,
    });
  }
}
