/**
 * Verifying a detached CMS signature (RFC 5652 §5.6) with WebCrypto, so all per-message crypto runs on
 * libuv's thread pool, and, with `trust`, validating the signer's certificate chain. The parsing and
 * the checks before and after the cryptography are cms-verify-core.ts, shared with
 * verifyDetachedSync (cms-verify-sync.ts).
 */
import type { Certificate } from './certificate.js';
import { ecdsaP1363, fail, finishDetached, prepareDetached, type CmsVerifyResult } from './cms-verify-core.js';
import { cachedCertificate, verificationKey, verificationKeyIfReady } from './cms-signers.js';
import type { Crl } from './crl.js';
import { validateCertificate } from './validate.js';
import type { CryptoKey } from './webcrypto.js';

const subtle = globalThis.crypto.subtle;

/** How {@link verifyDetached} identifies and trusts the signer. */
export interface CmsVerifyOptions {
  /**
   * The certificate the signature must be from (e.g. the logged-in sender's): the embedded certificates
   * are not searched, and a signature by anyone else is `signer-mismatch`.
   */
  expectedSigner?: Certificate;
  /**
   * When given, the signer certificate is validated (validateCertificate, usage `signature`) after the
   * signature checks; embedded certificates are offered as intermediates.
   */
  trust?: {
    trustAnchors: Certificate[];
    intermediates?: Certificate[];
    crls?: Crl[];
    /**
     * The time the certificate must have been valid and unrevoked at. Default: the signingTime
     * attribute (else now), so a signer revoked after signing still verifies, with `revokedLater`.
     * signingTime is the signer's own claim: a party that knows when the message really arrived
     * (the server at receipt) should pass that time here, so a revoked key cannot backdate.
     */
    at?: Date;
    /** Require a CRL from every issuer in the chain, or from the signer's only (validateCertificate's `requireCrl`). */
    requireCrl?: boolean | 'leaf';
  };
}

/**
 * Verifies a detached CMS signature (RFC 5652 §5.6) over `content`: finds the signer certificate,
 * checks the contentType and messageDigest attributes, verifies the signature over the DER signed
 * attributes with the certificate's key, and reads signingTime and the ESS security label.
 * Never throws on bad input: garbage is `{ ok: false, reason: 'malformed' }`.
 *
 * Without `trust` this says only "this certificate's key signed this content"; whether the
 * certificate is trusted is the caller's question.
 */
export async function verifyDetached(signature: Uint8Array, content: Uint8Array, opts: CmsVerifyOptions = {}): Promise<CmsVerifyResult> {
  const prepared = prepareDetached(signature, content, opts.expectedSigner);
  if (!prepared.ok) return prepared;
  const { si, signer, digestHash, sigAlg, signatureHash, parsed } = prepared;
  let key: CryptoKey;
  try {
    key = verificationKeyIfReady(signer, signatureHash) ?? (await verificationKey(signer, signatureHash));
  } catch (e) {
    return fail('unsupported-algorithm', `the signer's public key is not usable: ${e instanceof Error ? e.message : 'import failed'}`);
  }
  if (key.algorithm.name !== sigAlg.kind) return fail('unsupported-algorithm', `a ${sigAlg.kind} signature cannot come from the signer's ${key.algorithm.name} key`);
  let sigBytes: Uint8Array = si.signature;
  if (sigAlg.kind === 'ECDSA') {
    const p1363 = ecdsaP1363(si.signature, (key.algorithm as { namedCurve?: string }).namedCurve ?? '');
    if (!p1363) return fail('bad-signature', 'the signature value is not an ECDSA-Sig-Value for the signer curve');
    sigBytes = p1363;
  }
  // Digest and signature run side by side on the thread pool; the content check is reported first.
  const [digest, valid] = await Promise.all([
    subtle.digest(digestHash, content),
    subtle.verify(sigAlg.kind === 'ECDSA' ? { name: 'ECDSA', hash: signatureHash } : { name: sigAlg.kind }, key, sigBytes, si.signedAttrsDer!),
  ]);
  const checked = finishDetached(prepared, new Uint8Array(digest), valid);
  if (!checked.ok) return checked;
  const { label, signingTime } = checked;
  const contentDigest = checked.contentDigest;
  if (!opts.trust) return { ok: true, signer, signingTime, label, digestAlgorithm: digestHash, contentDigest };

  const embedded: Certificate[] = [];
  for (const der of parsed.certificates) {
    try {
      embedded.push(cachedCertificate(der));
    } catch {
      // Not a certificate we can read: not offered as an intermediate (the signer was found already).
    }
  }
  const validation = await validateCertificate(signer, {
    trustAnchors: opts.trust.trustAnchors,
    intermediates: [...(opts.trust.intermediates ?? []), ...embedded],
    crls: opts.trust.crls,
    at: opts.trust.at ?? signingTime ?? new Date(),
    usage: 'signature',
    requireCrl: opts.trust.requireCrl,
  });
  if (!validation.ok) return fail(validation.reason, `signer certificate: ${validation.detail}`);
  return {
    ok: true,
    signer,
    signingTime,
    label,
    digestAlgorithm: digestHash,
    contentDigest,
    chain: validation.chain,
    ...(validation.revokedLater ? { revokedLater: validation.revokedLater } : {}),
  };
}
