import t from 'tap';
import {
  Issuer,
  PROFILE_NAMES,
  createCaHierarchy,
  generateKeyPair,
  SIGIL_AUDIT_SIGNING_OID,
  SIGIL_SECURITY_POLICY_OID,
  type ProfileName,
} from '../../pki/index.js';
import { makeTestCa, openssl, tempDir } from '../helpers/pki-fixtures.js';

const NOW = new Date('2026-03-01T10:00:00Z');

async function x509Text(pem: string): Promise<string> {
  const out = await openssl(['x509', '-noout', '-text'], pem);
  if (out.code !== 0) throw new Error(out.stderr);
  return out.stdout;
}

t.test('when a hierarchy is created then the root is a self-signed CA with keyCertSign+cRLSign and pathLen 1', async (t) => {
  const { root, issuing } = await createCaHierarchy({ profile: 'p384', organization: 'Ministry of Tests', now: () => NOW });
  t.equal(root.cert.isSelfIssued, true);
  t.ok(await root.cert.isIssuedBy(root.cert), 'root signature verifies with its own key');
  t.equal(root.cert.isCA, true);
  t.equal(root.cert.pathLength, 1);
  t.same(root.cert.keyUsage, ['keyCertSign', 'cRLSign']);
  t.equal(root.cert.notAfter.toISOString(), '2046-02-24T10:00:00.000Z', '7300 days');
  t.equal(root.cert.authorityKeyIdentifier, root.cert.subjectKeyIdentifier);
  t.equal(issuing.cert.isCA, true);
  t.equal(issuing.cert.pathLength, 0);
  t.same(issuing.cert.keyUsage, ['keyCertSign', 'cRLSign']);
  t.ok(await issuing.cert.isIssuedBy(root.cert), 'issuing CA signed by root');
  t.notOk(await root.cert.isIssuedBy(issuing.cert));
  t.equal(issuing.cert.notAfter.toISOString(), '2036-02-27T10:00:00.000Z', '3650 days');
  t.equal(root.key.type, 'private');

  const rootText = await x509Text(root.cert.pem);
  t.match(rootText, /Basic Constraints: critical\s+CA:TRUE, pathlen:1/);
  t.match(rootText, /Key Usage: critical\s+Certificate Sign, CRL Sign/);
  t.match(rootText, /Signature Algorithm: ecdsa-with-SHA384/);
  t.match(rootText, /Subject: O = Ministry of Tests, CN = Ministry of Tests Sigil Root CA/);
  const issuingText = await x509Text(issuing.cert.pem);
  t.match(issuingText, /CA:TRUE, pathlen:0/);
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const v = await openssl(['verify', '-CAfile', tmp.write('root.pem', root.cert.pem), '-x509_strict', tmp.write('issuing.pem', issuing.cert.pem)]);
  t.equal(v.code, 0, v.stdout + v.stderr);
});

