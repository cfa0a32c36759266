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
  thisUpdate: Date;
  nextUpdate: Date;
  /**
   * True when the CRL is past its nextUpdate at `now` (RFC 5280 §5.1.2.5). Its signature is good,
   * but a certificate checked against it at a later time fails (`crl-stale`): callers that check
   * certificates with it say so ({@link staleCrlWarning}).
   */
  stale: boolean;
}

/**
 * One line for people when `crl` is past its nextUpdate at `now`, else undefined. Written to
 * stderr as `warning: …` by the commands that verify with the CRL.
 */
export function staleCrlWarning(crl: Pick<CheckedCrl, 'crlNumber' | 'nextUpdate' | 'stale'>, now: Date): string | undefined {
  if (!crl.stale) return undefined;
  return (
    `the appliance's CRL #${crl.crlNumber} was due for update at ${crl.nextUpdate.toISOString()} (now ${now.toISOString()}); ` +
    'messages received after that fail verification (crl-stale) until the appliance publishes a new one (sigil crl publish)'
  );
}

/**
 * A CRL past its nextUpdate at `now` is still accepted (it is genuine, and the newest the appliance
 * has); the answer says `stale`, and {@link staleCrlWarning} words it.
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
    if (result.ok) {
      return {
        issuer: crl.issuerString,
        revoked: crl.revoked.length,
        crlNumber: crl.crlNumber.toString(),
        thisUpdate: crl.thisUpdate,
        nextUpdate: crl.nextUpdate,
        stale: crl.nextUpdate < now,
      };
    }
    if (result.reason === 'bad-signature') lastDetail = result.detail;
  }
  throw new NotTrustedError('the CRL', lastDetail);
}
