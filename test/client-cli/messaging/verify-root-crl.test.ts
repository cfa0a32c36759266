/**
 * The root CRL in `sigil verify <id>` online, with the built CLI against a real appliance: the
 * issuing CA of the verified chain is checked against `GET /v1/crl/root` (signed by the pinned
 * root) and the answer says so in the `issuing CA:` line / `issuingCa` JSON, as `--package` does.
 * It is judged by the rule the signer is judged by online: at the appliance's receipt time. So
 * after the root key ceremony revokes the issuing CA (`sigil-server sign-root-crl
 * --revoke-issuing --yes`, revocation date = the ceremony, rounded up to the second), a message
 * received BEFORE it still verifies, as "signed before revocation of the issuing CA" (exit 0), as
 * a message of a signer revoked later does; a message received AFTER it is refused as revoked
 * (exit 3). A root CRL stale at the receipt time gives crl-stale, one stale only now a warning (as
 * the issuing CA's CRL); one not signed by the pinned root is refused. An appliance without a root CRL (route 404) verifies as before, with one
 * note line.
 *
 * The profile keeps the newest root CRL it accepted (`root-crl.pem`, client-cli/messaging/
 * kept-root-crl.ts): an appliance that later serves none, or an older one — restored from an old
 * backup, or someone playing the appliance with a stolen issuing CA key — cannot make the reader
 * forget that the issuing CA was revoked.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createRootCrl } from '../../../pki/index.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { makeTestCa } from '../../helpers/pki-fixtures.js';
import { runServer } from '../../helpers/server-process.js';
import { tmpDir } from '../../helpers/tmp.js';
import { appRootCrl, forgetKeptRootCrl } from './helpers/root-crl.js';
import { cliUser } from './helpers/users.js';

const { app } = await httpHarness(t, {
  // A server that has not yet noticed the ceremony (its watch looks every 10 s): readers must refuse
  // what it accepted in that window. The server's own refusal: test/server/certs/issuing-ca-revoked.test.ts.
  rootCrlCheckEveryMs: 24 * 3_600_000,
});
const dir = tmpDir(t, 'sigil-cli-verifyroot-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const rootCrl = appRootCrl(app);
/** The root CRL bkim's profile kept. */
const bkimKept = join(dir, 'bkim', 'root-crl.pem');
const before = await alee.cli.json(['send', 'bkim'], { input: 'The convoy leaves at 06:00' });
/** Not before the appliance's receipt time of `before`. */
const afterBefore = Date.now();