for (const profile of PROFILE_NAMES) {
  t.test(`when the ${profile} profile issues staff, TLS and audit certificates then openssl reads the intended profiles`, async (t) => {
    const ca = await makeTestCa(profile as ProfileName, () => NOW);
    const tmp = tempDir();
    t.teardown(tmp.cleanup);
    const chain = tmp.write('chain.pem', ca.issuing.cert.pem + ca.root.cert.pem);
    const kp = await generateKeyPair(profile as ProfileName);
    const staff = await ca.issuer.issueStaffCertificate({ fullName: 'Ann Lee', login: 'alee', organization: 'Ministry of Tests', department: 'Signals', clearance: 'secret', publicKey: kp.publicKey });
    const tls = await ca.issuer.issueTlsServerCertificate({ publicKey: kp.publicKey, commonName: 'sigil.local', dnsNames: ['sigil.local', 'localhost'], ipAddresses: ['127.0.0.1', '::1'] });
    const audit = await ca.issuer.issueAuditCertificate({ publicKey: kp.publicKey, commonName: 'Sigil audit log' });

    const sig = profile === 'p256' ? 'ecdsa-with-SHA256' : profile === 'p384' ? 'ecdsa-with-SHA384' : 'sha384WithRSAEncryption';
    const staffText = await x509Text(staff.pem);
    t.match(staffText, new RegExp(`Signature Algorithm: ${sig}`));
    t.match(staffText, /Subject: O = Ministry of Tests, OU = Signals, UID = alee, CN = Ann Lee/);
    t.match(staffText, /Basic Constraints: critical\s+CA:FALSE/);
    t.match(staffText, /Key Usage: critical\s+Digital Signature, Non Repudiation\n/);
    t.match(staffText, /Extended Key Usage:\s+TLS Web Client Authentication, E-mail Protection/);
    t.match(staffText, /Subject Directory Attributes/);
    t.match(staffText, /Validity\s+Not Before: Mar  1 09:55:00 2026 GMT\s+Not After : Mar  1 10:00:00 2027 GMT/);
    const parsed = await openssl(['asn1parse', '-inform', 'DER', '-i'], staff.der);
    t.match(parsed.stdout, /X509v3 Subject Directory Attributes/);
    const extHex = /Subject Directory Attributes\s*\n.*OCTET STRING\s+\[HEX DUMP\]:([0-9A-F]+)/.exec(parsed.stdout)?.[1];
    t.ok(extHex, 'extension value found');
    const inner = await openssl(['asn1parse', '-inform', 'DER', '-i'], Buffer.from(extHex!, 'hex'));
    t.match(inner.stdout, /OBJECT\s+:2\.5\.4\.55/, 'id-at-clearance');
    t.match(inner.stdout, new RegExp(`OBJECT\\s+:${SIGIL_SECURITY_POLICY_OID.replace(/\./g, '\\.')}`), 'Sigil policy id');
    t.match(inner.stdout, /BIT STRING/);

    const tlsText = await x509Text(tls.pem);
    t.match(tlsText, /Key Usage: critical\s+Digital Signature\n/);
    t.match(tlsText, /Extended Key Usage:\s+TLS Web Server Authentication\n/);
    t.match(tlsText, /DNS:sigil.local, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1/);
    t.equal(tls.notAfter.getTime() - NOW.getTime(), 825 * 86_400_000, '825 days');
    t.same(tls.subjectAltNames, { dns: ['sigil.local', 'localhost'], ip: ['127.0.0.1', '0:0:0:0:0:0:0:1'] });

    const auditText = await x509Text(audit.pem);
    t.match(auditText, /Key Usage: critical\s+Digital Signature, Non Repudiation/);
    t.match(auditText, new RegExp(`Extended Key Usage:\\s+${SIGIL_AUDIT_SIGNING_OID.replace(/\./g, '\\.')}`));
    t.same(audit.extendedKeyUsage, ['sigilAuditSigning']);

    const at = String(Math.floor(NOW.getTime() / 1000));
    for (const [name, cert, purpose] of [['staff', staff, 'smimesign'], ['staff', staff, 'sslclient'], ['tls', tls, 'sslserver']] as const) {
      const v = await openssl(['verify', '-attime', at, '-x509_strict', '-purpose', purpose, '-CAfile', chain, tmp.write(`${name}.pem`, cert.pem)]);
      t.equal(v.code, 0, `${name} for ${purpose}: ${v.stdout}${v.stderr}`);
    }
    const wrong = await openssl(['verify', '-attime', at, '-purpose', 'sslserver', '-CAfile', chain, tmp.write('staff2.pem', staff.pem)]);
    t.not(wrong.code, 0, 'openssl refuses a staff certificate as a TLS server');
  });
}

