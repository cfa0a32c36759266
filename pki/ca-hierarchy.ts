/**
 * The CA hierarchy: a root CA and an issuing CA under it (`createCaHierarchy`), and the renewal of
 * the issuing CA's certificate by the root (`renewIssuingCa`) — the operations that need the root key,
 * kept offline between ceremonies. Profiles follow RFC 5280 §4.2; see pki/README.md for the choices.
 */
import type { Certificate } from './certificate.js';
import { caExtensions, keyId, signCertificate, validity, validityUnder } from './certificate-builder.js';
import { IssuerMismatchError } from './errors.js';
import { exportPublicKeySpki, generateKeyPair } from './keys.js';
import { buildName } from './names.js';
import { resolveProfile, type AlgorithmProfile, type ProfileName } from './profiles.js';
import type { CryptoKey } from './webcrypto.js';

export interface CreateCaHierarchyParams {
  profile: AlgorithmProfile | ProfileName;
  /** Organisation name written in both CA subjects. */
  organization: string;
  now?: () => Date;
  /** Default 7300 (20 years). */
  rootValidityDays?: number;
  /** Default 3650 (10 years). */
  issuingValidityDays?: number;
  random?: (n: number) => Uint8Array;
}

export interface KeyedCertificate {
  cert: Certificate;
  key: CryptoKey;
}

/**
 * A root CA (self-signed, keyCertSign + cRLSign, pathLenConstraint 1) and an issuing CA under it
 * (keyCertSign + cRLSign, pathLenConstraint 0), both with fresh keys of `profile`. The root key is
 * meant to be exported (`exportPrivateKeyPem` with a passphrase) for offline keeping.
 */
export async function createCaHierarchy(params: CreateCaHierarchyParams): Promise<{ root: KeyedCertificate; issuing: KeyedCertificate }> {
  const profile = resolveProfile(params.profile);
  const now = (params.now ?? (() => new Date()))();
  const rootKeys = await generateKeyPair(profile);
  // "Ministry Sigil Root CA", but "Sigil Root CA" (not "Sigil Sigil …") when the organisation is already called Sigil.
  const caLabel = (max: number) => {
    const org = params.organization.slice(0, max);
    return /\bsigil\b/i.test(org) ? org : `${org} Sigil`;
  };
  const rootName = buildName({ organization: params.organization, commonName: `${caLabel(48)} Root CA` });
  const root = await signCertificate({
    subject: rootName,
    issuer: rootName,
    publicKey: rootKeys.publicKey,
    signingKey: rootKeys.privateKey,
    issuerKeyId: undefined,
    ...validity(now, params.rootValidityDays ?? 7300, 'rootValidityDays'),
    extensions: caExtensions(1),
    random: params.random,
  });
  const issuingKeys = await generateKeyPair(profile);
  const issuing = await signCertificate({
    subject: buildName({ organization: params.organization, commonName: `${caLabel(45)} Issuing CA` }),
    issuer: root.asn.subject,
    publicKey: issuingKeys.publicKey,
    signingKey: rootKeys.privateKey,
    issuerKeyId: keyId(root),
    ...validityUnder(root, now, params.issuingValidityDays ?? 3650, 'issuingValidityDays'),
    extensions: caExtensions(0),
    random: params.random,
  });
  return { root: { cert: root, key: rootKeys.privateKey }, issuing: { cert: issuing, key: issuingKeys.privateKey } };
}

export interface RenewIssuingCaParams {
  /** The root CA certificate and its private key (brought from the safe for the ceremony). */
  root: KeyedCertificate;
  /** The issuing CA certificate in use. */
  issuing: Certificate;
  now?: () => Date;
  /** Default 3650 (10 years), never past the root's notAfter. */
  validityDays?: number;
  random?: (n: number) => Uint8Array;
}

/**
 * A new certificate for the issuing CA's own name and key, signed by the root: renewal, not
 * re-keying. Everything the issuing CA signed stays valid under it — same subject, same key, same
 * key identifier, so certificates and CRLs chain to the new one exactly as to the old. It is valid
 * from the old certificate's notBefore, not from today: readers judge a message, a checkpoint or a
 * CRL at the time it was made, with whatever issuing certificate the appliance serves now, and a
 * new one starting today would make everything made before the renewal read "not yet valid". Its
 * validity ends `validityDays` from now, no later than the root's.
 * @throws IssuerMismatchError when `root.key` is not the root's, or the issuing CA is not the root's.
 * @throws IssuerExpiredError when the root has expired.
 */
export async function renewIssuingCa(p: RenewIssuingCaParams): Promise<Certificate> {
  const { root, issuing } = p;
  if (!root.cert.isCA || !root.cert.keyUsage.includes('keyCertSign')) {
    throw new IssuerMismatchError(`expected a CA certificate with keyCertSign, got ${root.cert.subjectString}`);
  }
  if (root.key.type !== 'private' || !Buffer.from(await exportPublicKeySpki(root.key)).equals(Buffer.from(root.cert.publicKeySpki))) {
    throw new IssuerMismatchError(`the key is not the private key of ${root.cert.subjectString}`);
  }
  const underRoot = issuing.issuerString === root.cert.subjectString && issuing.authorityKeyIdentifier === root.cert.subjectKeyIdentifier;
  if (!issuing.isCA || issuing.isSelfIssued || !underRoot) {
    throw new IssuerMismatchError(`${issuing.subjectString} is not an issuing CA under ${root.cert.subjectString}`);
  }
  const now = (p.now ?? (() => new Date()))();
  const { notAfter } = validityUnder(root.cert, now, p.validityDays ?? 3650, 'validityDays');
  return signCertificate({
    subject: issuing.asn.subject,
    issuer: root.cert.asn.subject,
    publicKey: await issuing.publicKey(),
    signingKey: root.key,
    issuerKeyId: keyId(root.cert),
    notBefore: issuing.notBefore,
    notAfter,
    extensions: caExtensions(0),
    random: p.random,
  });
}
