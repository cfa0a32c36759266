/**
 * PKCS#12 (RFC 7292) delivery of a generated key with its certificate chain, in the shape OpenSSL 3
 * writes by default so `openssl pkcs12` reads it without `-legacy`:
 * - the private key in a PKCS8ShroudedKeyBag (§4.2.2) encrypted with PBES2 (PBKDF2-HMAC-SHA-256,
 *   AES-256-CBC; RFC 8018 §6.2), in a plain Data safe;
 * - the certificates in CertBags (§4.2.3) inside a PBES2-encrypted EncryptedData safe;
 * - password integrity with HMAC-SHA-256 over the PKCS#12 KDF (Appendix B).
 * node-forge cannot put EC keys in PKCS#12, hence pkijs.
 */
import { createHash } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { Certificate } from './certificate.js';
import { decodeDer, toArrayBuffer } from './der.js';
import { BadPasswordError, InvalidParameterError, MalformedInputError, Pkcs12IncompleteError, UnknownAlgorithmError } from './errors.js';
import { DEFAULT_PBKDF2_ITERATIONS, encryptPkcs8, exportPublicKeySpki, importPrivateKeyPkcs8 } from './keys.js';
import type { CryptoKey } from './webcrypto.js';

const BAG = {
  key: '1.2.840.113549.1.12.10.1.1',
  shroudedKey: '1.2.840.113549.1.12.10.1.2',
  cert: '1.2.840.113549.1.12.10.1.3',
} as const;
const ATTR_FRIENDLY_NAME = '1.2.840.113549.1.9.20';
const ATTR_LOCAL_KEY_ID = '1.2.840.113549.1.9.21';
const X509_CERT = '1.2.840.113549.1.9.22.1';

/**
 * Iterations of the integrity MAC's PKCS#12 KDF. pkijs runs that KDF in JavaScript on the event loop
 * (~7 ms per 1000), so this stays well below the key bag's PBKDF2 count (which runs in WebCrypto).
 * OpenSSL's own default is 2048.
 */
export const DEFAULT_MAC_ITERATIONS = 50_000;

export interface CreatePkcs12Params {
  key: CryptoKey;
  cert: Certificate;
  /** CA certificates to include (issuing CA, root). */
  chain: Certificate[];
  password: string;
  friendlyName?: string;
  /** PBKDF2 iterations for the key and certificate safes. Default DEFAULT_PBKDF2_ITERATIONS. */
  iterations?: number;
  /** Iterations of the integrity MAC. Default DEFAULT_MAC_ITERATIONS. */
  macIterations?: number;
}

function attributes(localKeyId: Uint8Array, friendlyName?: string): pkijs.Attribute[] {
  const attrs = [new pkijs.Attribute({ type: ATTR_LOCAL_KEY_ID, values: [new asn1js.OctetString({ valueHex: toArrayBuffer(localKeyId) })] })];
  if (friendlyName) attrs.push(new pkijs.Attribute({ type: ATTR_FRIENDLY_NAME, values: [new asn1js.BmpString({ value: friendlyName })] }));
  return attrs;
}

/**
 * A password-protected PKCS#12 holding `key`, `cert` and `chain`, as DER.
 * @throws InvalidParameterError when the password is empty or the key is not the certificate's.
 */