t.test('when serial numbers are drawn then they are 16 positive bytes without leading zero and come from the injected randomness', async (t) => {
  const fixed = (n: number) => new Uint8Array(n).fill(0xff);
  const { root } = await createCaHierarchy({ profile: 'p256', organization: 'Ministry of Tests', now: () => NOW, random: fixed });
  t.equal(root.cert.serialNumber, '7f' + 'ff'.repeat(15));
  const zeros = await createCaHierarchy({ profile: 'p256', organization: 'Ministry of Tests', now: () => NOW, random: (n) => new Uint8Array(n) });
  t.equal(zeros.root.cert.serialNumber, '40' + '00'.repeat(15));
  const parsed = await openssl(['x509', '-noout', '-serial'], zeros.root.cert.pem);
  t.equal(parsed.stdout.trim(), `serial=40${'00'.repeat(15)}`);
});

t.test('when the issuer key or certificate does not fit then ISSUER_MISMATCH is thrown', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const { cert } = await ca.staff('x');
  t.throws(() => new Issuer({ cert, key: ca.issuing.key, chain: ca.chain }), { code: 'ISSUER_MISMATCH' }, 'end-entity certificate');
  const other = await generateKeyPair('p384');
  t.throws(() => new Issuer({ cert: ca.issuing.cert, key: other.privateKey, chain: ca.chain }), { code: 'ISSUER_MISMATCH' }, 'key of another profile');
  t.throws(() => new Issuer({ cert: ca.issuing.cert, key: other.publicKey, chain: ca.chain }), { code: 'ISSUER_MISMATCH' }, 'public key');
  t.same(ca.issuer.chain.map((c) => c.fingerprint), ca.chain.map((c) => c.fingerprint));
});

t.test('when a key of another profile is presented for issuance then WRONG_ALGORITHM is thrown', async (t) => {
  const ca = await makeTestCa('p384', () => NOW);
  const p256 = await generateKeyPair('p256');
  await t.rejects(
    ca.issuer.issueStaffCertificate({ fullName: 'A', login: 'a', organization: 'O', department: 'D', clearance: 'secret', publicKey: p256.publicKey }),
    { code: 'WRONG_ALGORITHM' },
  );
  await t.rejects(ca.issuer.issueAuditCertificate({ publicKey: p256.publicKey, commonName: 'audit' }), { code: 'WRONG_ALGORITHM' });
});

t.test('when parameters are out of range then INVALID_PARAMETER names the field', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const kp = await generateKeyPair('p256');
  const base = { fullName: 'A', login: 'a', organization: 'O', department: 'D', clearance: 'secret' as const, publicKey: kp.publicKey };
  await t.rejects(ca.issuer.issueStaffCertificate({ ...base, validityDays: 0 }), { code: 'INVALID_PARAMETER', field: 'validityDays' });
  await t.rejects(ca.issuer.issueStaffCertificate({ ...base, fullName: '' }), { code: 'INVALID_PARAMETER', field: 'commonName' });
  await t.rejects(ca.issuer.issueStaffCertificate({ ...base, fullName: 'x'.repeat(65) }), { code: 'INVALID_PARAMETER' });
  await t.rejects(ca.issuer.issueStaffCertificate({ ...base, clearance: 'cosmic' as never }), { code: 'INVALID_PARAMETER', field: 'clearance' });
  await t.rejects(ca.issuer.issueTlsServerCertificate({ publicKey: kp.publicKey, commonName: 's', dnsNames: [], ipAddresses: ['300.1.1.1'] }), { code: 'INVALID_PARAMETER', field: 'ipAddresses' });
  await t.rejects(ca.issuer.issueTlsServerCertificate({ publicKey: kp.publicKey, commonName: 's', dnsNames: ['bad name!'], ipAddresses: [] }), { code: 'INVALID_PARAMETER', field: 'dnsNames' });
  await t.rejects(ca.issuer.issueTlsServerCertificate({ publicKey: kp.publicKey, commonName: 's', dnsNames: [], ipAddresses: [] }), { code: 'INVALID_PARAMETER' });
  await t.rejects(createCaHierarchy({ profile: 'p256', organization: 'O', rootValidityDays: -1 }), { code: 'INVALID_PARAMETER', field: 'rootValidityDays' });
  await t.rejects(createCaHierarchy({ profile: 'nope' as never, organization: 'O' }), { code: 'UNKNOWN_ALGORITHM' });
});

