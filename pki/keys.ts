/**
 * Key pairs for the appliance profile, and private keys as PKCS#8 (RFC 5208 / RFC 5958), encrypted
 * with PBES2 (RFC 8018 §6.2: PBKDF2-HMAC-SHA-256 + AES-256-CBC) when a passphrase is given.
 */
import { createHash, createPrivateKey, createPublicKey, KeyObject } from 'node:crypto';
import * as pkijs from 'pkijs';
import { BadPassphraseError, InvalidParameterError, MalformedInputError, UnknownAlgorithmError } from './errors.js';
import { derToPem, splitPemBlocks } from './pem.js';
import { importParams, profileOfKey, resolveProfile, type AlgorithmProfile, type ProfileName } from './profiles.js';
import { decodeDer, primitiveOctetString, toArrayBuffer } from './der.js';
import type { CryptoKey, CryptoKeyPair } from './webcrypto.js';

/**
 * PBKDF2 iterations for encrypted private keys: OWASP's 2023 figure for PBKDF2-HMAC-SHA-256.
 * Node/OpenSSL would use only 2048, which is why encryption goes through pkijs.
 */
export const DEFAULT_PBKDF2_ITERATIONS = 600_000;

/**
 * A fresh key pair of `profile`. The private key is extractable so it can be exported encrypted.
 * @example const { privateKey, publicKey } = await generateKeyPair('p384');
 */
export async function generateKeyPair(profile: AlgorithmProfile | ProfileName): Promise<CryptoKeyPair> {
  const p = resolveProfile(profile);
  return (await crypto.subtle.generateKey(p.keyAlgorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/**
 * `key` as PKCS#8 PEM. With a passphrase: "ENCRYPTED PRIVATE KEY" (EncryptedPrivateKeyInfo, PBES2 with
 * PBKDF2-HMAC-SHA-256 and AES-256-CBC), which `openssl pkcs8 -in f -passin pass:…` reads.
 * @throws InvalidParameterError for an empty passphrase; the key must be extractable.
 */
export async function exportPrivateKeyPem(
  key: CryptoKey,
  passphrase?: string,
  options: { iterations?: number } = {},
): Promise<string> {
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', key));
  if (passphrase === undefined) return derToPem(pkcs8, 'PRIVATE KEY');
  return derToPem(await encryptPkcs8(pkcs8, passphrase, options.iterations), 'ENCRYPTED PRIVATE KEY');
}

/** DER EncryptedPrivateKeyInfo of a DER PrivateKeyInfo (also the PKCS#12 shrouded key bag content). */
export async function encryptPkcs8(pkcs8: Uint8Array, passphrase: string, iterations = DEFAULT_PBKDF2_ITERATIONS): Promise<Uint8Array> {
  if (typeof passphrase !== 'string' || passphrase.length === 0) {
    throw new InvalidParameterError('passphrase', 'expected a non-empty passphrase');
  }
  const info = decodeDer(pkcs8, 'PKCS#8 PrivateKeyInfo', (schema) => new pkijs.PrivateKeyInfo({ schema }));
  const bag = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: info });
  await bag.makeInternalValues({
    password: toArrayBuffer(new TextEncoder().encode(passphrase)),
    contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 },
    hmacHashAlgorithm: 'SHA-256',
    iterationCount: iterations,
  });
  bag.encryptedData = primitiveOctetString(bag.encryptedData);
  return new Uint8Array(bag.toSchema().toBER(false));
}


