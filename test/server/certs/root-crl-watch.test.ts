/**
 * The root CRL watch on its own (server/certs/root-crl-watch.ts), against real files and a real CA:
 * no file and a CRL that revokes nothing leave the issuing CA standing; garbage and a CRL of another
 * root are reported once per file and change nothing; an unchanged file is not read again; the
 * revocation is told once and outlives the file. The server's use of it:
 * test/server/certs/issuing-ca-revoked.test.ts.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createRootCrl } from '../../../pki/index.js';
import { RootCrlWatch, type IssuingRevocation } from '../../../server/certs/root-crl-watch.js';
import { makeTestCa } from '../../helpers/pki-fixtures.js';
import { tmpDir } from '../../helpers/tmp.js';

const ca = await makeTestCa('p256');
const other = await makeTestCa('p256');
const revokingIssuing = [{ serialNumber: ca.issuing.cert.serialNumber, revocationDate: new Date(), reason: 'keyCompromise' as const }];

function watchIn(t: Test) {
  const file = join(tmpDir(t, 'sigil-root-crl-watch-'), 'root-crl.pem');
  const told: IssuingRevocation[] = [];
  const ignored: string[] = [];
  const watch = new RootCrlWatch({
    file,
    rootCert: ca.root.cert,
    issuingCert: ca.issuing.cert,
    checkEveryMs: 3_600_000,
    onRevoked: (r) => void told.push(r),
    onIgnored: (why) => void ignored.push(why),
  });
  t.teardown(() => watch.stop());
  return { file, watch, told, ignored };
}

t.test('when there is no root CRL, or one that revokes nothing, then the issuing CA stands', async (t) => {
  const { file, watch, told } = watchIn(t);
  await watch.start();
  t.equal(watch.revoked, undefined, 'no file');
  writeFileSync(file, (await createRootCrl({ cert: ca.root.cert, key: ca.root.key, crlNumber: 1n })).pem);
  t.equal(await watch.check(), undefined);
  t.equal(watch.revoked, undefined, 'an empty CRL of the root');
  t.same(told, []);
});

t.test('when the file is garbage or another root signed it then it is reported once and changes nothing', async (t) => {
  const { file, watch, ignored } = watchIn(t);
  writeFileSync(file, 'not a CRL');
  await watch.check();
  await watch.check();
  t.equal(ignored.length, 1, 'an unchanged file is not read (nor reported) again');
  t.match(ignored[0], /is not a readable CRL .*it changes nothing/);
  writeFileSync(file, (await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 5n, revoked: revokingIssuing })).pem);
  await watch.check();
  t.equal(ignored.length, 2);
  t.match(ignored[1], /is not signed by the root CA .*it changes nothing/);
  t.equal(watch.revoked, undefined, "another root's word does not revoke");
});

t.test('when the root revokes the issuing CA then the watch tells once and keeps it, whatever the file says later', async (t) => {
  const { file, watch, told } = watchIn(t);
  writeFileSync(file, (await createRootCrl({ cert: ca.root.cert, key: ca.root.key, crlNumber: 7n, revoked: revokingIssuing })).pem);
  const r = await watch.check();
  t.match(r, { serial: ca.issuing.cert.serialNumber, crlNumber: 7 });
  t.equal(told.length, 1);
  writeFileSync(file, (await createRootCrl({ cert: ca.root.cert, key: ca.root.key, crlNumber: 8n })).pem);
  await watch.check();
  rmSync(file);
  await watch.check();
  t.match(watch.revoked, { crlNumber: 7 }, 'a later CRL without it, or none, does not lift it');
  t.equal(told.length, 1, 'told once');
});

t.test('when the root CRL is there but cannot be read then start refuses, naming the file', async (t) => {
  const { file, watch } = watchIn(t);
  mkdirSync(file);
  await t.rejects(watch.start(), { code: 'EISDIR', message: `cannot read the root CRL ${file}: EISDIR: illegal operation on a directory, read` });
  t.equal(watch.revoked, undefined);
});

t.test('when telling of the revocation fails then requests are refused all the same and the next check tells again', async (t) => {
  const file = join(tmpDir(t, 'sigil-root-crl-watch-'), 'root-crl.pem');
  writeFileSync(file, (await createRootCrl({ cert: ca.root.cert, key: ca.root.key, crlNumber: 9n, revoked: revokingIssuing })).pem);
  let calls = 0;
  const watch = new RootCrlWatch({
    file,
    rootCert: ca.root.cert,
    issuingCert: ca.issuing.cert,
    checkEveryMs: 3_600_000,
    onRevoked: () => {
      calls++;
      // As ending every session would, on a vault that cannot write for a moment.
      if (calls === 1) throw new Error('SQLITE_BUSY');
    },
  });
  t.teardown(() => watch.stop());
  await t.rejects(watch.check(), { message: 'SQLITE_BUSY' });
  t.match(watch.revoked, { crlNumber: 9 }, 'known (and so refused) though telling failed');
  t.match(await watch.check(), { crlNumber: 9 });
  await watch.check();
  t.equal(calls, 2, 'told again once, then no more');
});
