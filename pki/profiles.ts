/**
 * Algorithm profiles. One profile per appliance, chosen at init: every key the appliance generates or
 * accepts, and every signature it makes, follows it.
 *
 * - `p384` (default): ECDSA on P-384 with SHA-384 — the CNSA suite for classified data
 *   (RFC 5480 §2.1.1.1 curve secp384r1, RFC 5758 §3.2 ecdsa-with-SHA384).
 * - `p256`: ECDSA on P-256 with SHA-256.
 * - `rsa3072`: RSA 3072 signing with RSASSA-PKCS1-v1_5 + SHA-384 (RFC 4055 §5 sha384WithRSAEncryption).
 *   PKCS#1 v1.5 rather than PSS because `openssl cms`, pkijs and every TLS stack handle it without
 *   parameter negotiation, and its signatures are deterministic.
 */
import { UnknownAlgorithmError } from './errors.js';
import type { Algorithm, CryptoKey, EcdsaParams, EcKeyAlgorithm, EcKeyGenParams, EcKeyImportParams, RsaHashedImportParams, RsaHashedKeyAlgorithm, RsaHashedKeyGenParams } from './webcrypto.js';

export type ProfileName = 'p384' | 'p256' | 'rsa3072';

export interface AlgorithmProfile {
  name: ProfileName;
  /** Digest used for every signature made under this profile. */
  hash: 'SHA-384' | 'SHA-256';
  /** WebCrypto `generateKey` / `importKey` parameters for keys of this profile. */
  keyAlgorithm: EcKeyGenParams | RsaHashedKeyGenParams;
  /** WebCrypto `sign` / `verify` parameters for signatures of this profile. */
  signAlgorithm: EcdsaParams | Algorithm;
}

export const DEFAULT_PROFILE: ProfileName = 'p384';

export const PROFILE_NAMES: readonly ProfileName[] = ['p384', 'p256', 'rsa3072'];

const PROFILES: Readonly<Record<ProfileName, AlgorithmProfile>> = {
  p384: {
    name: 'p384',
    hash: 'SHA-384',
    keyAlgorithm: { name: 'ECDSA', namedCurve: 'P-384' },
    signAlgorithm: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams,
  },
  p256: {
    name: 'p256',
    hash: 'SHA-256',
    keyAlgorithm: { name: 'ECDSA', namedCurve: 'P-256' },
    signAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams,
  },
  rsa3072: {
    name: 'rsa3072',
    hash: 'SHA-384',
    keyAlgorithm: {
      name: 'RSASSA-PKCS1-v1_5',
      modulusLength: 3072,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: 'SHA-384',
    },
    signAlgorithm: { name: 'RSASSA-PKCS1-v1_5' },
  },
};

/**
 * The profile called `name`.
 * @throws UnknownAlgorithmError (`UNKNOWN_ALGORITHM`) for any other name.
 * @example getProfile('p384').hash // 'SHA-384'
 */
export function getProfile(name: string): AlgorithmProfile {
  if (Object.prototype.hasOwnProperty.call(PROFILES, name)) return PROFILES[name as ProfileName];
  throw new UnknownAlgorithmError(
    `unknown algorithm profile "${String(name).slice(0, 40)}": expected one of ${PROFILE_NAMES.join(', ')}`,
  );
}

/** Accepts a profile or its name, so callers can pass whichever they hold. */
export function resolveProfile(profile: AlgorithmProfile | string): AlgorithmProfile {
  return typeof profile === 'string' ? getProfile(profile) : getProfile(profile.name);
}

/**
 * The profile a WebCrypto key belongs to, from its algorithm (curve or modulus length).
 * @throws UnknownAlgorithmError when the key fits no profile (e.g. RSA-2048, P-521, Ed25519).
 */
export function profileOfKey(key: CryptoKey): AlgorithmProfile {
  const alg = key.algorithm as Partial<EcKeyAlgorithm & RsaHashedKeyAlgorithm>;
  if (alg.name === 'ECDSA' || alg.name === 'ECDH') {
    if (alg.namedCurve === 'P-384') return PROFILES.p384;
    if (alg.namedCurve === 'P-256') return PROFILES.p256;
    throw new UnknownAlgorithmError(`unsupported EC curve ${String(alg.namedCurve)}: expected P-384 or P-256`);
  }
  if (alg.name === 'RSASSA-PKCS1-v1_5' || alg.name === 'RSA-PSS') {
    if (alg.modulusLength === 3072) return PROFILES.rsa3072;
    throw new UnknownAlgorithmError(`unsupported RSA modulus of ${String(alg.modulusLength)} bits: expected 3072`);
  }
  throw new UnknownAlgorithmError(`unsupported key algorithm ${String(alg.name)}`);
}

/** WebCrypto `importKey` parameters for a key of `profile` (the key algorithm without generation fields). */
export function importParams(profile: AlgorithmProfile): EcKeyImportParams | RsaHashedImportParams {
  if (profile.name === 'rsa3072') return { name: 'RSASSA-PKCS1-v1_5', hash: profile.hash };
  return { name: 'ECDSA', namedCurve: (profile.keyAlgorithm as EcKeyGenParams).namedCurve };
}
