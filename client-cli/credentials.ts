/**
 * The user's key and certificate, through pki/ only: unlocking the PKCS#8 key, checking that a
 * certificate belongs to it and chains to the pinned CA, and signing the JSON statements the
 * server asks for (server/API.md, "Signed statements"). Loaded lazily: pkijs costs start-up time
 * that `--help` and `setup` should not pay.
 */
import { BadPassphraseError, canonicalJson, Certificate, exportPublicKeySpki, importPrivateKeyPem, PkiError, signDetached, validateCertificate, type CertificateUsage, type CryptoKey } from '../pki/index.js';
import { CertKeyMismatchError, InputFileError, KeyUnlockError, NotTrustedError } from './errors.js';

/** True for an "ENCRYPTED PRIVATE KEY" PEM (the normal case; plain keys need keygen --insecure). */
export function isEncryptedKeyPem(pem: string): boolean {
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----');
}

/**
 * The signing key from the profile's PEM.
 * @throws KeyUnlockError when the passphrase does not open it.
 */
export async function unlockKey(pem: string, passphrase: string | undefined): Promise<CryptoKey> {
  try {
    return await importPrivateKeyPem(pem, isEncryptedKeyPem(pem) ? passphrase : undefined);
  } catch (err) {
    if (err instanceof BadPassphraseError) throw new KeyUnlockError({ cause: err });
    throw err;
  }
}

/** The certificates of a PEM file, leaf first. @throws InputFileError */
export function readCertificates(pem: string, file: string): Certificate[] {
  try {
    return Certificate.fromPemBundle(pem);
  } catch (cause) {
    throw new InputFileError(file, 'a PEM certificate', { cause });
  }
}

/** @throws CertKeyMismatchError unless `cert` carries the public half of `key`. */
export async function assertCertMatchesKey(cert: Certificate, key: CryptoKey): Promise<void> {
  const spki = await exportPublicKeySpki(key);
  if (!Buffer.from(spki).equals(Buffer.from(cert.publicKeySpki))) throw new CertKeyMismatchError();
}

/**
 * Checks, with pki's chain validation (RFC 5280 §6.1), that `leaf` was issued through
 * `intermediates` by one of the pinned CA certificates, is within its validity at `now` and may
 * be used for `usage`. Revocation is the server's to judge (it refuses a revoked certificate).
 * @throws NotTrustedError with pki's reason and detail.
 */
export async function assertChainsToPinnedCa(
  leaf: Certificate,
  intermediates: Certificate[],
  pinnedPem: string,
  now: Date,
  usage?: CertificateUsage,
): Promise<void> {
  const result = await validateCertificate(leaf, {
    trustAnchors: Certificate.fromPemBundle(pinnedPem),
    intermediates,
    at: now,
    usage,
  });
  if (!result.ok) throw new NotTrustedError('the certificate', `${result.reason}: ${result.detail}`);
}

/** The login a certificate names (UID attribute, else CN). */
export function loginOf(cert: Certificate): string | undefined {
  return cert.subject.login ?? cert.subject.commonName;
}

/** UTF-8 bytes of the RFC 8785 canonical JSON of a statement (server/API.md, "Signed statements"). */
export function statementBytes(statement: Record<string, string>): Uint8Array {
  return new TextEncoder().encode(canonicalJson(statement));
}

/** True for errors pki raised about its input rather than a bug. */
export function isPkiError(err: unknown): err is PkiError {
  return err instanceof PkiError;
}

/**
 * A statement signed with the profile's key: CMS SignedData, detached, DER, base64
 * (server/API.md, "Signed statements"; RFC 5652 §5).
 */
export async function signStatement(
  statement: Record<string, string>,
  creds: { key: CryptoKey; certPem: string },
  signingTime: Date,
): Promise<string> {
  const signerCert = Certificate.fromPem(creds.certPem);
  const der = await signDetached({ content: statementBytes(statement), signerCert, signerKey: creds.key, signingTime });
  return Buffer.from(der).toString('base64');
}
