import t from 'tap';
import { readFileSync } from 'node:fs';
import { createPkcs12, exportPrivateKeyPem, generateKeyPair, openPkcs12, publicKeyFingerprint } from '../../pki/index.js';
import { makeTestCa, openssl, tempDir } from '../helpers/pki-fixtures.js';

const NOW = new Date('2026-03-01T10:00:00Z');
const FAST = { iterations: 2048, macIterations: 2048 };

t.test('when openssl opens our PKCS#12 then it lists the chain and reads the key without -legacy', async (t) => {
  const ca = await makeTestCa('p384', () => NOW);
  const user = await ca.staff('alee');
  const p12 = await createPkcs12({ key: user.key, cert: user.cert, chain: ca.chain, password: 'envelope-7', friendlyName: 'alee' }); // default iterations
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const path = tmp.write('alee.p12', p12);
  const info = await openssl(['pkcs12', '-info', '-nokeys', '-in', path, '-passin', 'pass:envelope-7']);
  t.equal(info.code, 0, info.stderr);
  const all = info.stdout + info.stderr;
  t.match(all, /MAC: sha256, Iteration 50000/);
  t.match(all, /PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256/);
  t.match(all, /Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256/);
  t.match(all, /friendlyName: alee/);
  t.equal((info.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 3);
  const nodes = await openssl(['pkcs12', '-in', path, '-nodes', '-passin', 'pass:envelope-7']);
  t.equal(nodes.code, 0, nodes.stderr);
  t.match(nodes.stdout, /BEGIN PRIVATE KEY/);
  const keyPem = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(nodes.stdout)![0];
  const fromOpenssl = await openssl(['pkey', '-pubout'], keyPem);
  t.match(fromOpenssl.stdout, /BEGIN PUBLIC KEY/);
  const spkiPem = (await openssl(['x509', '-noout', '-pubkey'], user.cert.pem)).stdout;
  t.equal(fromOpenssl.stdout, spkiPem, 'the key openssl extracted is the certificate key');
  const bad = await openssl(['pkcs12', '-info', '-nokeys', '-in', path, '-passin', 'pass:wrong']);
  t.not(bad.code, 0);
  t.match(bad.stderr, /mac verify (failure|error)/i);
});

t.test('when we open our own PKCS#12 then key, certificate and chain come back', async (t) => {
  for (const profile of ['p256', 'rsa3072'] as const) {
    const ca = await makeTestCa(profile, () => NOW);
    const user = await ca.staff('bob');
    const p12 = await createPkcs12({ key: user.key, cert: user.cert, chain: [ca.root.cert, ca.issuing.cert], password: 'Grüße-π', ...FAST });
    const opened = await openPkcs12(p12, 'Grüße-π');
    t.equal(opened.cert.fingerprint, user.cert.fingerprint, `${profile} certificate`);
    t.same(opened.chain.map((c) => c.fingerprint), [ca.issuing.cert.fingerprint, ca.root.cert.fingerprint], `${profile} chain ordered issuer-first`);
    t.equal(await publicKeyFingerprint(opened.key), await publicKeyFingerprint(user.publicKey), `${profile} key`);
    t.equal(opened.key.type, 'private');
  }
});

t.test('when openssl pkcs12 -export made the file then we open it', async (t) => {
  const ca = await makeTestCa('p384', () => NOW);
  const user = await ca.staff('carol');
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const keyPath = tmp.write('k.pem', await exportPrivateKeyPem(user.key));
  const out = `${tmp.dir}/o.p12`;
  const r = await openssl(['pkcs12', '-export', '-inkey', keyPath, '-in', tmp.write('c.pem', user.cert.pem), '-certfile', tmp.write('chain.pem', ca.issuing.cert.pem + ca.root.cert.pem), '-passout', 'pass:from-openssl', '-out', out]);
  t.equal(r.code, 0, r.stderr);
  const opened = await openPkcs12(new Uint8Array(readFileSync(out)), 'from-openssl');
  t.equal(opened.cert.fingerprint, user.cert.fingerprint);
  t.equal(opened.chain.length, 2);
  await t.rejects(openPkcs12(new Uint8Array(readFileSync(out)), 'nope'), { code: 'PKCS12_BAD_PASSWORD' });
});

t.test('when openssl pkcs12 -export -nomac made the file then we open it, and a wrong password still fails', async (t) => {
  const ca = await makeTestCa('p384', () => NOW);
  const user = await ca.staff('nina');
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const out = `${tmp.dir}/nomac.p12`;
  const r = await openssl(['pkcs12', '-export', '-nomac', '-inkey', tmp.write('k.pem', await exportPrivateKeyPem(user.key)), '-in', tmp.write('c.pem', user.cert.pem), '-passout', 'pass:no-mac', '-out', out]);
  t.equal(r.code, 0, r.stderr);
  const opened = await openPkcs12(new Uint8Array(readFileSync(out)), 'no-mac');
  t.equal(opened.cert.fingerprint, user.cert.fingerprint, 'no MAC is no integrity check, not a wrong password');
  await t.rejects(openPkcs12(new Uint8Array(readFileSync(out)), 'nope'), { code: 'PKCS12_BAD_PASSWORD' }, 'the key bag proves the password');
});

t.test('when openssl pkcs12 -export -legacy made the file then the error names the legacy encryption, not the password', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const user = await ca.staff('lena');
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const out = `${tmp.dir}/legacy.p12`;
  const r = await openssl(['pkcs12', '-export', '-legacy', '-inkey', tmp.write('k.pem', await exportPrivateKeyPem(user.key)), '-in', tmp.write('c.pem', user.cert.pem), '-passout', 'pass:old', '-out', out]);
  if (r.code !== 0) {
    t.comment(`not run: this openssl cannot write -legacy (no legacy provider): ${r.stderr.split('\n')[0]}`);
    return;
  }
  await t.rejects(openPkcs12(new Uint8Array(readFileSync(out)), 'old'), { code: 'UNKNOWN_ALGORITHM', message: /legacy scheme .*without -legacy/ });
  await t.rejects(openPkcs12(new Uint8Array(readFileSync(out)), 'nope'), { code: 'PKCS12_BAD_PASSWORD' }, 'its MAC still tells a wrong password');
});

