/**
 * The parse-and-check steps of verifying a detached CMS SignedData (RFC 5652 §5.6), shared by
 * verifyDetached (cms-verify.ts, WebCrypto) and verifyDetachedSync (cms-verify-sync.ts, node:crypto)
 * so the two cannot drift apart: the result and failure types, `prepareDetached` before the
 * cryptography and `finishDetached` after it. Reading uses node-forge's DER decoder (see
 * cms-parse.ts for why). Internal to pki/, apart from the result types.
 */
import type { Clearance } from './clearance.js';
import { CMS_OID, ecCoordinateSize, ecdsaDerToP1363, hashOfDigestOid, signatureAlgorithmOfOid, type HashName } from './cms-algorithms.js';
import { CmsParseError, objectIdentifier, octets, parseSignedData, time, type ParsedSignedData } from './cms-parse.js';
import { findSigner } from './cms-signers.js';
import { ID_AA_SECURITY_LABEL, readSecurityLabel } from './ess-label.js';
import { Certificate } from './certificate.js';
import type { RevokedEntry } from './crl.js';
import type { ValidationFailure } from './validate.js';

/** Why a signature was refused. Chain reasons come from validateCertificate when `trust` is given. */
export type CmsFailureReason =
  | 'malformed'
  | 'unsupported-algorithm'
  | 'signer-not-found'
  | 'signer-mismatch'
  | 'digest-mismatch'
  | 'bad-signature'
  | 'missing-attribute'
  | 'label-unknown'
  | ValidationFailure;

export type CmsVerifyResult =
  | {
      ok: true;
      signer: Certificate;
      /** The signingTime attribute, when present (always, in Sigil's own signatures). */
      signingTime?: Date;
      /** The ESS security label's classification, when the signature carries one. */
      label?: Clearance;
      /** WebCrypto name of the digest algorithm, e.g. `SHA-384`. */
      digestAlgorithm: HashName;
      /** The verified messageDigest: the digest of the content. */
      contentDigest: Uint8Array;
      /** With `trust`: the validated chain, signer first, trust anchor last. */
      chain?: Certificate[];
      /** With `trust`: the signer's revocation, when it was revoked after the validation time. */
      revokedLater?: RevokedEntry;
    }
  | { ok: false; reason: CmsFailureReason; detail: string };

export type Failure = Extract<CmsVerifyResult, { ok: false }>;

export function fail(reason: CmsFailureReason, detail: string): Failure {
  return { ok: false, reason, detail };
}

/**
 * A detached signature parsed and checked up to the cryptography: everything {@link verifyDetached}
 * and verifyDetachedSync (cms-verify-sync.ts) share, so the two cannot drift apart.
 * Internal to pki/.
 */
export interface PreparedDetached {
  ok: true;
  si: ParsedSignedData['signer'];
  parsed: ParsedSignedData;
  signer: Certificate;
  digestHash: HashName;
  signatureHash: HashName;
  sigAlg: NonNullable<ReturnType<typeof signatureAlgorithmOfOid>>;
  messageDigest: Buffer;
  signingTime?: Date;
}

/** Parses `signature`, finds the signer and reads the signed attributes; no cryptography. Internal to pki/. */
export function prepareDetached(signature: Uint8Array, content: Uint8Array, expectedSigner?: Certificate): PreparedDetached | Failure {
  if (!(content instanceof Uint8Array)) return fail('malformed', 'content must be a Uint8Array');
  if (!(signature instanceof Uint8Array)) return fail('malformed', 'signature must be a Uint8Array');
  let parsed: ParsedSignedData;
  try {
    parsed = parseSignedData(signature);
  } catch (e) {
    if (e instanceof CmsParseError) return fail(e.reason, e.message);
    return fail('malformed', 'not a CMS SignedData');
  }
  if (!parsed.detached) return fail('malformed', 'expected a detached signature, but the content is embedded');
  const si = parsed.signer;
  const digestHash = hashOfDigestOid(si.digestOid);
  if (!digestHash) return fail('unsupported-algorithm', `digest algorithm ${si.digestOid} is not SHA-256, SHA-384 or SHA-512`);
  const sigAlg = signatureAlgorithmOfOid(si.signatureOid);
  if (!sigAlg) return fail('unsupported-algorithm', `signature algorithm ${si.signatureOid} is not ECDSA or RSASSA-PKCS1-v1_5 with SHA-2`);
  if (!si.signedAttrsDer) return fail('missing-attribute', 'signed attributes are absent; contentType and messageDigest are required');

  const signer = findSigner(parsed, Buffer.from(signature.buffer, signature.byteOffset, signature.byteLength), expectedSigner);
  if (!(signer instanceof Certificate)) return fail(signer.reason, signer.detail);

  let signingTime: Date | undefined;
  let messageDigest: Buffer;
  try {
    const contentType = si.attributes.get(CMS_OID.contentType);
    if (!contentType) return fail('missing-attribute', 'the contentType signed attribute is absent (RFC 5652 §11.1)');
    const signedType = objectIdentifier(contentType, 'contentType value');
    if (signedType !== parsed.eContentType) return fail('malformed', `contentType attribute ${signedType} differs from eContentType ${parsed.eContentType}`);
    const digestAttr = si.attributes.get(CMS_OID.messageDigest);
    if (!digestAttr) return fail('missing-attribute', 'the messageDigest signed attribute is absent (RFC 5652 §11.2)');
    messageDigest = octets(digestAttr, 'messageDigest value');
    const timeAttr = si.attributes.get(CMS_OID.signingTime);
    if (timeAttr) signingTime = time(timeAttr, 'signingTime value');
  } catch (e) {
    return fail('malformed', e instanceof Error ? e.message : 'bad signed attribute');
  }
  return {
    ok: true,
    si,
    parsed,
    signer,
    digestHash,
    signatureHash: sigAlg.hash ?? digestHash,
    sigAlg,
    messageDigest,
    ...(signingTime ? { signingTime } : {}),
  };
}

/** The ECDSA-Sig-Value as r‖s for `namedCurve` (WebCrypto name), or undefined when it is not one. */
export function ecdsaP1363(signature: Uint8Array, namedCurve: string): Uint8Array | undefined {
  const size = ecCoordinateSize(namedCurve);
  return size === undefined ? undefined : ecdsaDerToP1363(signature, size);
}

/**
 * The end of a verification once the content digest and the signature check are known: digest
 * first, then signature, then the ESS label. Internal to pki/.
 */
export function finishDetached(
  prepared: PreparedDetached,
  contentDigest: Uint8Array,
  valid: boolean,
): Failure | { ok: true; signer: Certificate; signingTime?: Date; label?: Clearance; digestAlgorithm: HashName; contentDigest: Uint8Array } {
  const { si, signer, digestHash, signingTime } = prepared;
  if (!prepared.messageDigest.equals(contentDigest)) return fail('digest-mismatch', `the ${digestHash} digest of the content differs from the signed messageDigest`);
  if (!valid) return fail('bad-signature', `the signature does not verify with the key of ${signer.subjectString}`);
  let label: Clearance | undefined;
  const labelAttr = si.attributes.get(ID_AA_SECURITY_LABEL);
  if (labelAttr) {
    const reading = readSecurityLabel(labelAttr);
    if (!reading.ok) return fail(reading.reason, reading.detail);
    label = reading.label;
  }
  return { ok: true, signer, ...(signingTime ? { signingTime } : {}), ...(label ? { label } : {}), digestAlgorithm: digestHash, contentDigest };
}
