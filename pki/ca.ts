/**
 * The certificate authority: a root CA and an issuing CA under it (`createCaHierarchy`), and the
 * `Issuer` that signs staff, TLS server and audit certificates and CRLs with the issuing CA's key.
 * Profiles of the issued certificates follow RFC 5280 §4.2; see pki/README.md for the choices.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import type { Clearance } from './clearance.js';
import { isClearance } from './clearance.js';
import { Certificate } from './certificate.js';
import { CertificationRequest } from './csr.js';
import { Crl, buildCrl, type RevokedEntry } from './crl.js';
import { toArrayBuffer, wholeSeconds } from './der.js';
import { InvalidParameterError, IssuerExpiredError, IssuerMismatchError, WrongAlgorithmError } from './errors.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  clearanceExtension,
  extKeyUsageExtension,
  keyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdentifier,
  subjectKeyIdentifierExtension,
} from './extensions.js';
import { exportPublicKeySpki, generateKeyPair } from './keys.js';
import { buildName, type DistinguishedName } from './names.js';
import { profileOfKey, resolveProfile, type AlgorithmProfile, type ProfileName } from './profiles.js';
import type { CryptoKey } from './webcrypto.js';

/** notBefore is set this far in the past so a workstation whose clock lags a little accepts a fresh certificate. */
export const BACKDATE_MS = 5 * 60 * 1000;
const DAY_MS = 86_400_000;

/** 16 random bytes, top bit clear (positive) and second bit set (no leading zero octet): RFC 5280 §4.1.2.2. */
export function randomSerial(random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): Uint8Array {
  const bytes = random(16).slice(0, 16);
  if (bytes.length !== 16) throw new InvalidParameterError('random', 'expected 16 random bytes');
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes;
}

/** UTCTime through 2049, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). */
export function x509Time(date: Date): pkijs.Time {
  const value = wholeSeconds(date);
  return new pkijs.Time({ type: value.getUTCFullYear() < 2050 ? pkijs.TimeType.UTCTime : pkijs.TimeType.GeneralizedTime, value });
}

interface SignParams {
  subject: pkijs.RelativeDistinguishedNames;
  issuer: pkijs.RelativeDistinguishedNames;
  publicKey: CryptoKey;
  signingKey: CryptoKey;
  issuerKeyId: Uint8Array | undefined;
  notBefore: Date;
  notAfter: Date;
  extensions: pkijs.Extension[];
  random?: (n: number) => Uint8Array;
}

/** Builds and signs one certificate; the profile of the signing key decides the signature algorithm. */
async function signCertificate(p: SignParams): Promise<Certificate> {
  const profile = profileOfKey(p.signingKey);
  const cert = new pkijs.Certificate();
  cert.version = 2;
  cert.serialNumber = new asn1js.Integer({ valueHex: toArrayBuffer(randomSerial(p.random)) });
  cert.issuer = p.issuer;
  cert.subject = p.subject;
  cert.notBefore = x509Time(p.notBefore);
  cert.notAfter = x509Time(p.notAfter);
  const spkiDer = await exportPublicKeySpki(p.publicKey);
  cert.subjectPublicKeyInfo = new pkijs.PublicKeyInfo({ schema: asn1js.fromBER(toArrayBuffer(spkiDer)).result });
  const keyId = await subjectKeyIdentifier(cert.subjectPublicKeyInfo);
  cert.extensions = [
    ...p.extensions,
    subjectKeyIdentifierExtension(keyId),
    authorityKeyIdentifierExtension(p.issuerKeyId ?? keyId),
  ];
  await cert.sign(p.signingKey, profile.hash);
  return Certificate.fromDer(new Uint8Array(cert.toSchema(true).toBER(false)));
}

function validity(now: Date, days: number, field: string): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0) throw new InvalidParameterError(field, `expected a positive number of days, got ${days}`);
  return { notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: new Date(now.getTime() + days * DAY_MS) };
}

/**
 * `validity` ending no later than the issuer's certificate. Why: a path is valid only while every
 * certificate in it is (RFC 5280 §6.1.3), so the days past the issuer's notAfter would be a
 * promise the certificate cannot keep — it would read valid in `openssl x509 -enddate` and fail in
 * `openssl verify`. An issuer that has already expired issues nothing.
 * @throws IssuerExpiredError
 */