export async function createPkcs12(p: CreatePkcs12Params): Promise<Uint8Array> {
  if (typeof p.password !== 'string' || p.password.length === 0) throw new InvalidParameterError('password', 'expected a non-empty password');
  const spki = await exportPublicKeySpki(p.key);
  if (!Buffer.from(spki).equals(Buffer.from(p.cert.publicKeySpki))) {
    throw new InvalidParameterError('key', `the private key does not belong to ${p.cert.subjectString}`);
  }
  const iterations = p.iterations ?? DEFAULT_PBKDF2_ITERATIONS;
  const password = toArrayBuffer(new TextEncoder().encode(p.password));
  // localKeyId ties the key bag to its certificate bag, as OpenSSL does (SHA-1 of the certificate).
  const localKeyId = new Uint8Array(createHash('sha1').update(p.cert.der).digest());

  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', p.key));
  const shrouded = decodeDer(await encryptPkcs8(pkcs8, p.password, iterations), 'EncryptedPrivateKeyInfo', (schema) => new pkijs.PKCS8ShroudedKeyBag({ schema }));
  const keySafe = new pkijs.SafeContents({
    safeBags: [new pkijs.SafeBag({ bagId: BAG.shroudedKey, bagValue: shrouded, bagAttributes: attributes(localKeyId, p.friendlyName) })],
  });
  const certBag = (cert: Certificate, attrs?: pkijs.Attribute[]) =>
    new pkijs.SafeBag({
      bagId: BAG.cert,
      bagValue: new pkijs.CertBag({ parsedValue: cert.asn }),
      ...(attrs ? { bagAttributes: attrs } : {}),
    });
  const certSafe = new pkijs.SafeContents({
    safeBags: [certBag(p.cert, attributes(localKeyId, p.friendlyName)), ...p.chain.map((c) => certBag(c))],
  });

  const pfx = new pkijs.PFX({
    parsedValue: {
      integrityMode: 0,
      authenticatedSafe: new pkijs.AuthenticatedSafe({
        parsedValue: { safeContents: [{ privacyMode: 1, value: certSafe }, { privacyMode: 0, value: keySafe }] },
      }),
    },
  });
  await pfx.parsedValue!.authenticatedSafe!.makeInternalValues({
    safeContents: [
      { password, contentEncryptionAlgorithm: { name: 'AES-CBC', length: 256 }, hmacHashAlgorithm: 'SHA-256', iterationCount: iterations },
      {},
    ],
  });
  await pfx.makeInternalValues({
    password,
    iterations: p.macIterations ?? DEFAULT_MAC_ITERATIONS,
    pbkdf2HashAlgorithm: 'SHA-256',
    hmacHashAlgorithm: 'SHA-256',
  } as never);
  return new Uint8Array(pfx.toSchema().toBER(false));
}

/** CMS EncryptedData: an encrypted SafeContents. */
const ENCRYPTED_DATA = '1.2.840.113549.1.7.6';

/**
 * PKCS#12's own password-based encryption schemes (RFC 7292 appendix C: RC2, RC4, two- and
 * three-key 3DES), what `openssl pkcs12 -legacy` and older tools write. WebCrypto implements none
 * of those ciphers, so such a file cannot be opened here; saying so beats "wrong password".
 */
const LEGACY_PBE = '1.2.840.113549.1.12.1.';

function refuseLegacy(oid: string): void {
  if (oid.startsWith(LEGACY_PBE)) {
    throw new UnknownAlgorithmError(
      `the PKCS#12 is encrypted with a legacy scheme (${oid}, e.g. from openssl pkcs12 -legacy) that Sigil cannot read; export it again without -legacy (AES-256, PBKDF2)`,
    );
  }
}

/**
 * Refuses a PFX whose encrypted safes use a legacy scheme. Read from a fresh decoding of `der`:
 * pkijs's failed attempt leaves the parsed safes unusable for a second reading.
 */
async function refuseLegacySafes(der: Uint8Array, password: ArrayBuffer): Promise<void> {
  const pfx = decodeDer(der, 'PKCS#12 PFX', (schema) => new pkijs.PFX({ schema }));
  await pfx.parseInternalValues({ password, checkIntegrity: false });
  for (const c of pfx.parsedValue?.authenticatedSafe?.safeContents ?? []) {
    if (c.contentType !== ENCRYPTED_DATA) continue;
    refuseLegacy(new pkijs.EncryptedData({ schema: c.content }).encryptedContentInfo.contentEncryptionAlgorithm.algorithmId);
  }
}

/**
 * Whether `der` has the outer form of a PKCS#12 PFX (RFC 7292 §4), read without a password: so a
 * caller can tell "not a PKCS#12 at all" before it asks for one or changes anything.
 */
export function isPkcs12(der: Uint8Array): boolean {
  try {
    decodeDer(der, 'PKCS#12 PFX', (schema) => new pkijs.PFX({ schema }));
    return true;
  } catch {
    return false;
  }
}

