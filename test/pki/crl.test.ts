import t from 'tap';
import { Crl, type RevocationReason } from '../../pki/index.js';
import { makeTestCa, openssl, tempDir } from '../helpers/pki-fixtures.js';

const NOW = new Date('2026-03-01T10:00:00Z');
const DAY = 86_400_000;

t.test('when a CRL is made then openssl crl -text shows version 2, number, dates and reasons', async (t) => {
  const ca = await makeTestCa('p384', () => NOW);
  const a = await ca.staff('a');
  const b = await ca.staff('b');
  const c = await ca.staff('c');
  const crl = await ca.issuer.createCrl({
    revoked: [
      { serialNumber: a.cert.serialNumber, revocationDate: new Date(NOW.getTime() - DAY), reason: 'keyCompromise' },
      { serialNumber: b.cert.serialNumber, revocationDate: NOW, reason: 'affiliationChanged' },
      { serialNumber: c.cert.serialNumber, revocationDate: NOW, reason: 'unspecified' },
    ],
    crlNumber: 12345678901234567890n,
    nextUpdate: new Date(NOW.getTime() + 7 * DAY),
  });
  const text = await openssl(['crl', '-noout', '-text'], crl.pem);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /Version 2 \(0x1\)/);
  t.match(text.stdout, /Signature Algorithm: ecdsa-with-SHA384/);
  t.match(text.stdout, /Last Update: Mar  1 10:00:00 2026 GMT/);
  t.match(text.stdout, /Next Update: Mar  8 10:00:00 2026 GMT/);
  t.match(text.stdout, /CRL Number:\s+\n?\s*(12345678901234567890|AB:54:A9:8C:EB:1F:0A:D2)/);
  t.match(text.stdout, /Authority Key Identifier/);
  t.match(text.stdout, /Key Compromise/);
  t.match(text.stdout, /Affiliation Changed/);
  t.equal((text.stdout.match(/CRL Reason Code/g) ?? []).length, 2, 'no reasonCode for unspecified (RFC 5280 §5.3.1)');

  const back = Crl.fromPem(crl.pem);
  t.equal(back.crlNumber, 12345678901234567890n);
  t.equal(back.thisUpdate.toISOString(), NOW.toISOString());
  t.same(back.issuer, ca.issuing.cert.subject);
  t.same(back.find(a.cert.serialNumber), { serialNumber: a.cert.serialNumber, revocationDate: new Date(NOW.getTime() - DAY), reason: 'keyCompromise' });
  t.equal(back.find(c.cert.serialNumber.toUpperCase())?.reason, 'unspecified');
  t.equal(back.find('01'), undefined);
  t.equal(back.revoked.length, 3);
  t.same(await back.verifySignature(ca.issuing.cert), { ok: true });
  const wrong = await back.verifySignature(ca.root.cert);
  t.equal(wrong.ok, false);
});

t.test('when openssl verify -crl_check runs then it is OK before revocation and says "certificate revoked" after', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const chain = tmp.write('chain.pem', ca.issuing.cert.pem + ca.root.cert.pem);
  const user = await ca.staff('victim');
  const certPath = tmp.write('user.pem', user.cert.pem);
  const at = String(Math.floor(NOW.getTime() / 1000) + 60);
  const empty = await ca.issuer.createCrl({ revoked: [], crlNumber: 1n, nextUpdate: new Date(NOW.getTime() + DAY) });
  t.equal(empty.revoked.length, 0);
  const before = await openssl(['verify', '-attime', at, '-CAfile', chain, '-CRLfile', tmp.write('crl1.pem', empty.pem), '-crl_check', certPath]);
  t.equal(before.code, 0, before.stdout + before.stderr);
  t.match(before.stdout, /OK/);

  const reasons: RevocationReason[] = ['keyCompromise', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn', 'certificateHold', 'cACompromise'];
  const others = await Promise.all(reasons.map(() => ca.staff('other')));
  const revoked = await ca.issuer.createCrl({
    revoked: [
      { serialNumber: user.cert.serialNumber, revocationDate: NOW, reason: 'keyCompromise' },
      ...others.map((o, i) => ({ serialNumber: o.cert.serialNumber, revocationDate: NOW, reason: reasons[i] })),
    ],
    crlNumber: 2n,
    nextUpdate: new Date(NOW.getTime() + DAY),
  });
  t.same(Crl.fromDer(revoked.der).revoked.slice(1).map((e) => e.reason), reasons, 'every reason round-trips');
  const after = await openssl(['verify', '-attime', at, '-CAfile', chain, '-CRLfile', tmp.write('crl2.pem', revoked.pem), '-crl_check', certPath]);
  t.not(after.code, 0);
  t.match(after.stdout + after.stderr, /certificate revoked/);
});