function validityUnder(issuer: Certificate, now: Date, days: number, field: string): { notBefore: Date; notAfter: Date } {
  const v = validity(now, days, field);
  if (now.getTime() >= issuer.notAfter.getTime()) {
    throw new IssuerExpiredError(`the issuing CA ${issuer.subjectString} expired at ${issuer.notAfter.toISOString()}: renew it before issuing certificates`);
  }
  return v.notAfter.getTime() > issuer.notAfter.getTime() ? { notBefore: v.notBefore, notAfter: issuer.notAfter } : v;
}

function keyId(cert: Certificate): Uint8Array | undefined {
  const hex = cert.subjectKeyIdentifier;
  return hex ? new Uint8Array(Buffer.from(hex, 'hex')) : undefined;
}

/** A CA certificate's own extensions (the key identifiers are added by signCertificate). */
function caExtensions(pathLength: number): pkijs.Extension[] {
  return [basicConstraintsExtension(true, pathLength), keyUsageExtension(['keyCertSign', 'cRLSign'])];
}

export interface RenewIssuingCaParams {
  /** The root CA certificate and its private key (brought from the safe for the ceremony). */
  root: KeyedCertificate;
  /** The issuing CA certificate in use. */
  issuing: Certificate;
  now?: () => Date;
  /** Default 3650 (10 years), never past the root's notAfter. */
  validityDays?: number;
  random?: (n: number) => Uint8Array;
}

/**
 * A new certificate for the issuing CA's own name and key, signed by the root: renewal, not
 * re-keying. Everything the issuing CA signed stays valid under it — same subject, same key, same
 * key identifier, so certificates and CRLs chain to the new one exactly as to the old. It is valid
 * from the old certificate's notBefore, not from today: readers judge a message, a checkpoint or a
 * CRL at the time it was made, with whatever issuing certificate the appliance serves now, and a
 * new one starting today would make everything made before the renewal read "not yet valid". Its
 * validity ends `validityDays` from now, no later than the root's.
 * @throws IssuerMismatchError when `root.key` is not the root's, or the issuing CA is not the root's.
 * @throws IssuerExpiredError when the root has expired.
 */
export async function renewIssuingCa(p: RenewIssuingCaParams): Promise<Certificate> {
  const { root, issuing } = p;
  if (!root.cert.isCA || !root.cert.keyUsage.includes('keyCertSign')) {
    throw new IssuerMismatchError(`expected a CA certificate with keyCertSign, got ${root.cert.subjectString}`);
  }
  if (root.key.type !== 'private' || !Buffer.from(await exportPublicKeySpki(root.key)).equals(Buffer.from(root.cert.publicKeySpki))) {
    throw new IssuerMismatchError(`the key is not the private key of ${root.cert.subjectString}`);
  }
  const underRoot = issuing.issuerString === root.cert.subjectString && issuing.authorityKeyIdentifier === root.cert.subjectKeyIdentifier;
  if (!issuing.isCA || issuing.isSelfIssued || !underRoot) {
    throw new IssuerMismatchError(`${issuing.subjectString} is not an issuing CA under ${root.cert.subjectString}`);
  }
  const now = (p.now ?? (() => new Date()))();
  const { notAfter } = validityUnder(root.cert, now, p.validityDays ?? 3650, 'validityDays');
  return signCertificate({
    subject: issuing.asn.subject,
    issuer: root.cert.asn.subject,
    publicKey: await issuing.publicKey(),
    signingKey: root.key,
    issuerKeyId: keyId(root.cert),
    notBefore: issuing.notBefore,
    notAfter,
    extensions: caExtensions(0),
    random: p.random,
  });
}

export interface CreateCaHierarchyParams {
  profile: AlgorithmProfile | ProfileName;
  /** Organisation name written in both CA subjects. */
  organization: string;
  now?: () => Date;
  /** Default 7300 (20 years). */
  rootValidityDays?: number;
  /** Default 3650 (10 years). */
  issuingValidityDays?: number;
  random?: (n: number) => Uint8Array;
}

export interface KeyedCertificate {
  cert: Certificate;
  key: CryptoKey;
}

/**
 * A root CA (self-signed, keyCertSign + cRLSign, pathLenConstraint 1) and an issuing CA under it
 * (keyCertSign + cRLSign, pathLenConstraint 0), both with fresh keys of `profile`. The root key is
 * meant to be exported (`exportPrivateKeyPem` with a passphrase) for offline keeping.
 */
