/**
 * Certificate path validation (after RFC 5280 §6.1, for Sigil's two-level hierarchy): chain to a
 * trust anchor, signatures, validity at a given time, CA constraints, key usage for the intended
 * purpose, and revocation by CRL. pkijs's chain engine is not used: it does not check validity
 * dates and answers with codes we would have to map anyway.
 *
 * Checks run in this order and the first failure is returned: chain building (`unknown-issuer`,
 * `bad-signature`), validity dates of every certificate (`expired`, `not-yet-valid`), CA
 * constraints and the leaf's usage (`wrong-usage`), revocation (`crl-missing`, `crl-stale`,
 * `revoked`).
 *
 * Revocation is judged at `at`: a certificate is revoked only if its revocationDate <= at. One
 * revoked after `at` validates, with `revokedLater` set — so a message signed before revocation
 * still verifies as signed-before-revocation.
 */
import { Certificate } from './certificate.js';
import { Crl, type RevokedEntry } from './crl.js';

export type ValidationFailure =
  | 'expired'
  | 'not-yet-valid'
  | 'revoked'
  | 'unknown-issuer'
  | 'bad-signature'
  | 'wrong-usage'
  | 'crl-missing'
  | 'crl-stale';

export type CertificateUsage = 'signature' | 'tls-client' | 'tls-server' | 'audit' | 'ca';

export interface ValidationOptions {
  trustAnchors: Certificate[];
  /** Candidate intermediate CAs (e.g. the issuing CA). */
  intermediates?: Certificate[];
  crls?: Crl[];
  /** The time the certificate must have been valid at. Default: now. */
  at?: Date;
  /** What the leaf is about to be used for; omitted = no purpose check. */
  usage?: CertificateUsage;
  /**
   * When true, every non-anchor certificate of the chain needs a CRL from its issuer; with
   * `'leaf'`, the end-entity certificate only (its issuing CA's CRL), the CAs above it being
   * judged otherwise (e.g. against a root CRL that an older appliance may not have).
   */
  requireCrl?: boolean | 'leaf';
}

export type ValidationResult =
  | { ok: true; chain: Certificate[]; revokedLater?: RevokedEntry }
  | { ok: false; reason: ValidationFailure; detail: string; certificate?: Certificate };

/** Longest chain looked for: leaf, issuing CA, root, with room for one more level. */
const MAX_DEPTH = 4;

function fail(reason: ValidationFailure, detail: string, certificate?: Certificate): ValidationResult {
  return { ok: false, reason, detail, certificate };
}

const USAGE_RULES: Readonly<Record<CertificateUsage, { keyUsage: string[]; eku?: string }>> = {
  signature: { keyUsage: ['digitalSignature', 'nonRepudiation'], eku: 'emailProtection' },
  'tls-client': { keyUsage: ['digitalSignature'], eku: 'clientAuth' },
  'tls-server': { keyUsage: ['digitalSignature'], eku: 'serverAuth' },
  audit: { keyUsage: ['digitalSignature'], eku: 'sigilAuditSigning' },
  ca: { keyUsage: ['keyCertSign'] },
};

/** Why `cert` may not be used for `usage`, or undefined when it may. */
export function usageProblem(cert: Certificate, usage: CertificateUsage): string | undefined {
  const rule = USAGE_RULES[usage];
  if (usage === 'ca') {
    if (!cert.isCA) return 'not a CA certificate (basicConstraints cA is not TRUE)';
  } else if (cert.isCA) {
    return `a CA certificate cannot be used for ${usage}`;
  }
  if (cert.hasKeyUsage && !rule.keyUsage.some((u) => cert.keyUsage.includes(u as never))) {
    return `keyUsage ${cert.keyUsage.join('+') || '(none)'} lacks ${rule.keyUsage.join(' or ')} needed for ${usage}`;
  }
  if (rule.eku) {
    const eku = cert.extendedKeyUsage;
    // Staff certificates always carry an EKU; one without it is not ours and not allowed.
    if (!eku.includes(rule.eku)) return `extendedKeyUsage ${eku.join('+') || '(none)'} lacks ${rule.eku} needed for ${usage}`;
  }
  return undefined;
}

/**
 * Validates `cert` for `options.usage` at `options.at`. Never throws for a bad certificate: the
 * result says why. Signature checks and public keys are cached on the Certificate and Crl objects,
 * so repeated calls with the same objects cost map look-ups.
 */
