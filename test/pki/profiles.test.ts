import t from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { DEFAULT_PROFILE, PROFILE_NAMES, getProfile, profileOfKey, generateKeyPair, UnknownAlgorithmError } from '../../pki/index.js';

t.test('when the default profile is asked for then it is ECDSA P-384 with SHA-384 (CNSA)', async (t) => {
  const p = getProfile(DEFAULT_PROFILE);
  t.equal(p.name, 'p384');
  t.equal(p.hash, 'SHA-384');
  t.same(p.keyAlgorithm, { name: 'ECDSA', namedCurve: 'P-384' });
});

t.test('when each profile generates a key then profileOfKey names that profile', async (t) => {
  for (const name of PROFILE_NAMES) {
    const kp = await generateKeyPair(name);
    t.equal(profileOfKey(kp.privateKey).name, name, `${name} private`);
    t.equal(profileOfKey(kp.publicKey).name, name, `${name} public`);
    t.equal(kp.privateKey.extractable, true, `${name} private key is extractable`);
  }
  t.equal(getProfile('p256').hash, 'SHA-256');
  t.equal(getProfile('rsa3072').hash, 'SHA-384');
  t.equal(getProfile('rsa3072').signAlgorithm.name, 'RSASSA-PKCS1-v1_5');
});

t.test('when an unknown profile name is given then UNKNOWN_ALGORITHM is thrown', async (t) => {
  for (const bad of ['p521', 'ed25519', '', 'constructor', '__proto__']) {
    t.throws(() => getProfile(bad), { code: 'UNKNOWN_ALGORITHM' }, JSON.stringify(bad));
  }
  const err = (() => { try { getProfile('rsa2048'); } catch (e) { return e; } })();
  t.ok(err instanceof UnknownAlgorithmError);
  t.match((err as Error).message, /expected one of p384, p256, rsa3072/);
});

t.test('when a key outside every profile is given then profileOfKey throws UNKNOWN_ALGORITHM', async (t) => {
  const rsa2048 = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const k1 = await crypto.subtle.importKey('spki', rsa2048.publicKey.export({ format: 'der', type: 'spki' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']);
  t.throws(() => profileOfKey(k1), { code: 'UNKNOWN_ALGORITHM' });
  const p521 = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-521' }, true, ['sign', 'verify']);
  t.throws(() => profileOfKey(p521.publicKey), { code: 'UNKNOWN_ALGORITHM' });
  const hmac = await crypto.subtle.generateKey({ name: 'HMAC', hash: 'SHA-256' }, true, ['sign']);
  t.throws(() => profileOfKey(hmac), { code: 'UNKNOWN_ALGORITHM' });
});
