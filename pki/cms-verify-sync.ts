/**
 * verifyDetached without promises, for worker threads only: the same parse and the same checks
 * (prepareDetached / finishDetached in cms-verify-core.ts), with node:crypto's one-shot digest and
 * verify.
 *
 * Why it exists: each WebCrypto call costs the calling thread ~50–80 µs of job dispatch and promise
 * plumbing, more than a whole SHA-384 or HMAC of a message, and on the main thread that is the
 * server's bottleneck. The server's message checkers (server/messaging/check-pool.ts) run this in
 * worker threads, where synchronous crypto blocks nothing but the worker. Never call it on the
 * main event loop: a P-384 verify takes ~0.5 ms.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { Certificate } from './certificate.js';
import { ecdsaP1363, finishDetached, prepareDetached, type CmsVerifyResult } from './cms-verify-core.js';

/** node:crypto's curve names, as WebCrypto names them. */
const CURVES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' };

const keys = new WeakMap<Certificate, KeyObject>();

function publicKeyOf(cert: Certificate): KeyObject {
  let key = keys.get(cert);
  if (!key) keys.set(cert, (key = createPublicKey({ key: Buffer.from(cert.publicKeySpki), format: 'der', type: 'spki' })));
  return key;
}

/** Node's digest names for the hashes Sigil's profiles use. */
const NODE_HASH = { 'SHA-256': 'sha256', 'SHA-384': 'sha384', 'SHA-512': 'sha512' } as const;

/**
 * Verifies a detached CMS signature over `content` by `expectedSigner` (or the signer it names),
 * like {@link verifyDetached} without `trust`. Never throws on bad input.
 */
export function verifyDetachedSync(
  signature: Uint8Array,
  content: Uint8Array,
  opts: { expectedSigner?: Certificate } = {},
): CmsVerifyResult {
  const prepared = prepareDetached(signature, content, opts.expectedSigner);
  if (!prepared.ok) return prepared;
  const { si, signer, digestHash, sigAlg, signatureHash } = prepared;
  let key: KeyObject;
  try {
    key = publicKeyOf(signer);
  } catch (e) {
    return { ok: false, reason: 'unsupported-algorithm', detail: `the signer's public key is not usable: ${e instanceof Error ? e.message : 'import failed'}` };
  }
  const keyKind = key.asymmetricKeyType === 'ec' ? 'ECDSA' : key.asymmetricKeyType === 'rsa' ? 'RSASSA-PKCS1-v1_5' : String(key.asymmetricKeyType);
  if (keyKind !== sigAlg.kind) {
    return { ok: false, reason: 'unsupported-algorithm', detail: `a ${sigAlg.kind} signature cannot come from the signer's ${keyKind} key` };
  }
  const contentDigest = createHash(NODE_HASH[digestHash]).update(content).digest();
  let valid: boolean;
  if (sigAlg.kind === 'ECDSA') {
    // The same strict DER → r‖s reading as the WebCrypto path, so both accept exactly the same bytes.
    const p1363 = ecdsaP1363(si.signature, CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? '');
    if (!p1363) return { ok: false, reason: 'bad-signature', detail: 'the signature value is not an ECDSA-Sig-Value for the signer curve' };
    valid = verify(NODE_HASH[signatureHash], si.signedAttrsDer!, { key, dsaEncoding: 'ieee-p1363' }, p1363);
  } else {
    valid = verify(NODE_HASH[signatureHash], si.signedAttrsDer!, key, si.signature);
  }
  return finishDetached(prepared, new Uint8Array(contentDigest.buffer, contentDigest.byteOffset, contentDigest.byteLength), valid);
}