t.test('when the password is wrong then PKCS12_BAD_PASSWORD', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const user = await ca.staff('dave');
  const p12 = await createPkcs12({ key: user.key, cert: user.cert, chain: ca.chain, password: 'right', ...FAST });
  await t.rejects(openPkcs12(p12, 'wrong'), { code: 'PKCS12_BAD_PASSWORD' });
  await t.rejects(openPkcs12(p12, ''), { code: 'PKCS12_BAD_PASSWORD' });
});

t.test('when the PKCS#12 lacks a key then PKCS12_INCOMPLETE', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const user = await ca.staff('erin');
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const out = `${tmp.dir}/nokey.p12`;
  const r = await openssl(['pkcs12', '-export', '-nokeys', '-in', tmp.write('c.pem', user.cert.pem), '-passout', 'pass:pw', '-out', out]);
  t.equal(r.code, 0, r.stderr);
  await t.rejects(openPkcs12(new Uint8Array(readFileSync(out)), 'pw'), { code: 'PKCS12_INCOMPLETE' });
});

t.test('when inputs are bad then typed errors: MALFORMED_INPUT, INVALID_PARAMETER', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const user = await ca.staff('frank');
  const other = await generateKeyPair('p256');
  await t.rejects(openPkcs12(new Uint8Array([1, 2, 3, 4]), 'x'), { code: 'MALFORMED_INPUT' });
  await t.rejects(openPkcs12(ca.root.cert.der, 'x'), { code: 'MALFORMED_INPUT' });
  await t.rejects(createPkcs12({ key: other.privateKey, cert: user.cert, chain: [], password: 'x', ...FAST }), { code: 'INVALID_PARAMETER', field: 'key' });
  await t.rejects(createPkcs12({ key: user.key, cert: user.cert, chain: [], password: '', ...FAST }), { code: 'INVALID_PARAMETER', field: 'password' });
});
