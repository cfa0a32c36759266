/**
 * SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) → profile and WebCrypto verification key. Internal.
 */
import * as pkijs from 'pkijs';
import { MalformedInputError, UnknownAlgorithmError } from './errors.js';
import { getProfile, importParams, type AlgorithmProfile } from './profiles.js';
import type { CryptoKey } from './webcrypto.js';

const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
const CURVES: Readonly<Record<string, AlgorithmProfile['name']>> = {
  '1.3.132.0.34': 'p384',
  '1.2.840.10045.3.1.7': 'p256',
};

/** The profile of a public key, or undefined when it fits none. */
export function profileOfSpki(spki: pkijs.PublicKeyInfo): AlgorithmProfile | undefined {
  const alg = spki.algorithm.algorithmId;
  if (alg === EC_PUBLIC_KEY) {
    const curve = (spki.algorithm.algorithmParams as { valueBlock?: { toString(): string } } | undefined)?.valueBlock?.toString();
    const name = curve ? CURVES[curve] : undefined;
    return name ? getProfile(name) : undefined;
  }
  if (alg === RSA_ENCRYPTION) {
    const rsa = spki.parsedKey as pkijs.RSAPublicKey | undefined;
    if (!rsa) return undefined;
    const n = rsa.modulus.valueBlock.valueHexView;
    let i = 0;
    while (i < n.length && n[i] === 0) i++;
    return (n.length - i) * 8 === 3072 ? getProfile('rsa3072') : undefined;
  }
  return undefined;
}

/**
 * Imports the key for `verify`.
 * @throws UnknownAlgorithmError when it fits no profile.
 * @throws MalformedInputError when it names a supported algorithm but its key is not a valid one
 *   (an EC point off the curve, the point at infinity or with a bad prefix byte, SEC 1 §2.3.4 /
 *   RFC 5480 §2.2; an RSA key that does not parse): WebCrypto's `DataError`, which is the
 *   sender's input, not a fault of the appliance.
 */
export async function importSpki(spki: pkijs.PublicKeyInfo, what: string): Promise<CryptoKey> {
  const profile = profileOfSpki(spki);
  if (!profile) throw new UnknownAlgorithmError(`${what} has an unsupported public key (${spki.algorithm.algorithmId}): expected P-384, P-256 or RSA-3072`);
  try {
    return await crypto.subtle.importKey('spki', spki.toSchema().toBER(false), importParams(profile), true, ['verify']);
  } catch (cause) {
    if ((cause as { name?: unknown } | null)?.name === 'DataError') {
      throw new MalformedInputError(`${what} has an invalid ${profile.name} public key: expected a valid key of that algorithm (a point on the curve for EC)`, { cause });
    }
    throw cause;
  }
}
