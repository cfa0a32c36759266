/**
 * Checking a CRL fetched from the appliance (RFC 5280 §6.3, signature part): it must be signed by
 * a pinned CA certificate, or by an issuing CA that a pinned certificate itself issued.
 */
import { Certificate, Crl } from '../pki/index.js';
import { BadResponseError, NotTrustedError } from './errors.js';
import { assertChainsToPinnedCa } from './credentials.js';

export interface CheckedCrl {
  issuer: string;
  revoked: number;
  crlNumber: string;
}

/**
 * @param crlPem   the CRL as served
 * @param pinnedPem the profile's pinned CA certificate(s)
 * @param chainPem issuing CA certificates served by `/v1/ca`, trusted only if they chain to the pin
 * @throws NotTrustedError when no trusted issuer verifies the signature
 */
export async function checkCrl(crlPem: string, pinnedPem: string, chainPem: string, now: Date): Promise<CheckedCrl> {
  let crl: Crl;
  try {
    crl = Crl.fromPem(crlPem);
  } catch (cause) {
    throw new BadResponseError('the CRL is not a PEM X.509 CRL', { cause });
  }
  const candidates = [...Certificate.fromPemBundle(pinnedPem)];
  for (const c of chainPem.trim() ? Certificate.fromPemBundle(chainPem) : []) {
    if (!c.isCA) continue;
    try {
      await assertChainsToPinnedCa(c, [], pinnedPem, now, 'ca');
      candidates.push(c);
    } catch {
      // an issuer that does not chain to the pin is simply not a candidate
    }
  }
  let lastDetail = `no pinned CA is named ${crl.issuerString}`;
  for (const issuer of candidates) {
    const result = await crl.verifySignature(issuer);
    if (result.ok) return { issuer: crl.issuerString, revoked: crl.revoked.length, crlNumber: crl.crlNumber.toString() };
    if (result.reason === 'bad-signature') lastDetail = result.detail;
  }
  throw new NotTrustedError('the CRL', lastDetail);
}