function keyObjectToCryptoKey(keyObject: KeyObject, usage: 'sign' | 'verify'): Promise<CryptoKey> {
  const details = keyObject.asymmetricKeyDetails ?? {};
  let profile: AlgorithmProfile;
  if (keyObject.asymmetricKeyType === 'ec') {
    profile = resolveProfile(details.namedCurve === 'secp384r1' ? 'p384' : details.namedCurve === 'prime256v1' ? 'p256' : unknown(`EC curve ${String(details.namedCurve)}`));
  } else if (keyObject.asymmetricKeyType === 'rsa') {
    profile = resolveProfile(details.modulusLength === 3072 ? 'rsa3072' : unknown(`RSA-${String(details.modulusLength)}`));
  } else {
    profile = resolveProfile(unknown(`key type ${String(keyObject.asymmetricKeyType)}`));
  }
  const der = usage === 'sign'
    ? keyObject.export({ format: 'der', type: 'pkcs8' })
    : keyObject.export({ format: 'der', type: 'spki' });
  return crypto.subtle.importKey(usage === 'sign' ? 'pkcs8' : 'spki', der, importParams(profile), true, [usage]);
}

function unknown(what: string): never {
  throw new UnknownAlgorithmError(`unsupported ${what}: expected P-384, P-256 or RSA-3072`);
}

/**
 * A private key from PEM: "PRIVATE KEY", "ENCRYPTED PRIVATE KEY" (any PBES2 OpenSSL writes), or the
 * legacy "EC PRIVATE KEY" / "RSA PRIVATE KEY". Imported as an extractable signing key of its profile.
 * @throws BadPassphraseError (`BAD_PASSPHRASE`) when the key is encrypted and the passphrase is missing or wrong.
 * @throws MalformedInputError (`MALFORMED_INPUT`) when the text holds no readable private key.
 * @throws UnknownAlgorithmError when the key fits no profile.
 */
export async function importPrivateKeyPem(pem: string, passphrase?: string): Promise<CryptoKey> {
  if (typeof pem !== 'string') throw new MalformedInputError('expected PEM text with a private key');
  const block = splitPemBlocks(pem).find((b) => /PRIVATE KEY$/.test(b.label));
  if (!block) throw new MalformedInputError('expected a PEM "PRIVATE KEY" or "ENCRYPTED PRIVATE KEY" block, found none');
  const encrypted = block.label === 'ENCRYPTED PRIVATE KEY';
  if (encrypted && (passphrase === undefined || passphrase === '')) {
    throw new BadPassphraseError('the private key is encrypted: a passphrase is required');
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({
      key: derToPem(block.der, block.label),
      format: 'pem',
      ...(encrypted ? { passphrase } : {}),
    });
  } catch (cause) {
    if (encrypted) throw new BadPassphraseError('the passphrase does not open this encrypted private key', { cause });
    throw new MalformedInputError(`the "${block.label}" block is not a readable private key`, { cause });
  }
  return keyObjectToCryptoKey(keyObject, 'sign');
}

/** A private key from DER PKCS#8 PrivateKeyInfo (as found in a PKCS#12 bag). */
export async function importPrivateKeyPkcs8(der: Uint8Array): Promise<CryptoKey> {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  } catch (cause) {
    throw new MalformedInputError('not a DER PKCS#8 private key', { cause });
  }
  return keyObjectToCryptoKey(keyObject, 'sign');
}

/**
 * The DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) of a public key, or of the public half of an
 * extractable private key.
 */
export async function exportPublicKeySpki(key: CryptoKey): Promise<Uint8Array> {
  if (key.type === 'public') return new Uint8Array(await crypto.subtle.exportKey('spki', key));
  profileOfKey(key);
  return new Uint8Array(createPublicKey(KeyObject.from(key)).export({ format: 'der', type: 'spki' }));
}

/** The public verification key matching an extractable private key. */
export async function publicKeyOf(privateKey: CryptoKey): Promise<CryptoKey> {
  if (privateKey.type === 'public') return privateKey;
  return keyObjectToCryptoKey(createPublicKey(KeyObject.from(privateKey)), 'verify');
}

/** SHA-256 hex of the key's DER SubjectPublicKeyInfo: the same value for a public key and its private half. */
export async function publicKeyFingerprint(key: CryptoKey): Promise<string> {
  const spki = await exportPublicKeySpki(key);
  return createHash('sha256').update(spki).digest('hex');
}