export async function validateCertificate(cert: Certificate, options: ValidationOptions): Promise<ValidationResult> {
  const at = options.at ?? new Date();
  const anchors = options.trustAnchors;
  const candidates = [...anchors, ...(options.intermediates ?? [])];
  const isAnchor = (c: Certificate) => anchors.some((a) => a.fingerprint === c.fingerprint);

  // 1. Build the chain leaf → anchor, checking each signature.
  const chain: Certificate[] = [cert];
  let current = cert;
  while (!isAnchor(current)) {
    if (chain.length > MAX_DEPTH) return fail('unknown-issuer', `no trust anchor within ${MAX_DEPTH} certificates`, current);
    const named = candidates.filter((c) => c.fingerprint !== current.fingerprint && c.subjectNameDer.equals(current.issuerNameDer));
    if (named.length === 0) {
      return fail('unknown-issuer', `issuer ${current.issuerString} of ${current.subjectString} is not a trust anchor or known intermediate`, current);
    }
    let issuer: Certificate | undefined;
    for (const candidate of named) {
      if (await current.isIssuedBy(candidate)) {
        issuer = candidate;
        break;
      }
    }
    if (!issuer) return fail('bad-signature', `signature of ${current.subjectString} does not verify with the key of ${current.issuerString}`, current);
    if (chain.some((c) => c.fingerprint === issuer!.fingerprint)) return fail('unknown-issuer', 'issuer loop in chain', current);
    chain.push(issuer);
    current = issuer;
  }

  // 2. Validity dates of every certificate, anchor included.
  for (const c of chain) {
    if (at < c.notBefore) return fail('not-yet-valid', `${c.subjectString} is valid from ${c.notBefore.toISOString()}, checked at ${at.toISOString()}`, c);
    if (at > c.notAfter) return fail('expired', `${c.subjectString} expired ${c.notAfter.toISOString()}, checked at ${at.toISOString()}`, c);
  }

  // RFC 5280 §4.2: a certificate with a critical extension we do not process must be rejected.
  for (const c of chain) {
    const unknown = c.unknownCriticalExtensions;
    if (unknown.length > 0) return fail('wrong-usage', `${c.subjectString} has critical extension(s) Sigil does not process: ${unknown.join(', ')}`, c);
  }

  // 3. CA constraints: every issuer is a CA with keyCertSign whose pathLenConstraint allows the CAs below it.
  for (let i = 1; i < chain.length; i++) {
    const ca = chain[i];
    const problem = usageProblem(ca, 'ca');
    if (problem) return fail('wrong-usage', `${ca.subjectString} issued ${chain[i - 1].subjectString} but is ${problem}`, ca);
    const casBelow = chain.slice(1, i).filter((c) => !c.isSelfIssued).length;
    if (ca.pathLength !== undefined && casBelow > ca.pathLength) {
      return fail('wrong-usage', `${ca.subjectString} allows ${ca.pathLength} CA(s) below it, found ${casBelow}`, ca);
    }
  }
  if (options.usage) {
    const problem = usageProblem(cert, options.usage);
    if (problem) return fail('wrong-usage', `${cert.subjectString}: ${problem}`, cert);
  }

  // 4. Revocation of every certificate below the anchor, by a CRL from its issuer.
  let revokedLater: RevokedEntry | undefined;
  for (let i = 0; i < chain.length - 1; i++) {
    const c = chain[i];
    const issuer = chain[i + 1];
    const fromIssuer = (options.crls ?? []).filter((crl) => crl.issuerNameDer.equals(issuer.subjectNameDer));
    let newest: Crl | undefined;
    for (const crl of fromIssuer) {
      const sig = await crl.verifySignature(issuer);
      if (!sig.ok) return fail('bad-signature', sig.detail, c);
      if (!newest || crl.crlNumber > newest.crlNumber) newest = crl;
    }
    if (!newest) {
      if (options.requireCrl === true || (options.requireCrl === 'leaf' && i === 0)) {
        return fail('crl-missing', `no CRL from ${issuer.subjectString} to check ${c.subjectString}`, c);
      }
      continue;
    }
    if (newest.nextUpdate < at) {
      return fail('crl-stale', `newest CRL of ${issuer.subjectString} (number ${newest.crlNumber}) was due for update ${newest.nextUpdate.toISOString()}, checked at ${at.toISOString()}`, c);
    }
    const entry = newest.find(c.serialNumber);
    if (!entry) continue;
    if (entry.revocationDate <= at) {
      return fail('revoked', `${c.subjectString} (serial ${c.serialNumber}) revoked ${entry.revocationDate.toISOString()} (${entry.reason})`, c);
    }
    revokedLater ??= entry;
  }

  return revokedLater ? { ok: true, chain, revokedLater } : { ok: true, chain };
}
