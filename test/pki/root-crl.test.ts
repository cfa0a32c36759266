/**
 * The root CA's own CRL (`createRootCrl`): what openssl reads in it, the key check, the nextUpdate
 * cap, and `openssl verify -crl_check_all`, which needs it for the issuing CA.
 */
import t from 'tap';
import { createCaHierarchy, createRootCrl, Crl, IssuerExpiredError, IssuerMismatchError, ROOT_CRL_VALIDITY_DAYS } from '../../pki/index.js';
import { makeTestCa, openssl, tempDir } from '../helpers/pki-fixtures.js';

const NOW = new Date('2026-03-01T10:00:00Z');
const DAY = 86_400_000;

t.test('when the root signs its CRL then openssl reads number, AKI = root SKI, dates, and the signature verifies', async (t) => {
  const ca = await makeTestCa('p384', () => NOW);
  const crl = await createRootCrl({ cert: ca.root.cert, key: ca.root.key, crlNumber: 1n, thisUpdate: NOW });
  t.equal(crl.crlNumber, 1n);
  t.equal(crl.revoked.length, 0);
  t.equal(crl.nextUpdate.getTime() - crl.thisUpdate.getTime(), ROOT_CRL_VALIDITY_DAYS * DAY);
  t.same(await crl.verifySignature(ca.root.cert), { ok: true });
  t.same(crl.issuer, ca.root.cert.subject);
  const text = await openssl(['crl', '-noout', '-text'], crl.pem);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /CRL Number:\s*\n?\s*1\b/);
  const aki = /Authority Key Identifier:\s*\n\s*(?:keyid:)?([0-9A-F:]+)/.exec(text.stdout)?.[1];
  t.equal(aki?.replace(/:/g, '').toLowerCase(), ca.root.cert.subjectKeyIdentifier, 'AKI is the root SKI (RFC 5280 §5.2.1)');
  t.match(text.stdout, /Next Update: Mar  1 10:00:00 2027 GMT/);
});

t.test('when the key is not the root certificate\'s then no CRL is signed (ISSUER_MISMATCH)', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  await t.rejects(createRootCrl({ cert: ca.root.cert, key: ca.issuing.key, crlNumber: 1n, thisUpdate: NOW }), IssuerMismatchError);
  const other = await makeTestCa('p256', () => NOW);
  await t.rejects(createRootCrl({ cert: ca.root.cert, key: other.root.key, crlNumber: 1n, thisUpdate: NOW }), { code: 'ISSUER_MISMATCH' });
  const staff = await ca.staff('x');
  await t.rejects(createRootCrl({ cert: staff.cert, key: staff.key, crlNumber: 1n, thisUpdate: NOW }), IssuerMismatchError, 'not a CA with cRLSign');
});

t.test('when the root ends before nextUpdate then nextUpdate is the root\'s notAfter; an expired root signs nothing', async (t) => {
  const { root } = await createCaHierarchy({ profile: 'p256', organization: 'Short', now: () => NOW, rootValidityDays: 100, issuingValidityDays: 50 });
  const crl = await createRootCrl({ cert: root.cert, key: root.key, crlNumber: 5n, thisUpdate: NOW });
  t.equal(crl.nextUpdate.toISOString(), root.cert.notAfter.toISOString());
  const short = await createRootCrl({ cert: root.cert, key: root.key, crlNumber: 6n, thisUpdate: NOW, validityDays: 30 });
  t.equal(short.nextUpdate.getTime(), NOW.getTime() + 30 * DAY);
  await t.rejects(createRootCrl({ cert: root.cert, key: root.key, crlNumber: 7n, thisUpdate: new Date(root.cert.notAfter.getTime() + 1000) }), IssuerExpiredError);
  await t.rejects(createRootCrl({ cert: root.cert, key: root.key, crlNumber: 7n, thisUpdate: NOW, validityDays: 0 }), { code: 'INVALID_PARAMETER' });
});

t.test('when openssl verify -crl_check_all runs then it needs the root CRL, and a revoked issuing CA fails every certificate', async (t) => {
  const ca = await makeTestCa('p256', () => NOW);
  const tmp = tempDir();
  t.teardown(tmp.cleanup);
  const user = await ca.staff('auditee');
  const userPath = tmp.write('user.pem', user.cert.pem);
  const at = String(Math.floor(NOW.getTime() / 1000) + 60);
  const issuingCrl = await ca.issuer.createCrl({ revoked: [], crlNumber: 1n, nextUpdate: new Date(NOW.getTime() + 7 * DAY) });
  const rootCrl = await createRootCrl({ cert: ca.root.cert, key: ca.root.key, crlNumber: 1n, thisUpdate: NOW });
  const cas = ca.root.cert.pem + ca.issuing.cert.pem;
  const without = await openssl(['verify', '-attime', at, '-CAfile', tmp.write('without.pem', cas + issuingCrl.pem), '-crl_check_all', userPath]);
  t.not(without.code, 0, 'no root CRL: the issuing CA cannot be checked');
  t.match(without.stdout + without.stderr, /unable to get certificate CRL/);

  const ok = await openssl(['verify', '-attime', at, '-CAfile', tmp.write('all.pem', cas + rootCrl.pem + issuingCrl.pem), '-crl_check_all', userPath]);
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.match(ok.stdout, /: OK/);

  const revoked = await createRootCrl({
    cert: ca.root.cert,
    key: ca.root.key,
    crlNumber: 2n,
    thisUpdate: NOW,
    revoked: [{ serialNumber: ca.issuing.cert.serialNumber, revocationDate: NOW, reason: 'keyCompromise' }],
  });
  t.equal(Crl.fromPem(revoked.pem).find(ca.issuing.cert.serialNumber)?.reason, 'keyCompromise');
  const bad = await openssl(['verify', '-attime', at, '-CAfile', tmp.write('revoked.pem', cas + revoked.pem + issuingCrl.pem), '-crl_check_all', userPath]);
  t.not(bad.code, 0);
  t.match(bad.stdout + bad.stderr, /certificate revoked/);
});
