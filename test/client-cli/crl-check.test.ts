/** A fetched CRL is accepted only when a pinned CA, or an issuing CA the pin vouches for, signed it. */
import t from 'tap';
import { checkCrl, staleCrlWarning } from '../../client-cli/crl-check.js';
import { exitCodeFor } from '../../client-cli/exit-codes.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';

const now = new Date();
const ca = await makeTestCa('p256');
const other = await makeTestCa('p256');
const crl = await ca.issuer.createCrl({
  revoked: [{ serialNumber: '0a1b2c', revocationDate: now, reason: 'keyCompromise' }],
  crlNumber: 7n,
  nextUpdate: new Date(now.getTime() + 86_400_000),
});

t.test('when the pin holds only the root then the served issuing CA is used and the CRL accepted', async (t) => {
  const r = await checkCrl(crl.pem, ca.root.cert.pem, ca.issuing.cert.pem + ca.root.cert.pem, now);
  t.match(r, { revoked: 1, crlNumber: '7' });
});

t.test('when the served chain is from another CA then the CRL is NOT_TRUSTED (exit 3)', async (t) => {
  const err = await checkCrl(crl.pem, ca.root.cert.pem, other.issuing.cert.pem, now).catch((e: unknown) => e);
  t.match(err, { code: 'NOT_TRUSTED' });
  t.equal(exitCodeFor(err), 3);
});

t.test('when another CA signed the CRL then NOT_TRUSTED', async (t) => {
  const foreign = await other.issuer.createCrl({ revoked: [], crlNumber: 1n, nextUpdate: new Date(now.getTime() + 86_400_000) });
  await t.rejects(checkCrl(foreign.pem, ca.root.cert.pem, ca.issuing.cert.pem, now), { code: 'NOT_TRUSTED' });
});

t.test('when the served text is not a CRL then BAD_RESPONSE', async (t) => {
  await t.rejects(checkCrl('garbage', ca.root.cert.pem, '', now), { code: 'BAD_RESPONSE' });
});

t.test('review defect 2: when the CRL is past its nextUpdate then it is accepted but marked stale, with a warning to show', async (t) => {
  const later = new Date(crl.nextUpdate.getTime() + 1000);
  const r = await checkCrl(crl.pem, ca.root.cert.pem, ca.issuing.cert.pem, later);
  t.match(r, { crlNumber: '7', stale: true, nextUpdate: crl.nextUpdate });
  t.match(staleCrlWarning(r, later), /CRL #7 was due for update at .*crl-stale/);
  const fresh = await checkCrl(crl.pem, ca.root.cert.pem, ca.issuing.cert.pem, crl.nextUpdate);
  t.equal(fresh.stale, false, 'at its nextUpdate exactly it is still current (RFC 5280 §5.1.2.5)');
  t.equal(staleCrlWarning(fresh, crl.nextUpdate), undefined);
});