t.test('when a serial has its top bit set then the CRL keeps it positive and finds it', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const crl = await ca.issuer.createCrl({ revoked: [{ serialNumber: 'FF01', revocationDate: NOW, reason: 'superseded' }], crlNumber: 3n, nextUpdate: new Date(NOW.getTime() + DAY) });
  t.equal(crl.revoked[0].serialNumber, 'ff01');
  t.ok(crl.find('00:ff:01'));
  const text = await openssl(['crl', '-noout', '-text'], crl.pem);
  t.match(text.stdout, /Serial Number: FF01/);
});

t.test('when CRL parameters are invalid then INVALID_PARAMETER', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const next = new Date(NOW.getTime() + DAY);
  await t.rejects(ca.issuer.createCrl({ revoked: [], crlNumber: -1n, nextUpdate: next }), { code: 'INVALID_PARAMETER', field: 'crlNumber' });
  await t.rejects(ca.issuer.createCrl({ revoked: [], crlNumber: 1n, nextUpdate: NOW }), { code: 'INVALID_PARAMETER', field: 'nextUpdate' });
  await t.rejects(ca.issuer.createCrl({ revoked: [{ serialNumber: 'xyz', revocationDate: NOW, reason: 'superseded' }], crlNumber: 1n, nextUpdate: next }), { code: 'INVALID_PARAMETER' });
  await t.rejects(ca.issuer.createCrl({ revoked: [{ serialNumber: '01', revocationDate: NOW, reason: 'bored' as never }], crlNumber: 1n, nextUpdate: next }), { code: 'INVALID_PARAMETER', field: 'revoked.reason' });
  await t.rejects(
    ca.issuer.createCrl({ revoked: [{ serialNumber: '01', revocationDate: NOW, reason: 'superseded' }, { serialNumber: '0001', revocationDate: NOW, reason: 'superseded' }], crlNumber: 1n, nextUpdate: next }),
    { code: 'INVALID_PARAMETER' },
  );
});

t.test('when CRL input is garbage then MALFORMED_INPUT, and a flipped signature byte then bad-signature', async (t) => {
  t.throws(() => Crl.fromPem('nope'), { code: 'MALFORMED_INPUT' });
  t.throws(() => Crl.fromDer(new Uint8Array([0x30, 0x00])), { code: 'MALFORMED_INPUT' });
  const ca = await makeTestCa('p256', () => NOW);
  t.throws(() => Crl.fromDer(ca.root.cert.der), { code: 'MALFORMED_INPUT' }, 'a certificate is not a CRL');
  const crl = await ca.issuer.createCrl({ revoked: [], crlNumber: 9n, nextUpdate: new Date(NOW.getTime() + DAY) });
  const der = new Uint8Array(crl.der);
  der[der.length - 5] ^= 0xff; // inside the signature: still parses, signature fails
  const broken = Crl.fromDer(der);
  const r = await broken.verifySignature(ca.issuing.cert);
  t.same(r.ok ? 'ok' : r.reason, 'bad-signature');
});
