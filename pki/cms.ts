/**
 * CMS SignedData (RFC 5652 §5), detached, with an ESS security label (RFC 2634 §5.4): the signature
 * every Sigil message carries. Signatures are made with pkijs/asn1js and WebCrypto; verification reads
 * with node-forge's DER decoder (see cms-parse.ts for why) and verifies with WebCrypto, so all
 * per-message crypto runs on libuv's thread pool.
 *
 * What a Sigil signature is, and what `openssl cms -verify -binary -content FILE` accepts:
 * - ContentInfo { id-signedData, SignedData v1 }, eContentType id-data, eContent absent (detached);
 * - the signer certificate (and any `chain` certificates) in `certificates`;
 * - one SignerInfo identified by issuerAndSerialNumber, with signed attributes contentType,
 *   messageDigest, signingTime and, when labelled, an ESS securityLabel — DER-sorted, since pkijs
 *   writes a SET OF in the order it is given (X.690 §11.6).
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { isClearance, type Clearance } from './clearance.js';
import {
  CMS_OID,
  digestOidOf,
  ecCoordinateSize,
  ecdsaDerToP1363,
  hashOfDigestOid,
  signatureAlgorithmIdentifier,
  signatureAlgorithmOfOid,
  type HashName,
} from './cms-algorithms.js';
import { attribute, constant, contextTag, derSorted, partsOf, signingTimeValue } from './cms-encode.js';
import { SignerKeyMismatchError, MalformedCmsError } from './cms-errors.js';
import { CmsParseError, objectIdentifier, octets, parseSignedData, time, type ParsedSignedData } from './cms-parse.js';
import { cachedCertificate, findSigner, verificationKey, verificationKeyIfReady } from './cms-signers.js';
import { ID_AA_SECURITY_LABEL, readSecurityLabel, securityLabelValue } from './ess-label.js';
import { Certificate } from './certificate.js';
import type { Crl, RevokedEntry } from './crl.js';
import { InvalidParameterError } from './errors.js';
import { profileOfKey } from './profiles.js';
import { validateCertificate, type ValidationFailure } from './validate.js';
import type { CryptoKey } from './webcrypto.js';

export { SignerKeyMismatchError, MalformedCmsError } from './cms-errors.js';

const subtle = globalThis.crypto.subtle;

/** What {@link signDetached} signs, and as whom. */
export interface SignParams {
  /** The message bytes. They are not embedded: the signature is detached. */
  content: Uint8Array;
  /** The signer's certificate; embedded, and named in the SignerInfo by issuer and serial. */
  signerCert: Certificate;
  /** The private key of `signerCert` (WebCrypto, usage `sign`). */
  signerKey: CryptoKey;
  /** Extra certificates to embed, e.g. the issuing CA. Default: none. */
  chain?: Certificate[];
  /** Classification to carry as an ESS security label. Default: no label. */
  label?: Clearance;
  /** The signingTime attribute; truncated to whole seconds. Default: now. */
  signingTime?: Date;
}

function checkSignParams(p: SignParams): void {
  if (!p || typeof p !== 'object') throw new InvalidParameterError('params', 'expected an object');
  if (!(p.content instanceof Uint8Array)) throw new InvalidParameterError('content', 'expected a Uint8Array');
  if (!(p.signerCert instanceof Certificate)) throw new InvalidParameterError('signerCert', 'expected a Certificate');
  if (!p.signerKey || p.signerKey.type !== 'private' || !p.signerKey.usages.includes('sign')) {
    throw new InvalidParameterError('signerKey', 'expected a private CryptoKey with usage "sign"');
  }
  if (p.chain !== undefined && (!Array.isArray(p.chain) || !p.chain.every((c) => c instanceof Certificate))) {
    throw new InvalidParameterError('chain', 'expected an array of Certificate');
  }
  if (p.label !== undefined && !isClearance(p.label)) {
    throw new InvalidParameterError('label', `expected one of unmarked, restricted, confidential, secret, top-secret, got "${String(p.label).slice(0, 20)}"`);
  }
  if (p.signingTime !== undefined && (!(p.signingTime instanceof Date) || Number.isNaN(p.signingTime.getTime()))) {
    throw new InvalidParameterError('signingTime', 'expected a valid Date');
  }
}

/**
 * Signs `content` as a detached CMS SignedData (RFC 5652 §5) whose signed attributes are contentType,
 * messageDigest, signingTime and, when `label` is given, an ESS securityLabel (RFC 2634 §5.4) of
 * policy SIGIL_SECURITY_POLICY_OID. The digest and signature algorithms follow the key's profile.
 *
 * @returns DER of the ContentInfo; verify with {@link verifyDetached} or
 *   `openssl cms -verify -binary -inform DER -content FILE -CAfile chain.pem`.
 * @throws InvalidParameterError (`INVALID_PARAMETER`) for a missing or wrongly typed parameter.
 * @throws UnknownAlgorithmError (`UNKNOWN_ALGORITHM`) when the key fits no Sigil profile.
 * @throws SignerKeyMismatchError (`CMS_SIGNER_KEY_MISMATCH`) when key and certificate differ in kind.
 * @example const sig = await signDetached({ content, signerCert, signerKey, label: 'secret' });
 */
