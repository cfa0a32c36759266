import t from 'tap';
import { readFileSync } from 'node:fs';
import { CLEARANCES, Certificate, generateKeyPair } from '../../pki/index.js';
import { makeTestCa, openssl, tempDir } from '../helpers/pki-fixtures.js';

const NOW = new Date('2026-03-01T10:00:00Z');
const caP = makeTestCa('p256', () => NOW);

t.test('when a staff certificate is parsed then every field reads back', async (t) => {
  const ca = await caP;
  const kp = await generateKeyPair('p256');
  const cert = await ca.issuer.issueStaffCertificate({
    fullName: 'Ann Lee, Jr.',
    login: 'alee',
    organization: 'Ministry of Tests',
    department: 'Signals',
    clearance: 'top-secret',
    validityDays: 30,
    publicKey: kp.publicKey,
  });
  const again = Certificate.fromPem(cert.pem);
  t.same(again.subject, { commonName: 'Ann Lee, Jr.', login: 'alee', organization: 'Ministry of Tests', organizationalUnit: 'Signals' });
  t.equal(again.subjectString, 'CN=Ann Lee\\, Jr.,UID=alee,OU=Signals,O=Ministry of Tests');
  t.same(again.issuer, ca.issuing.cert.subject);
  t.equal(again.notBefore.toISOString(), '2026-03-01T09:55:00.000Z', 'backdated 5 minutes');
  t.equal(again.notAfter.toISOString(), '2026-03-31T10:00:00.000Z');
  t.equal(again.isCA, false);
  t.equal(again.pathLength, undefined);
  t.same(again.keyUsage, ['digitalSignature', 'nonRepudiation']);
  t.same(again.extendedKeyUsage, ['clientAuth', 'emailProtection']);
  t.equal(again.clearance, 'top-secret');
  t.same(again.subjectAltNames, { dns: [], ip: [] });
  t.equal(again.profile, 'p256');
  t.match(again.serialNumber, /^[4-7][0-9a-f]{31}$/);
  t.equal(again.authorityKeyIdentifier, ca.issuing.cert.subjectKeyIdentifier);
  t.equal(again.fingerprint, cert.fingerprint);
  t.same(again.der, cert.der);
});

t.test('when each clearance level is issued then the certificate carries exactly that level', async (t) => {
  const ca = await caP;
  for (const level of CLEARANCES) {
    const { cert } = await ca.staff(`u-${level}`, level);
    t.equal(Certificate.fromDer(cert.der).clearance, level, level);
  }
});

t.test('when openssl prints the fingerprint then it equals ours', async (t) => {
  const ca = await caP;
  const { cert } = await ca.staff('fp');
  const out = await openssl(['x509', '-noout', '-fingerprint', '-sha256'], cert.pem);
  t.equal(out.stdout.trim().split('=')[1].replace(/:/g, '').toLowerCase(), cert.fingerprint);
});

t.test('when a certificate made by openssl is parsed then its fields read back', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const r = await openssl([
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', `${tmp.dir}/k.pem`,
    '-out', `${tmp.dir}/c.pem`, '-days', '10', '-subj', '/C=XX/O=Other Org/CN=other.example/emailAddress=a@b.example',
    '-addext', 'subjectAltName=DNS:other.example,IP:10.0.0.1,IP:2001:db8::1',
  ]);
  t.equal(r.code, 0, r.stderr);
  const cert = Certificate.fromPem(readFileSync(`${tmp.dir}/c.pem`, 'utf8'));
  t.same(cert.subject, { country: 'XX', organization: 'Other Org', commonName: 'other.example', emailAddress: 'a@b.example' });
  t.same(cert.subjectAltNames, { dns: ['other.example'], ip: ['10.0.0.1', '2001:db8:0:0:0:0:0:1'] });
  t.equal(cert.profile, 'p384');
  t.equal(cert.clearance, undefined);
  t.equal(cert.isSelfIssued, true);
  t.ok(await cert.isIssuedBy(cert), 'self-signed signature verifies');
  const key = await cert.publicKey();
  t.equal(key.type, 'public');
  t.equal(await cert.publicKey(), key, 'public key is cached');
});

t.test('when a bundle holds several certificates then fromPemBundle returns them in order', async (t) => {
  const ca = await caP;
  const bundle = `junk before\n${ca.issuing.cert.pem}between\n${ca.root.cert.pem}`;
  const certs = Certificate.fromPemBundle(bundle);
  t.same(certs.map((c) => c.fingerprint), [ca.issuing.cert.fingerprint, ca.root.cert.fingerprint]);
});

t.test('when the input is garbage then MALFORMED_INPUT is thrown, never a crash', async (t) => {
  const ca = await caP;
  const der = ca.root.cert.der;
  const cases: Array<[string, () => unknown]> = [
    ['plain text', () => Certificate.fromPem('not a certificate')],
    ['wrong label', () => Certificate.fromPem(ca.root.cert.pem.replace(/CERTIFICATE/g, 'X509 CRL'))],
    ['bad base64', () => Certificate.fromPem('-----BEGIN CERTIFICATE-----\n@@@@\n-----END CERTIFICATE-----\n')],
    ['empty DER', () => Certificate.fromDer(new Uint8Array(0))],
    ['random bytes', () => Certificate.fromDer(crypto.getRandomValues(new Uint8Array(200)))],
    ['truncated', () => Certificate.fromDer(der.subarray(0, der.length - 10))],
    ['trailing bytes', () => Certificate.fromDer(new Uint8Array([...der, 0, 0]))],
    ['a SEQUENCE that is no certificate', () => Certificate.fromDer(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]))],
    ['empty bundle', () => Certificate.fromPemBundle('nothing here')],
    ['non-string PEM', () => Certificate.fromPem(undefined as unknown as string)],
  ];
  for (const [name, fn] of cases) t.throws(fn, { code: 'MALFORMED_INPUT' }, name);
});
