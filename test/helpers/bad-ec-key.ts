/**
 * Certification requests whose EC public key is invalid although their algorithm is supported:
 * the point off the curve, with a bad prefix byte, or all zeros (review: these got 500 INTERNAL).
 * Only the key bytes change, so the DER still parses; the signature no longer matters.
 */
import { createCsr, exportPublicKeySpki, generateKeyPair, type ProfileName } from '../../pki/index.js';

export type BadEcKey = 'off-curve' | 'bad-prefix' | 'zero-point';
export const BAD_EC_KEYS: readonly BadEcKey[] = ['off-curve', 'bad-prefix', 'zero-point'];

/** The DER of a fresh `profile` CSR with its public key made invalid as `how` says. */
export async function csrWithBadEcKey(profile: ProfileName & ('p256' | 'p384'), how: BadEcKey): Promise<Uint8Array> {
  const keyPair = await generateKeyPair(profile);
  const csr = await createCsr({ keyPair, subject: { commonName: 'x' } });
  const spki = Buffer.from(await exportPublicKeySpki(keyPair.publicKey));
  const der = Buffer.from(csr.der);
  const at = der.indexOf(spki);
  if (at < 0) throw new Error('the CSR does not carry its SPKI verbatim');
  // An uncompressed point ends the SPKI: 0x04 || X || Y (SEC 1 §2.3.3).
  const pointLen = profile === 'p256' ? 65 : 97;
  const point = at + spki.length - pointLen;
  if (der[point] !== 0x04) throw new Error('expected an uncompressed point');
  if (how === 'off-curve') der[point + pointLen - 1]! ^= 0x01;
  else if (how === 'bad-prefix') der[point] = 0x05;
  else der.fill(0, point + 1, point + pointLen);
  return new Uint8Array(der);
}
