import t from 'tap';
import { readFileSync } from 'node:fs';
import { CertificationRequest, PROFILE_NAMES, createCsr, generateKeyPair, importPrivateKeyPem, publicKeyFingerprint, type ProfileName } from '../../pki/index.js';
import { makeTestCa, openssl, tempDir } from '../helpers/pki-fixtures.js';

const NOW = new Date('2026-03-01T10:00:00Z');
const staffParams = { fullName: 'Ann Lee', login: 'alee', organization: 'Ministry of Tests', department: 'Signals', clearance: 'confidential' as const };

t.test('when we create a CSR then openssl req -verify accepts it and shows our subject', async (t) => {
  for (const profile of PROFILE_NAMES) {
    const kp = await generateKeyPair(profile);
    const csr = await createCsr({ keyPair: kp, subject: { commonName: 'Ann Lee', login: 'alee' }, profile });
    t.same(csr.subject, { commonName: 'Ann Lee', login: 'alee' });
    t.same(await csr.verifySignature(), { ok: true });
    const out = await openssl(['req', '-verify', '-noout', '-subject'], csr.pem);
    t.equal(out.code, 0, `${profile}: ${out.stderr}`);
    t.match(out.stdout + out.stderr, /self-signature verify OK/);
    t.match(out.stdout, /UID = alee, CN = Ann Lee/);
  }
});

t.test('when openssl req -new makes a CSR then we issue a staff certificate whose subject the officer chose', async (t) => {
  const ca = await makeTestCa('p384', () => NOW);
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const r = await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', `${tmp.dir}/k.pem`, '-subj', '/CN=I Am The Admin/O=Evil', '-out', `${tmp.dir}/req.pem`]);
  t.equal(r.code, 0, r.stderr);
  const cert = await ca.issuer.issueFromCsr(readFileSync(`${tmp.dir}/req.pem`, 'utf8'), staffParams);
  t.same(cert.subject, { commonName: 'Ann Lee', login: 'alee', organization: 'Ministry of Tests', organizationalUnit: 'Signals' }, 'CSR subject ignored');
  t.equal(cert.clearance, 'confidential');
  const key = await importPrivateKeyPem(readFileSync(`${tmp.dir}/k.pem`, 'utf8'));
  t.equal(await publicKeyFingerprint(await cert.publicKey()), await publicKeyFingerprint(key), 'certificate carries the CSR key');
  const v = await openssl(['verify', '-purpose', 'smimesign', '-CAfile', tmp.write('chain.pem', ca.issuing.cert.pem + ca.root.cert.pem), tmp.write('c.pem', cert.pem)]);
  t.equal(v.code, 0, v.stdout + v.stderr);
  const fromDer = await ca.issuer.issueFromCsr(CertificationRequest.fromPem(readFileSync(`${tmp.dir}/req.pem`, 'utf8')).der, staffParams);
  t.equal(fromDer.clearance, 'confidential', 'DER input accepted too');
});

t.test('when a CSR is tampered with then issuance fails with CSR_BAD_SIGNATURE', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const kp = await generateKeyPair('p256');
  const csr = await createCsr({ keyPair: kp, subject: { commonName: 'Mallory' } });
  const der = new Uint8Array(csr.der);
  const at = Buffer.from(der).indexOf(Buffer.from('Mallory'));
  der[at] = 'N'.charCodeAt(0); // same length, different signed bytes
  const tampered = CertificationRequest.fromDer(der);
  const result = await tampered.verifySignature();
  t.equal(result.ok, false);
  t.equal(!result.ok && result.reason, 'bad-signature');
  await t.rejects(ca.issuer.issueFromCsr(tampered, staffParams), { code: 'CSR_BAD_SIGNATURE' });
  const out = await openssl(['req', '-verify', '-noout'], tampered.pem);
  // OpenSSL 3.0 exits 0 here but reports the failure.
  t.match(out.stdout + out.stderr, /self-signature verify failure/, 'openssl agrees the signature is bad');
  t.notMatch(out.stdout + out.stderr, /verify OK/);
});

t.test('when a CSR is signed by a different key than it carries then CSR_BAD_SIGNATURE', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const a = await generateKeyPair('p256');
  const b = await generateKeyPair('p256');
  const csr = await createCsr({ keyPair: { publicKey: a.publicKey, privateKey: b.privateKey }, subject: { commonName: 'x' } });
  await t.rejects(ca.issuer.issueFromCsr(csr.pem, staffParams), { code: 'CSR_BAD_SIGNATURE' });
});

t.test('when the CSR key is of another profile or of none then WRONG_ALGORITHM or UNKNOWN_ALGORITHM', async (t) => {
  const ca = await makeTestCa('p384', () => NOW);
  const p256 = await createCsr({ keyPair: await generateKeyPair('p256'), subject: { commonName: 'x' } });
  await t.rejects(ca.issuer.issueFromCsr(p256, staffParams), { code: 'WRONG_ALGORITHM' });
  const ed = await openssl(['req', '-new', '-newkey', 'ed25519', '-nodes', '-keyout', '/dev/null', '-subj', '/CN=ed']);
  t.equal(ed.code, 0, ed.stderr);
  await t.rejects(ca.issuer.issueFromCsr(ed.stdout, staffParams), { code: 'UNKNOWN_ALGORITHM' });
});

t.test('when the CSR input is garbage then MALFORMED_INPUT', async (t) => {
  const ca = await makeTestCa('p256' as ProfileName, () => NOW);
  await t.rejects(ca.issuer.issueFromCsr('garbage', staffParams), { code: 'MALFORMED_INPUT' });
  await t.rejects(ca.issuer.issueFromCsr(new Uint8Array([1, 2, 3]), staffParams), { code: 'MALFORMED_INPUT' });
  t.throws(() => CertificationRequest.fromPem(ca.root.cert.pem), { code: 'MALFORMED_INPUT' }, 'a certificate is not a CSR');
  t.throws(() => CertificationRequest.fromDer(ca.root.cert.der), { code: 'MALFORMED_INPUT' }, 'certificate DER is not a CSR');
});