await t.test('when a message is verified online then its issuing CA is checked against the root CRL #1 of the appliance', async (t) => {
  const human = await bkim.cli.run(['verify', before.id]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /^verdict: +valid$/m);
  t.match(human.stdout, /^issuing CA: +not revoked \(checked against the root CRL #1 from the appliance, next update \d{4}-\S+\)$/m);
  t.equal(human.stderr, '', 'no note: the whole chain was checked');
  const j = await bkim.cli.json(['verify', before.id]);
  t.match(j, { verified: true, signer: 'alee', issuingCa: { checked: true, rootCrlNumber: '1', rootCrlFrom: 'the appliance', stale: false, revoked: null } });
  t.notOk('revokedLater' in j.issuingCa, 'nothing revoked later');
  t.equal(readFileSync(bkimKept, 'utf8'), readFileSync(rootCrl.file, 'utf8'), 'the profile keeps the root CRL it accepted');
});

await t.test('when a profile that never saw a root CRL meets an appliance without one then online verify works as before, with one note line', async (t) => {
  forgetKeptRootCrl(t, bkim.cli);
  rootCrl.remove(t);
  t.equal((await app.request('/v1/crl/root')).status, 404, 'the route 404s');
  const r = await bkim.cli.run(['verify', before.id]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^verdict: +valid$/m);
  t.match(r.stdout, /^issuing CA: +revocation not checked \(the appliance has no root CRL\)$/m);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one note line');
  t.match(r.stderr, /^note: the issuing CA's revocation was not checked: the appliance has no root CRL/);
  const j = await bkim.cli.run(['verify', before.id, '--json']);
  t.equal(j.code, 0, j.stderr);
  t.match(JSON.parse(j.stdout), { verified: true, issuingCa: { checked: false, why: 'the appliance has no root CRL' } });
  t.notOk(existsSync(bkimKept), 'nothing kept');
});

await t.test('when the profile kept root CRL #1 and the appliance then serves none then the issuing CA is judged by the kept one, with a warning', async (t) => {
  t.ok(existsSync(bkimKept), 'kept by the first verify');
  rootCrl.remove(t);
  const r = await bkim.cli.run(['verify', before.id]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^verdict: +valid$/m);
  t.match(r.stdout, /^issuing CA: +not revoked \(checked against the root CRL #1 from this profile, next update \d{4}-\S+\)$/m);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one warning line');
  t.match(r.stderr, /^warning: the appliance has no root CRL \(GET \/v1\/crl\/root\), yet root CRL #1 was seen before: an appliance restored from an old backup, or one that is not the appliance; the issuing CA is judged by root CRL #1, kept in this profile by an earlier run$/m);
  t.match(await bkim.cli.json(['verify', before.id]), { verified: true, issuingCa: { checked: true, rootCrlNumber: '1', rootCrlFrom: 'this profile' } });

  // A kept one stale now (not at the receipt time) is named as the profile's, not the appliance's.
  forgetKeptRootCrl(t, bkim.cli);
  const { cert, key } = await rootCrl.rootSigner();
  writeFileSync(bkimKept, (await createRootCrl({ cert, key, crlNumber: 5n, thisUpdate: new Date(afterBefore + 100 - 86_400_000), validityDays: 1 })).pem);
  const wait = afterBefore + 200 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const stale = await bkim.cli.run(['verify', before.id]);
  t.equal(stale.code, 0, stale.stderr);
  t.match(stale.stdout, /^issuing CA: +not revoked \(checked against the root CRL #5 from this profile/m);
  t.match(stale.stderr, /^warning: the root CRL #5 kept in this profile was due for update at \S+ \(now \S+\); messages received after that fail/m);
  t.equal(stale.stderr.trim().split('\n').length, 2, 'the kept one used, and stale now');
});

await t.test('when the appliance\'s root CRL file is damaged then online verify says so, not that there is none', async (t) => {
  forgetKeptRootCrl(t, bkim.cli);
  rootCrl.replace(t, '-----BEGIN X509 CRL-----\nnot a CRL\n-----END X509 CRL-----\n');
  const r = await bkim.cli.run(['verify', before.id]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^issuing CA: +revocation not checked \(the appliance's root CRL is unusable\)$/m);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one note line');
  t.match(r.stderr, /^note: the issuing CA's revocation was not checked: the appliance's root CRL is unusable \(GET \/v1\/crl\/root: ROOT_CRL_UNUSABLE: .*sign-root-crl/);
  const j = await bkim.cli.run(['verify', before.id, '--json']);
  t.match(JSON.parse(j.stdout), { verified: true, issuingCa: { checked: false, why: "the appliance's root CRL is unusable" } });
  t.notOk('note' in JSON.parse(j.stdout).issuingCa, 'the note stays on stderr');
});

await t.test('when the kept root CRL is not signed by the pinned root then it is ignored with a warning and replaced by the served one', async (t) => {
  forgetKeptRootCrl(t, bkim.cli);
  const other = await makeTestCa('p256');
  writeFileSync(bkimKept, (await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 50n })).pem);
  const r = await bkim.cli.run(['verify', before.id]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^issuing CA: +not revoked \(checked against the root CRL #1 from the appliance/m);
  t.match(r.stderr, /^warning: the root CRL kept in this profile is not trusted by the pinned CA: it is issued by .+; it is ignored, and replaced by the next root CRL the appliance serves$/m);
  t.equal(readFileSync(bkimKept, 'utf8'), readFileSync(rootCrl.file, 'utf8'), 'replaced by the served one');
});

await t.test('when the served root CRL is not signed by the pinned root then online verify refuses it in one line', async (t) => {
  const other = await makeTestCa('p256');
  rootCrl.replace(t, (await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 7n })).pem);
  const r = await bkim.cli.run(['verify', before.id]);
  t.equal(r.code, 3, r.stderr);
  t.equal(r.stdout, '', 'no verdict printed');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^error: the root CRL from the appliance is not trusted by the pinned CA: it is issued by .+, not by the pinned root /);
});

await t.test('when the root CRL is stale at the receipt time then online verify says crl-stale; stale only now, a warning', async (t) => {
  // #9 and #10 below are not of the appliance's own sequence: the profile must not keep them past this test.
  forgetKeptRootCrl(t, bkim.cli);
  const { cert, key } = await rootCrl.rootSigner();

  // Due for update two days before the message was received: as a stale issuing CRL, crl-stale.
  const old = await createRootCrl({ cert, key, crlNumber: 9n, thisUpdate: new Date(Date.now() - 3 * 86_400_000), validityDays: 1 });
  rootCrl.replace(t, old.pem);
  const r = await bkim.cli.run(['verify', before.id]);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stdout, /^!! VERIFICATION FAILED: crl-stale: newest root CRL of .+ \(number 9, the appliance\) was due for update \d{4}-\S+, checked at \d{4}-\S+$/m);
  t.match(r.stdout, /^issuing CA: +root CRL stale \(root CRL #9 from the appliance, next update \d{4}-\S+\)$/m);
  t.match(r.stderr, /^warning: the appliance's root CRL #9 was due for update at .*sigil-server sign-root-crl/m);
  t.match(r.stderr, /^error: message \S+ failed verification: crl-stale: newest root CRL/m);
  t.equal(r.stderr.trim().split('\n').length, 2, 'the warning and the error');

  // Due for update after the receipt time but before now: the message verifies (it was judged at
  // its receipt time), with one warning, as with the issuing CA's CRL.
  const recent = await createRootCrl({ cert, key, crlNumber: 10n, thisUpdate: new Date(afterBefore + 100 - 86_400_000), validityDays: 1 });
  writeFileSync(rootCrl.file, recent.pem);
  const wait = afterBefore + 200 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const ok = await bkim.cli.run(['verify', before.id]);
  t.equal(ok.code, 0, ok.stderr);
  t.match(ok.stdout, /^verdict: +valid$/m);
  t.match(ok.stdout, /^issuing CA: +not revoked \(checked against the root CRL #10 from the appliance/m);
  t.equal(ok.stderr.trim().split('\n').length, 1, 'one warning line');
  t.match(ok.stderr, /^warning: the appliance's root CRL #10 was due for update/);
});

await t.test('when the root key ceremony revokes the issuing CA then a message received before it verifies as such, and one received after it is revoked', async (t) => {
  const passFile = join(dir, 'root-pass.txt');
  writeFileSync(passFile, `${app.init.ca.rootKeyPassphrase}\n`, { mode: 0o600 });
  const c = await runServer(['sign-root-crl', '--data', app.dataDir, '--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--revoke-issuing', '--yes', '--json'], {}, 90_000);
  t.equal(c.code, 0, c.stderr);
  const signed = JSON.parse(c.stdout);
  t.match(signed, { issuingRevoked: true, crlNumber: 2 });
  const revokedAt = Date.parse((signed.revoked as { revocationDate: string }[])[0]!.revocationDate);

  // Received before the revocation date (the ceremony, rounded up to the second): by the
  // receipt-time rule the issuing CA was not revoked yet when the appliance received it, exactly
  // as a signer revoked later gives "signed before revocation". Verdict valid, exit 0.
  const human = await bkim.cli.run(['verify', before.id]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /^verdict: +valid, signed before revocation of the issuing CA \(revoked \d{4}-\S+, keyCompromise\)$/m);
  t.match(human.stdout, /^issuing CA: +revoked \d{4}-\S+ \(keyCompromise\), after the receipt time, by the root CRL #2 from the appliance/m);
  t.equal(human.stderr, '');
  const j = await bkim.cli.json(['verify', before.id]);
  t.match(j, { verified: true, issuingCa: { checked: true, rootCrlNumber: '2', revoked: null, revokedLater: { reason: 'keyCompromise', at: new Date(revokedAt).toISOString() } } });

  // Received after the revocation date: the rule says revoked (as for a revoked signer: exit 3).
  const wait = revokedAt + 50 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const after = await alee.cli.json(['send', 'bkim'], { input: 'Sent with a revoked issuing CA' });
  const r = await bkim.cli.run(['verify', after.id]);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stdout, /^!! VERIFICATION FAILED: revoked: the issuing CA .+ \(serial [0-9a-f]+\) is revoked by the root CRL of .+ \(number 2, the appliance\): revoked \d{4}-\S+ \(keyCompromise\), at or before the receipt time \d{4}-\S+$/m);
  t.match(r.stdout, /^issuing CA: +REVOKED \d{4}-\S+ \(keyCompromise\) by the root CRL #2 from the appliance/m);
  t.notMatch(r.stdout, /verdict: +valid/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one error line');
  t.match(r.stderr, /^error: message \S+ failed verification: revoked: the issuing CA/);
  const rj = await bkim.cli.run(['verify', after.id, '--json']);
  t.equal(rj.code, 3);
  t.match(JSON.parse(rj.stdout), { verified: false, reason: 'revoked', detail: /the issuing CA .* revoked by the root CRL .*number 2/, issuingCa: { checked: true, rootCrlNumber: '2', revoked: { reason: 'keyCompromise' } } });
});

await t.test('when the appliance later serves the root CRL from before the revocation then the profile still judges by the newer one it kept', async (t) => {
  const revoking = readFileSync(rootCrl.file, 'utf8');
  t.equal(readFileSync(bkimKept, 'utf8'), revoking, 'root CRL #2, listing the issuing CA, kept');
  const { cert, key } = await rootCrl.rootSigner();
  // What the appliance served before the ceremony: the same root, number 1, the issuing CA not listed.
  rootCrl.replace(t, (await createRootCrl({ cert, key, crlNumber: 1n })).pem);
  const after = await alee.cli.json(['send', 'bkim'], { input: 'Sent after the ceremony, read after a rollback' });
  const r = await bkim.cli.run(['verify', after.id]);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stdout, /^issuing CA: +REVOKED \d{4}-\S+ \(keyCompromise\) by the root CRL #2 from this profile/m);
  t.match(r.stderr, /^warning: the appliance served root CRL #1, older than #2: an appliance restored from an old backup, or one that is not the appliance; the issuing CA is judged by root CRL #2, kept in this profile by an earlier run$/m);
  t.match(r.stderr, /^error: message \S+ failed verification: revoked: the issuing CA/m);
  t.equal(readFileSync(bkimKept, 'utf8'), revoking, 'the older one did not replace it');
});
