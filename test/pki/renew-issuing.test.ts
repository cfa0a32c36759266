/**
 * renewIssuingCa: the issuing CA's own name and key under a new certificate from the root. What
 * it signed before (a staff certificate) verifies under the new one in OpenSSL and in pki's
 * validation; the new one lasts from now, capped at the root's notAfter; a key that is not the
 * root's, or an issuing CA of another root, is refused.
 */
import t from 'tap';
import { createCaHierarchy, IssuerMismatchError, renewIssuingCa, validateCertificate } from '../../pki/index.js';
import { makeTestCa, openssl, tempDir } from '../helpers/pki-fixtures.js';

const DAY = 86_400_000;
const T0 = new Date('2026-03-01T10:00:00Z');
/** Within the staff certificate's year: renewal is held while what the CA issued is in use. */
const LATER = new Date(T0.getTime() + 200 * DAY);

t.test('when the issuing CA is renewed then its name, key and key identifier stay, and what it signed verifies under the new certificate', async (t) => {
  const ca = await makeTestCa('p384', () => T0);
  const staff = await ca.staff('alee');
  const renewed = await renewIssuingCa({ root: ca.root, issuing: ca.issuing.cert, now: () => LATER });
  t.equal(renewed.subjectString, ca.issuing.cert.subjectString);
  t.ok(Buffer.from(renewed.subjectNameDer).equals(Buffer.from(ca.issuing.cert.subjectNameDer)), 'the subject bytes, not only its text');
  t.ok(Buffer.from(renewed.publicKeySpki).equals(Buffer.from(ca.issuing.cert.publicKeySpki)), 'the same key: renewal, not re-keying');
  t.equal(renewed.subjectKeyIdentifier, ca.issuing.cert.subjectKeyIdentifier);
  t.equal(renewed.authorityKeyIdentifier, ca.root.cert.subjectKeyIdentifier);
  t.not(renewed.serialNumber, ca.issuing.cert.serialNumber);
  t.equal(renewed.isCA, true);
  t.equal(renewed.pathLength, 0);
  t.same(renewed.keyUsage, ['keyCertSign', 'cRLSign']);
  t.ok(await renewed.isIssuedBy(ca.root.cert));
  t.equal(renewed.notBefore.getTime(), ca.issuing.cert.notBefore.getTime(), 'valid from the old certificate’s first day, so what was made before reads valid');
  t.equal(renewed.notAfter.getTime(), LATER.getTime() + 3650 * DAY, '3650 days from the renewal');
  const late = await renewIssuingCa({ root: ca.root, issuing: ca.issuing.cert, now: () => new Date(T0.getTime() + 4000 * DAY) });
  t.equal(late.notAfter.getTime(), ca.root.cert.notAfter.getTime(), '4000 + 3650 days would pass the root: capped at its notAfter');

  // The staff certificate issued under the old certificate, checked with only the new one: after
  // the renewal, and at a time before it (a message signed then is judged then).
  for (const at of [new Date(LATER.getTime() + DAY), new Date(T0.getTime() + DAY)]) {
    const v = await validateCertificate(staff.cert, { trustAnchors: [ca.root.cert], intermediates: [renewed], usage: 'signature', at });
    t.match(v, { ok: true }, at.toISOString());
    const dir = tempDir();
    t.teardown(() => dir.cleanup());
    const root = dir.write('root.pem', ca.root.cert.pem);
    const issuing = dir.write('issuing.pem', renewed.pem);
    const leaf = dir.write('leaf.pem', staff.cert.pem);
    const ok = await openssl(['verify', '-attime', String(Math.floor(at.getTime() / 1000)), '-CAfile', root, '-untrusted', issuing, leaf]);
    t.equal(ok.code, 0, ok.stderr);
    t.match(ok.stdout, /leaf\.pem: OK/);
  }
});

t.test('when the key is not the root’s or the issuing CA is another root’s then nothing is signed', async (t) => {
  const ca = await makeTestCa('p256', () => T0);
  const other = await createCaHierarchy({ profile: 'p256', organization: 'Other', now: () => T0 });
  await t.rejects(renewIssuingCa({ root: { cert: ca.root.cert, key: other.root.key }, issuing: ca.issuing.cert }), IssuerMismatchError);
  await t.rejects(renewIssuingCa({ root: ca.root, issuing: other.issuing.cert }), IssuerMismatchError);
  await t.rejects(renewIssuingCa({ root: ca.root, issuing: ca.root.cert }), IssuerMismatchError, 'the root is no issuing CA of itself');
});
