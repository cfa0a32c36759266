/**
 * Finding and keying the signer of a CMS signature (cms-verify-core.ts, cms-verify.ts): caches of
 * parsed certificates and imported keys, so the certificate carried by every message is parsed and
 * imported once.
 * Internal to pki/.
 */
import { Certificate } from './certificate.js';
import type { HashName } from './cms-algorithms.js';
import type { ParsedSignedData } from './cms-parse.js';
import type { CryptoKey } from './webcrypto.js';

const subtle = globalThis.crypto.subtle;

export interface SignerProblem {
  reason: 'signer-mismatch' | 'signer-not-found' | 'malformed';
  detail: string;
}

function problem(reason: SignerProblem['reason'], detail: string): SignerProblem {
  return { reason, detail };
}

/** Parsed certificates by DER, so the certificate embedded in every message is parsed once. */
const certificateCache = new Map<string, Certificate>();
const CERTIFICATE_CACHE_SIZE = 512;

export function cachedCertificate(der: Buffer): Certificate {
  const key = der.toString('base64');
  let cert = certificateCache.get(key);
  if (cert) {
    certificateCache.delete(key); // re-insert: Map order is the LRU order
  } else {
    cert = Certificate.fromDer(der);
    if (certificateCache.size >= CERTIFICATE_CACHE_SIZE) certificateCache.delete(certificateCache.keys().next().value as string);
  }
  certificateCache.set(key, cert);
  return cert;
}

/** RSA keys carry their hash in WebCrypto; a signature with another hash needs its own import. */
const rsaKeysByHash = new WeakMap<Certificate, Map<HashName, Promise<CryptoKey>>>();

/** Keys already imported, by certificate and hash, for the synchronous fast path of verification. */
const readyKeys = new WeakMap<Certificate, Map<HashName, CryptoKey>>();

/** The verification key of `cert` for `hash` if it was imported before; saves a promise per message. */
export function verificationKeyIfReady(cert: Certificate, hash: HashName): CryptoKey | undefined {
  return readyKeys.get(cert)?.get(hash);
}

/**
 * The verification key of `cert` for signatures hashed with `hash`.
 * @throws UnknownAlgorithmError when the key fits no Sigil profile.
 */
export async function verificationKey(cert: Certificate, hash: HashName): Promise<CryptoKey> {
  let key = await cert.publicKey();
  const keyHash = (key.algorithm as { hash?: { name?: string } }).hash?.name;
  if (key.algorithm.name === 'RSASSA-PKCS1-v1_5' && keyHash !== hash) {
    let byHash = rsaKeysByHash.get(cert);
    if (!byHash) rsaKeysByHash.set(cert, (byHash = new Map()));
    let imported = byHash.get(hash);
    if (!imported) {
      imported = subtle.importKey('spki', cert.publicKeySpki, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['verify']);
      byHash.set(hash, imported);
      imported.catch(() => byHash.delete(hash));
    }
    key = await imported;
  }
  let ready = readyKeys.get(cert);
  if (!ready) readyKeys.set(cert, (ready = new Map()));
  ready.set(hash, key);
  return key;
}

/** Certificate.serialNumber is computed per call; the verifier asks for it on every message. */
const serials = new WeakMap<Certificate, string>();

function sidMatches(signer: ParsedSignedData['signer'], cert: Certificate): boolean {
  if (signer.skiHex !== undefined) return cert.subjectKeyIdentifier === signer.skiHex;
  let serial = serials.get(cert);
  if (serial === undefined) serials.set(cert, (serial = cert.serialNumber));
  return signer.serialHex === serial && signer.issuerDer !== undefined && signer.issuerDer.equals(cert.issuerNameDer);
}

function describeSid(signer: ParsedSignedData['signer']): string {
  return signer.skiHex !== undefined ? `subjectKeyIdentifier ${signer.skiHex}` : `serial ${signer.serialHex}`;
}

/**
 * Signer certificates seen before, by signer identifier. A hit must still be byte-for-byte inside the
 * message (Buffer#indexOf, a memmem), so a look-alike certificate with the same issuer and serial
 * cannot stand in for the real one, nor push it out: it only joins the short list.
 */
const signersBySid = new Map<string, Certificate[]>();
const SIGNERS_PER_SID = 4;

function sidKey(signer: ParsedSignedData['signer']): string {
  return signer.skiHex !== undefined ? `k:${signer.skiHex}` : `i:${signer.serialHex}:${signer.issuerDer?.toString('base64')}`;
}

function rememberSigner(key: string, cert: Certificate): void {
  const list = (signersBySid.get(key) ?? []).filter((c) => c !== cert);
  signersBySid.delete(key);
  signersBySid.set(key, [cert, ...list].slice(0, SIGNERS_PER_SID));
  if (signersBySid.size > CERTIFICATE_CACHE_SIZE) signersBySid.delete(signersBySid.keys().next().value as string);
}

/**
 * The signer certificate of `parsed`: `expectedSigner` when given and named by the SignerInfo, else
 * the embedded certificate the SignerInfo names. `message` is the whole signature's bytes.
 */
export function findSigner(parsed: ParsedSignedData, message: Buffer, expectedSigner?: Certificate): Certificate | SignerProblem {
  if (expectedSigner) {
    if (sidMatches(parsed.signer, expectedSigner)) return expectedSigner;
    return problem('signer-mismatch', `signed by ${describeSid(parsed.signer)}, expected ${expectedSigner.subjectString} (serial ${expectedSigner.serialNumber})`);
  }
  const key = sidKey(parsed.signer);
  for (const known of signersBySid.get(key) ?? []) {
    if (message.indexOf(known.der) !== -1) return known;
  }
  for (const der of parsed.certificates) {
    let cert: Certificate;
    try {
      cert = cachedCertificate(der);
    } catch {
      return problem('malformed', 'an embedded certificate is not a valid X.509 v3 certificate');
    }
    if (sidMatches(parsed.signer, cert)) {
      rememberSigner(key, cert);
      return cert;
    }
  }
  return problem('signer-not-found', `no embedded certificate matches the signer (${describeSid(parsed.signer)})`);
}
