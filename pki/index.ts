/**
 * pki/: Sigil's certificate authority and signatures — algorithm profiles, keys, X.509 certificates,
 * CSRs, PKCS#12, CRLs, chain validation, and CMS SignedData. The only entry point other folders use.
 * pkijs/asn1js types never leave pki/: exports are Sigil types, WebCrypto keys and DER/PEM bytes.
 */
export * from './errors.js';
export * from './clearance.js';
export * from './profiles.js';
export * from './keys.js';
export * from './pem.js';
export { Certificate, type SubjectAltNames, type DistinguishedName } from './certificate.js';
export { EKU_OIDS, KEY_USAGE_BITS, SIGIL_AUDIT_SIGNING_OID, type KeyUsage, type ExtendedKeyUsageName } from './extensions.js';
export type { CryptoKey, CryptoKeyPair } from './webcrypto.js';
export { BACKDATE_MS } from './certificate-builder.js';
export {
  createCaHierarchy,
  renewIssuingCa,
  type CreateCaHierarchyParams,
  type KeyedCertificate,
  type RenewIssuingCaParams,
} from './ca-hierarchy.js';
export {
  Issuer,
  type StaffCertificateParams,
  type TlsServerCertificateParams,
  type AuditCertificateParams,
  type CreateCrlParams,
  type IssuerOptions,
} from './issuer.js';
export { createRootCrl, ROOT_CRL_VALIDITY_DAYS, type CreateRootCrlParams } from './root-crl.js';
export { CertificationRequest, createCsr, type CreateCsrParams, type CsrSignatureResult } from './csr.js';
export {
  Crl,
  REVOCATION_REASON_CODES,
  isRevocationReason,
  type RevocationReason,
  type RevokedEntry,
  type CrlSignatureResult,
} from './crl.js';
export { SignerKeyMismatchError, MalformedCmsError } from './cms-errors.js';
export { signDetached, type SignParams } from './cms-sign.js';
export {
  prepareDetached,
  finishDetached,
  ecdsaP1363,
  type CmsFailureReason,
  type CmsVerifyResult,
  type PreparedDetached,
} from './cms-verify-core.js';
export { verifyDetached, type CmsVerifyOptions } from './cms-verify.js';
export { inspectSignature, type SignedAttributesSummary } from './cms-inspect.js';
export { verifyDetachedSync } from './cms-verify-sync.js';
export {
  validateCertificate,
  usageProblem,
  type ValidationFailure,
  type ValidationOptions,
  type ValidationResult,
  type CertificateUsage,
} from './validate.js';
export { createPkcs12, isPkcs12, openPkcs12, DEFAULT_MAC_ITERATIONS, type CreatePkcs12Params } from './pkcs12.js';
export { canonicalJson, readCanonicalJson, CanonicalJsonError, type CanonicalRead } from './canonical-json.js';
