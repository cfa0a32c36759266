/**
 * Making a CMS SignedData (RFC 5652 §5), detached, with an ESS security label (RFC 2634 §5.4): the
 * signature every Sigil message carries. Built with pkijs/asn1js and signed with WebCrypto; reading
 * and verifying live in cms-parse.ts, cms-verify-core.ts and cms-verify.ts.
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
import { CMS_OID, digestOidOf, signatureAlgorithmIdentifier } from './cms-algorithms.js';
import { attribute, constant, contextTag, derSorted, partsOf, signingTimeValue } from './cms-encode.js';
import { SignerKeyMismatchError } from './cms-errors.js';
import { ID_AA_SECURITY_LABEL, securityLabelValue } from './ess-label.js';
import { Certificate } from './certificate.js';
import { InvalidParameterError } from './errors.js';
import { profileOfKey } from './profiles.js';
import type { CryptoKey } from './webcrypto.js';

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
