/**
 * Building and signing one X.509 v3 certificate (RFC 5280 §4.1) — the creating side of certificate.ts,
 * shared by the CA hierarchy (ca-hierarchy.ts) and the issuing CA (issuer.ts): serial numbers,
 * validity windows, key identifiers and the CA extensions. Internal to pki/.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { Certificate } from './certificate.js';
import { toArrayBuffer, wholeSeconds } from './der.js';
import { InvalidParameterError, IssuerExpiredError } from './errors.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  keyUsageExtension,
  subjectKeyIdentifier,
  subjectKeyIdentifierExtension,
} from './extensions.js';
import { exportPublicKeySpki } from './keys.js';
import { profileOfKey } from './profiles.js';
import type { CryptoKey } from './webcrypto.js';

/** notBefore is set this far in the past so a workstation whose clock lags a little accepts a fresh certificate. */
export const BACKDATE_MS = 5 * 60 * 1000;
export const DAY_MS = 86_400_000;

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

export interface SignCertificateParams {
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
export async function signCertificate(p: SignCertificateParams): Promise<Certificate> {
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

export function validity(now: Date, days: number, field: string): { notBefore: Date; notAfter: Date } {
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
export function validityUnder(issuer: Certificate, now: Date, days: number, field: string): { notBefore: Date; notAfter: Date } {
  const v = validity(now, days, field);
  if (now.getTime() >= issuer.notAfter.getTime()) {
    throw new IssuerExpiredError(`the issuing CA ${issuer.subjectString} expired at ${issuer.notAfter.toISOString()}: renew it before issuing certificates`);
  }
  return v.notAfter.getTime() > issuer.notAfter.getTime() ? { notBefore: v.notBefore, notAfter: issuer.notAfter } : v;
}

export function keyId(cert: Certificate): Uint8Array | undefined {
  const hex = cert.subjectKeyIdentifier;
  return hex ? new Uint8Array(Buffer.from(hex, 'hex')) : undefined;
}

/** A CA certificate's own extensions (the key identifiers are added by signCertificate). */
export function caExtensions(pathLength: number): pkijs.Extension[] {
  return [basicConstraintsExtension(true, pathLength), keyUsageExtension(['keyCertSign', 'cRLSign'])];
}
