/**
 * The root CA's own CRL (`createRootCrl`) and its default lifetime. Like ca-hierarchy.ts it needs the
 * offline root key, so each one is a key ceremony; the issuing CA's CRLs come from `Issuer` (issuer.ts).
 */
import type { Certificate } from './certificate.js';
import { DAY_MS } from './certificate-builder.js';
import { buildCrl, type Crl, type RevokedEntry } from './crl.js';
import { InvalidParameterError, IssuerExpiredError, IssuerMismatchError } from './errors.js';
import { exportPublicKeySpki } from './keys.js';
import type { CryptoKey } from './webcrypto.js';

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