t.test('when the organisation is already called Sigil then the CA names do not repeat it', async (t) => {
  const { root, issuing } = await createCaHierarchy({ profile: 'p256', organization: 'Sigil' });
  t.equal(root.cert.subject.commonName, 'Sigil Root CA');
  t.equal(issuing.cert.subject.commonName, 'Sigil Issuing CA');
});

/**
 * Review defect: an issuer signed certificates for their full validity even past its own
 * notAfter, so a staff or TLS certificate issued in the CA's last year claimed months that
 * `openssl verify` refuses (RFC 5280 §6.1.3 checks every certificate of the path).
 */
t.test('when a certificate would outlive its issuer then it ends with the issuer, and openssl verifies it until then', async (t) => {
  let now = NOW;
  const ca = await makeTestCa('p256', () => now, {});
  const issuingEnd = ca.issuing.cert.notAfter;
  now = new Date(issuingEnd.getTime() - 100 * 86_400_000); // 100 days before the issuing CA ends
  const kp = await generateKeyPair('p256');
  const staff = await ca.issuer.issueStaffCertificate({ fullName: 'Ann Lee', login: 'alee', organization: 'Ministry of Tests', department: 'Signals', clearance: 'secret', publicKey: kp.publicKey });
  t.equal(staff.notAfter.getTime(), issuingEnd.getTime(), '365 days asked, clamped to the issuing CA');
  const tls = await ca.issuer.issueTlsServerCertificate({ publicKey: kp.publicKey, commonName: 'sigil.local', dnsNames: ['sigil.local'], ipAddresses: [] });
  t.equal(tls.notAfter.getTime(), issuingEnd.getTime());
  const short = await ca.issuer.issueStaffCertificate({ fullName: 'Ann Lee', login: 'alee', organization: 'Ministry of Tests', department: 'Signals', clearance: 'secret', publicKey: kp.publicKey, validityDays: 30 });
  t.equal(short.notAfter.getTime(), now.getTime() + 30 * 86_400_000, 'a validity within the issuer\'s is kept');

  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const args = ['verify', '-x509_strict', '-CAfile', tmp.write('root.pem', ca.root.cert.pem), '-untrusted', tmp.write('issuing.pem', ca.issuing.cert.pem)];
  const leaf = tmp.write('staff.pem', staff.pem);
  const before = await openssl([...args, '-attime', String(Math.floor(issuingEnd.getTime() / 1000) - 3600), leaf]);
  t.equal(before.code, 0, `valid an hour before the issuing CA ends: ${before.stdout}${before.stderr}`);
  const after = await openssl([...args, '-attime', String(Math.floor(issuingEnd.getTime() / 1000) + 3600), leaf]);
  t.not(after.code, 0, 'and not after: the certificate says so itself');
  t.match(await x509Text(staff.pem), new RegExp(`Not After : ${issuingEnd.toUTCString().slice(8, 11)}`));

  now = new Date(issuingEnd.getTime() + 1000);
  await t.rejects(
    ca.issuer.issueStaffCertificate({ fullName: 'Ann Lee', login: 'alee', organization: 'Ministry of Tests', department: 'Signals', clearance: 'secret', publicKey: kp.publicKey }),
    { code: 'ISSUER_EXPIRED', message: /expired at .*renew it/ },
    'an expired issuer issues nothing',
  );
});

t.test('when the issuing CA is asked to outlive the root then it ends with the root', async (t) => {
  const { root, issuing } = await createCaHierarchy({ profile: 'p256', organization: 'Ministry of Tests', now: () => NOW, rootValidityDays: 1000, issuingValidityDays: 3650 });
  t.equal(issuing.cert.notAfter.getTime(), root.cert.notAfter.getTime());
});
