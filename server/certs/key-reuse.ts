/**
 * Which keys may be certified. Before, nothing looked at a CSR's key among the certificates
 * already issued: a key revoked for keyCompromise could be certified again (the revocation undone
 * for whoever holds a copy), and one key could be certified for two logins (it then logs in and
 * signs as both). Keys are compared by the SHA-256 of their DER SubjectPublicKeyInfo (RFC 5280
 * §4.1.2.7) as the issued certificate carries it: pki re-encodes every key it certifies, so two
 * encodings of one key (an EC point compressed in one CSR, not in another) hash the same.
 */
import { createHash } from 'node:crypto';
import { Certificate } from '../../pki/index.js';
import type { Db } from '../vault/index.js';
import type { CertificateStore } from './certificate-store.js';
import { KeyCompromisedError, KeyInUseError } from './errors.js';

/** SHA-256 hex of the certificate's SubjectPublicKeyInfo: the key's identity across certificates. */
export function spkiSha256(cert: Certificate): string {
  return createHash('sha256').update(cert.publicKeySpki).digest('hex');
}

/**
 * Refuses to certify the key `spki` (its {@link spkiSha256}) for `login` when any certificate of
 * it was revoked for keyCompromise, or it is certified for another login. A renewal — the same
 * login, the same uncompromised key — passes. Call inside the transaction that records the new
 * certificate, so two issuances of one key at once cannot both pass.
 * @throws KeyCompromisedError, KeyInUseError
 */
export async function assertKeyMayBeCertified(store: CertificateStore, login: string, spki: string): Promise<void> {
  const holders = await store.ofKey(spki);
  const compromised = holders.find((c) => c.reason === 'keyCompromise');
  if (compromised) throw new KeyCompromisedError(compromised.serial);
  const other = holders.find((c) => c.login !== login);
  if (other) throw new KeyInUseError(other.serial, other.login);
}

/**
 * Fills the key hash of certificates recorded before it existed (migration
 * `server/certificates-2`), from their stored DER, in one transaction. A no-op once done; the
 * first open after the upgrade parses each certificate once (one per account and renewal).
 * @returns how many were filled
 */
export async function fillKeyHashes(db: Db, store: CertificateStore): Promise<number> {
  return db.transaction(async () => {
    const rows = await store.withoutKeyHash();
    for (const r of rows) await store.setKeyHash(r.serial, spkiSha256(Certificate.fromDer(r.der)));
    return rows.length;
  });
}
