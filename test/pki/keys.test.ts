import t, { type Test } from 'tap';
import {
  PROFILE_NAMES,
  exportPrivateKeyPem,
  exportPublicKeySpki,
  generateKeyPair,
  importPrivateKeyPem,
  publicKeyFingerprint,
  profileOfKey,
  publicKeyOf,
  type CryptoKey,
} from '../../pki/index.js';
import { openssl, tempDir } from '../helpers/pki-fixtures.js';

const FAST = { iterations: 1000 };

async function signsAndVerifies(t: Test, privateKey: CryptoKey, publicKey: CryptoKey): Promise<void> {
  const profile = profileOfKey(privateKey);
  const data = new TextEncoder().encode('sigil');
  const sig = await crypto.subtle.sign(profile.signAlgorithm, privateKey, data);
  t.ok(await crypto.subtle.verify(profile.signAlgorithm, publicKey, sig, data), `${profile.name} signature verifies`);
}

t.test('when a key is exported with a passphrase and imported again then it is the same key', async (t) => {
  for (const name of PROFILE_NAMES) {
    const kp = await generateKeyPair(name);
    const pem = await exportPrivateKeyPem(kp.privateKey, 'correct horse', FAST);
    t.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    const back = await importPrivateKeyPem(pem, 'correct horse');
    t.equal(await publicKeyFingerprint(back), await publicKeyFingerprint(kp.publicKey), `${name} fingerprint`);
    await signsAndVerifies(t, back, kp.publicKey);
  }
});

t.test('when a key is exported without a passphrase then it is plain PKCS#8 and imports', async (t) => {
  const kp = await generateKeyPair('p256');
  const pem = await exportPrivateKeyPem(kp.privateKey);
  t.match(pem, /^-----BEGIN PRIVATE KEY-----/);
  const back = await importPrivateKeyPem(pem);
  t.equal(await publicKeyFingerprint(back), await publicKeyFingerprint(kp.privateKey));
});

t.test('when openssl reads our encrypted key then it decrypts and shows PBES2 with PBKDF2-HMAC-SHA-256 and AES-256-CBC', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const kp = await generateKeyPair('p384');
  const path = tmp.write('key.pem', await exportPrivateKeyPem(kp.privateKey, 'pass phrase')); // default iterations
  const parsed = await openssl(['asn1parse', '-in', path]);
  t.match(parsed.stdout, /:PBES2/);
  t.match(parsed.stdout, /:PBKDF2/);
  t.match(parsed.stdout, /:hmacWithSHA256/);
  t.match(parsed.stdout, /:aes-256-cbc/);
  t.match(parsed.stdout, /INTEGER\s+:0927C0/, 'iteration count 600000');
  const plain = await openssl(['pkcs8', '-in', path, '-passin', 'pass:pass phrase']);
  t.equal(plain.code, 0, plain.stderr);
  const viaOpenssl = await importPrivateKeyPem(plain.stdout);
  t.equal(await publicKeyFingerprint(viaOpenssl), await publicKeyFingerprint(kp.publicKey));
  const wrong = await openssl(['pkcs8', '-in', path, '-passin', 'pass:nope']);
  t.not(wrong.code, 0, 'openssl refuses a wrong passphrase too');
});

t.test('when openssl made an encrypted key then we import it', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const path = `${tmp.dir}/ossl.pem`;
  const gen = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-aes-256-cbc', '-pass', 'pass:s3cret', '-out', path]);
  t.equal(gen.code, 0, gen.stderr);
  const { readFileSync } = await import('node:fs');
  const key = await importPrivateKeyPem(readFileSync(path, 'utf8'), 's3cret');
  t.equal(profileOfKey(key).name, 'p384');
  const pub = await openssl(['pkey', '-in', path, '-passin', 'pass:s3cret', '-pubout', '-outform', 'DER']);
  t.equal(pub.code, 0);
});

t.test('when the passphrase is wrong or missing then BAD_PASSPHRASE is thrown', async (t) => {
  const kp = await generateKeyPair('p256');
  const pem = await exportPrivateKeyPem(kp.privateKey, 'right', FAST);
  await t.rejects(importPrivateKeyPem(pem, 'wrong'), { code: 'BAD_PASSPHRASE' });
  await t.rejects(importPrivateKeyPem(pem), { code: 'BAD_PASSPHRASE' });
  await t.rejects(importPrivateKeyPem(pem, ''), { code: 'BAD_PASSPHRASE' });
});

t.test('when the input is not a private key then MALFORMED_INPUT is thrown', async (t) => {
  await t.rejects(importPrivateKeyPem('hello'), { code: 'MALFORMED_INPUT' });
  await t.rejects(importPrivateKeyPem('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), { code: 'MALFORMED_INPUT' });
  await t.rejects(importPrivateKeyPem('-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n'), { code: 'MALFORMED_INPUT' });
  await t.rejects(importPrivateKeyPem(42 as unknown as string), { code: 'MALFORMED_INPUT' });
});

t.test('when a key of no profile is imported then UNKNOWN_ALGORITHM is thrown', async (t) => {
  const ed = await openssl(['genpkey', '-algorithm', 'ED25519']);
  t.equal(ed.code, 0);
  await t.rejects(importPrivateKeyPem(ed.stdout), { code: 'UNKNOWN_ALGORITHM' });
  const rsa = await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048']);
  await t.rejects(importPrivateKeyPem(rsa.stdout), { code: 'UNKNOWN_ALGORITHM' });
});

t.test('when an empty passphrase is given for export then INVALID_PARAMETER is thrown', async (t) => {
  const kp = await generateKeyPair('p256');
  await t.rejects(exportPrivateKeyPem(kp.privateKey, ''), { code: 'INVALID_PARAMETER' });
});

t.test('when the public half of a private key is taken then SPKI and fingerprint match the public key', async (t) => {
  for (const name of PROFILE_NAMES) {
    const kp = await generateKeyPair(name);
    t.same(await exportPublicKeySpki(kp.privateKey), await exportPublicKeySpki(kp.publicKey), name);
    const pub = await publicKeyOf(kp.privateKey);
    t.equal(pub.type, 'public');
    await signsAndVerifies(t, kp.privateKey, pub);
    t.match(await publicKeyFingerprint(kp.publicKey), /^[0-9a-f]{64}$/);
  }
});