/**
 * Opens a PKCS#12 made by `createPkcs12` or by `openssl pkcs12 -export` (OpenSSL 3 defaults, with
 * or without a MAC).
 * @returns the private key, the certificate matching it, and the other certificates ordered from
 *   the certificate's issuer upwards where they chain.
 * @throws BadPasswordError (`PKCS12_BAD_PASSWORD`) when the MAC or an encrypted safe does not open.
 * @throws MalformedInputError when the bytes are not PKCS#12.
 * @throws UnknownAlgorithmError when it is encrypted with a legacy PKCS#12 scheme (RC2, 3DES).
 * @throws Pkcs12IncompleteError when there is no key or no certificate for it.
 */
export async function openPkcs12(der: Uint8Array, password: string): Promise<{ key: CryptoKey; cert: Certificate; chain: Certificate[] }> {
  const pfx = decodeDer(der, 'PKCS#12 PFX', (schema) => new pkijs.PFX({ schema }));
  const pw = toArrayBuffer(new TextEncoder().encode(password ?? ''));
  try {
    // Without a MAC (`openssl pkcs12 -nomac`) there is no integrity to check: the password is
    // still proven by the encrypted key bag opening, and the key then matching its certificate.
    await pfx.parseInternalValues({ password: pw, checkIntegrity: pfx.macData !== undefined });
  } catch (cause) {
    if (/integrity/i.test((cause as Error)?.message ?? '')) throw new BadPasswordError('the PKCS#12 password is wrong (integrity check failed)', { cause });
    throw new MalformedInputError('the PKCS#12 content could not be read', { cause });
  }
  const safe = pfx.parsedValue?.authenticatedSafe;
  if (!safe) throw new MalformedInputError('the PKCS#12 has no authenticated safe');
  try {
    await safe.parseInternalValues({ safeContents: safe.safeContents.map(() => ({ password: pw })) });
  } catch (cause) {
    await refuseLegacySafes(der, pw);
    throw new BadPasswordError('an encrypted PKCS#12 safe does not open with this password', { cause });
  }
  const keys: Uint8Array[] = [];
  const certs: Certificate[] = [];
  for (const content of safe.parsedValue?.safeContents ?? []) {
    for (const bag of content.value.safeBags) {
      if (bag.bagId === BAG.shroudedKey) {
        const shrouded = bag.bagValue as pkijs.PKCS8ShroudedKeyBag;
        refuseLegacy(shrouded.encryptionAlgorithm.algorithmId);
        try {
          await (shrouded as unknown as { parseInternalValues(p: { password: ArrayBuffer }): Promise<void> }).parseInternalValues({ password: pw });
        } catch (cause) {
          throw new BadPasswordError('the PKCS#12 key bag does not open with this password', { cause });
        }
        keys.push(new Uint8Array(shrouded.parsedValue!.toSchema().toBER(false)));
      } else if (bag.bagId === BAG.key) {
        keys.push(new Uint8Array((bag.bagValue as pkijs.PrivateKeyInfo).toSchema().toBER(false)));
      } else if (bag.bagId === BAG.cert) {
        const certBag = bag.bagValue as pkijs.CertBag;
        if (certBag.certId !== X509_CERT) continue;
        const value = certBag.certValue;
        const bytes = value instanceof asn1js.OctetString ? value.getValue() : (certBag.parsedValue as pkijs.Certificate).toSchema().toBER(false);
        certs.push(Certificate.fromDer(new Uint8Array(bytes)));
      }
    }
  }
  if (keys.length === 0) throw new Pkcs12IncompleteError('the PKCS#12 holds no private key');
  const key = await importPrivateKeyPkcs8(keys[0]);
  const spki = Buffer.from(await exportPublicKeySpki(key));
  const cert = certs.find((c) => spki.equals(Buffer.from(c.publicKeySpki)));
  if (!cert) throw new Pkcs12IncompleteError('the PKCS#12 holds no certificate for its private key');
  const rest = certs.filter((c) => c !== cert);
  const chain: Certificate[] = [];
  let current = cert;
  for (;;) {
    const next = rest.find((c) => !chain.includes(c) && c !== current && c.subjectNameDer.equals(current.issuerNameDer));
    if (!next || current.isSelfIssued) break;
    chain.push(next);
    current = next;
  }
  for (const c of rest) if (!chain.includes(c)) chain.push(c);
  return { key, cert, chain };
}