export async function createCaHierarchy(params: CreateCaHierarchyParams): Promise<{ root: KeyedCertificate; issuing: KeyedCertificate }> {
  const profile = resolveProfile(params.profile);
  const now = (params.now ?? (() => new Date()))();
  const rootKeys = await generateKeyPair(profile);
  // "Ministry Sigil Root CA", but "Sigil Root CA" (not "Sigil Sigil …") when the organisation is already called Sigil.
  const caLabel = (max: number) => {
    const org = params.organization.slice(0, max);
    return /\bsigil\b/i.test(org) ? org : `${org} Sigil`;
  };
  const rootName = buildName({ organization: params.organization, commonName: `${caLabel(48)} Root CA` });
  const root = await signCertificate({
    subject: rootName,
    issuer: rootName,
    publicKey: rootKeys.publicKey,
    signingKey: rootKeys.privateKey,
    issuerKeyId: undefined,
    ...validity(now, params.rootValidityDays ?? 7300, 'rootValidityDays'),
    extensions: caExtensions(1),
    random: params.random,
  });
  const issuingKeys = await generateKeyPair(profile);
  const issuing = await signCertificate({
    subject: buildName({ organization: params.organization, commonName: `${caLabel(45)} Issuing CA` }),
    issuer: root.asn.subject,
    publicKey: issuingKeys.publicKey,
    signingKey: rootKeys.privateKey,
    issuerKeyId: keyId(root),
    ...validityUnder(root, now, params.issuingValidityDays ?? 3650, 'issuingValidityDays'),
    extensions: caExtensions(0),
    random: params.random,
  });
  return { root: { cert: root, key: rootKeys.privateKey }, issuing: { cert: issuing, key: issuingKeys.privateKey } };
}

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

/**
 * Default validity of a root CA's CRL: 365 days. The root key is offline, so every root CRL needs
 * a key ceremony; a year is the longest interval the CA/Browser Forum Baseline Requirements
 * (§4.9.7) allow for a CRL covering subordinate CAs, and short enough that a compromise drill is
 * rehearsed at least once a year.
 */
export const ROOT_CRL_VALIDITY_DAYS = 365;

export interface CreateRootCrlParams {
  /** The CA certificate whose own key signs the CRL (the root CA). */
  cert: Certificate;
  /** Its private key; must be the certificate's. */
  key: CryptoKey;
  /** Certificates issued by `cert` that are revoked (the issuing CA, for a compromise). Default none. */
  revoked?: RevokedEntry[];
  crlNumber: bigint;
  /** Default: now. */
  thisUpdate?: Date;
  /** Default {@link ROOT_CRL_VALIDITY_DAYS}; nextUpdate never passes the certificate's notAfter. */
  validityDays?: number;
}

/**
 * A CRL v2 (RFC 5280 §5) signed with a CA's own key — the root's CRL, covering the issuing CA, that
 * `openssl verify -crl_check_all` needs for the whole chain. Same builder as `Issuer.createCrl`
 * (CRL number §5.2.3, authority key identifier §5.2.1 = the root's SKI). nextUpdate is
 * `thisUpdate + validityDays`, capped at the certificate's notAfter (a CRL cannot speak for a CA
 * past its life).
 * @throws IssuerMismatchError when `cert` is not a CA with cRLSign or `key` is not its key.
 * @throws IssuerExpiredError when `cert` has expired at thisUpdate.
 */
export async function createRootCrl(p: CreateRootCrlParams): Promise<Crl> {
  if (!p.cert.isCA || !p.cert.keyUsage.includes('cRLSign')) {
    throw new IssuerMismatchError(`expected a CA certificate with cRLSign, got ${p.cert.subjectString}`);
  }
  if (p.key.type !== 'private' || !Buffer.from(await exportPublicKeySpki(p.key)).equals(Buffer.from(p.cert.publicKeySpki))) {
    throw new IssuerMismatchError(`the key is not the private key of ${p.cert.subjectString}`);
  }
  const thisUpdate = p.thisUpdate ?? new Date();
  if (thisUpdate.getTime() >= p.cert.notAfter.getTime()) {
    throw new IssuerExpiredError(`${p.cert.subjectString} expired at ${p.cert.notAfter.toISOString()}: it can sign no CRL`);
  }
  const days = p.validityDays ?? ROOT_CRL_VALIDITY_DAYS;
  if (!Number.isFinite(days) || days <= 0) throw new InvalidParameterError('validityDays', `expected a positive number of days, got ${days}`);
  const wanted = new Date(thisUpdate.getTime() + days * DAY_MS);
  const nextUpdate = wanted.getTime() > p.cert.notAfter.getTime() ? p.cert.notAfter : wanted;
  return buildCrl({ issuer: p.cert, key: p.key, revoked: p.revoked ?? [], crlNumber: p.crlNumber, thisUpdate, nextUpdate });
}