export async function signDetached(p: SignParams): Promise<Uint8Array> {
  checkSignParams(p);
  const profile = profileOfKey(p.signerKey);
  if (p.signerCert.profile !== profile.name) {
    throw new SignerKeyMismatchError(
      `signer key is ${profile.name} but certificate ${p.signerCert.subjectString} holds a ${p.signerCert.profile ?? 'unsupported'} key`,
    );
  }
  const hash = profile.hash;
  const digest = await subtle.digest(hash, p.content);
  const attributes: asn1js.AsnType[] = [
    constant('attr:contentType:data', () => attribute(CMS_OID.contentType, new asn1js.ObjectIdentifier({ value: CMS_OID.data }))),
    attribute(CMS_OID.signingTime, signingTimeValue(p.signingTime ?? new Date())),
    attribute(CMS_OID.messageDigest, new asn1js.OctetString({ valueHex: digest })),
  ];
  const label = p.label;
  if (label !== undefined) attributes.push(constant(`attr:label:${label}`, () => attribute(ID_AA_SECURITY_LABEL, securityLabelValue(label))));
  const sorted = derSorted(attributes, (block) => new Uint8Array(block.toBER(false)));
  // The signature covers the SET OF encoding (tag 0x31) of these attributes in this order, and the
  // SignerInfo carries the same encodings under [0] IMPLICIT (RFC 5652 §5.4): check it, byte for byte.
  const signedAttrsDer = new Uint8Array(new asn1js.Set({ value: sorted }).toBER(false));
  const signedAttrs = contextTag(0, sorted);
  const emitted = new Uint8Array(signedAttrs.toBER(false));
  if (emitted.length !== signedAttrsDer.length || !Buffer.from(emitted.subarray(1)).equals(Buffer.from(signedAttrsDer.subarray(1)))) {
    throw new Error('internal: signed attributes would not be emitted as signed');
  }
  const kind = profile.signAlgorithm.name as 'ECDSA' | 'RSASSA-PKCS1-v1_5';
  const raw = await subtle.sign(kind === 'ECDSA' ? { name: 'ECDSA', hash } : { name: kind }, p.signerKey, signedAttrsDer);
  const signatureValue = kind === 'ECDSA' ? pkijs.createCMSECDSASignature(raw) : raw;

  const signer = partsOf(p.signerCert, 'signerCert');
  const certificates = new Map<string, Certificate>([[p.signerCert.fingerprint, p.signerCert]]);
  for (const c of p.chain ?? []) certificates.set(c.fingerprint, c);
  const digestAlgorithm = () => constant(`digest:${hash}`, () => new pkijs.AlgorithmIdentifier({ algorithmId: digestOidOf(hash) }).toSchema());
  // RFC 5652 §5.3 SignerInfo, version 1 because the signer is named by issuer and serial.
  const signerInfo = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      signer.sid,
      digestAlgorithm(),
      signedAttrs,
      constant(`signature:${kind}:${hash}`, () => signatureAlgorithmIdentifier(kind, hash).toSchema()),
      new asn1js.OctetString({ valueHex: signatureValue }),
    ],
  });
  // RFC 5652 §5.1 SignedData, version 1 (id-data, no attribute certificates, no v3 SignerInfo).
  const signedData = new asn1js.Sequence({
    value: [
      new asn1js.Integer({ value: 1 }),
      new asn1js.Set({ value: [digestAlgorithm()] }),
      constant('encap:data', () => new pkijs.EncapsulatedContentInfo({ eContentType: CMS_OID.data }).toSchema()),
      contextTag(0, derSorted([...certificates.values()], (c) => c.der).map((c) => (c === p.signerCert ? signer.block : partsOf(c, 'chain').block))),
      new asn1js.Set({ value: [signerInfo] }),
    ],
  });
  // RFC 5652 §3 ContentInfo.
  const contentInfo = new asn1js.Sequence({
    value: [constant(`oid:${CMS_OID.signedData}`, () => new asn1js.ObjectIdentifier({ value: CMS_OID.signedData })), contextTag(0, [signedData])],
  });
  return new Uint8Array(contentInfo.toBER(false));
}

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

type Failure = Extract<CmsVerifyResult, { ok: false }>;

function fail(reason: CmsFailureReason, detail: string): Failure {
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

/** What a signature claims, read without verifying it (for listings and audit displays). */
export interface SignedAttributesSummary {
  signingTime?: Date;
  label?: Clearance;
  /** Signer serial number as lowercase hex, when identified by issuer and serial. */
  signerSerial?: string;
  /** Signer subjectKeyIdentifier as hex, when identified by key identifier. */
  signerKeyId?: string;
  digestAlgorithm?: HashName;
  /** The signed messageDigest (hex). */
  messageDigest?: string;
}

/**
 * Reads signingTime, label, signer serial and digest algorithm from a signature WITHOUT verifying
 * it: for display only, never for a decision.
 * @throws MalformedCmsError (`CMS_MALFORMED`) when the bytes are not a SignedData Sigil can read.
 */
export function inspectSignature(signature: Uint8Array): SignedAttributesSummary {
  try {
    const { signer } = parseSignedData(signature);
    const out: SignedAttributesSummary = {
      signerSerial: signer.serialHex,
      signerKeyId: signer.skiHex,
      digestAlgorithm: hashOfDigestOid(signer.digestOid),
    };
    const t = signer.attributes.get(CMS_OID.signingTime);
    if (t) out.signingTime = time(t, 'signingTime value');
    const d = signer.attributes.get(CMS_OID.messageDigest);
    if (d) out.messageDigest = octets(d, 'messageDigest value').toString('hex');
    const l = signer.attributes.get(ID_AA_SECURITY_LABEL);
    if (l) {
      const reading = readSecurityLabel(l);
      if (!reading.ok) throw new CmsParseError('malformed', reading.detail);
      out.label = reading.label;
    }
    return out;
  } catch (e) {
    throw new MalformedCmsError(`cannot read the signature: ${e instanceof Error ? e.message : 'decode error'}`, { cause: e });
  }
}
