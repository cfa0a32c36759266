/**
 * The root CRL in every command that shows, saves or exports a message, not only `sigil verify`:
 * `sigil read` and `sigil export` verify through the same MessagingSession as `sigil verify`
 * online, so after the root key ceremony revokes the issuing CA a message received after the
 * revocation fails as revoked in each of them (exit 3, nothing exported), while one received before
 * it still reads as valid. A served root CRL that the pinned root did not sign stops `read` in one
 * line, and one stale now is one warning line, as for the issuing CA's CRL.
 */
import { existsSync, writeFileSync } from 'node:fs';
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
const dir = tmpDir(t, 'sigil-cli-readroot-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const rootCrl = appRootCrl(app);

const before = await alee.cli.json(['send', 'bkim'], { input: 'The convoy leaves at 06:00' });
const afterBefore = Date.now();

await t.test('when the served root CRL is not signed by the pinned root then read refuses it in one line', async (t) => {
  const other = await makeTestCa('p256');
  rootCrl.replace(t, (await createRootCrl({ cert: other.root.cert, key: other.root.key, crlNumber: 7n })).pem);
  const r = await bkim.cli.run(['read', 'alee']);
  t.equal(r.code, 3, r.stderr);
  t.equal(r.stdout, '', 'no message shown');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^error: the root CRL from the appliance is not trusted by the pinned CA: it is issued by .+, not by the pinned root /);
});

await t.test('when the root CRL is stale now but not at the receipt time then read shows the message with one warning', async (t) => {
  // #10 is not of the appliance's own sequence: bkim's profile must not keep it for the ceremony below.
  forgetKeptRootCrl(t, bkim.cli);
  const { cert, key } = await rootCrl.rootSigner();
  const recent = await createRootCrl({ cert, key, crlNumber: 10n, thisUpdate: new Date(afterBefore + 100 - 86_400_000), validityDays: 1 });
  rootCrl.replace(t, recent.pem);
  const wait = afterBefore + 200 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const r = await bkim.cli.run(['read', 'alee']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /alee: The convoy leaves at 06:00/);
  t.notMatch(r.stdout, /VERIFICATION FAILED/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one warning line');
  t.match(r.stderr, /^warning: the appliance's root CRL #10 was due for update/);
});

await t.test('when the root key ceremony revokes the issuing CA then read and export refuse a message received after it, not one received before', async (t) => {
  const passFile = join(dir, 'root-pass.txt');
  writeFileSync(passFile, `${app.init.ca.rootKeyPassphrase}\n`, { mode: 0o600 });
  const c = await runServer(['sign-root-crl', '--data', app.dataDir, '--root-key', app.init.ca.rootKeyFile, '--passphrase-file', passFile, '--revoke-issuing', '--yes', '--json'], {}, 90_000);
  t.equal(c.code, 0, c.stderr);
  const revokedAt = Date.parse((JSON.parse(c.stdout).revoked as { revocationDate: string }[])[0]!.revocationDate);
  const wait = revokedAt + 50 - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const after = await alee.cli.json(['send', 'bkim'], { input: 'Sent with a revoked issuing CA' });

  const r = await bkim.cli.run(['read', 'alee']);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stdout, /alee: The convoy leaves at 06:00/, 'the message received before the revocation is shown');
  t.match(r.stdout, /^!! VERIFICATION FAILED: revoked: the issuing CA .+ is revoked by the root CRL of .+ \(number 2, the appliance\)/m);
  t.equal(r.stdout.match(/VERIFICATION FAILED/g)?.length, 1, 'only the message received after it fails');
  t.match(r.stderr, /^error: 1 of 2 messages failed verification; do not act on them$/m);

  const j = await bkim.cli.run(['read', 'alee', '--json']);
  t.equal(j.code, 3, j.stderr);
  const shown = JSON.parse(j.stdout).messages as { id: string; verified: boolean; reason?: string }[];
  t.match(shown.find((m) => m.id === before.id), { verified: true });
  t.match(shown.find((m) => m.id === after.id), { verified: false, reason: 'revoked' });

  const ok = join(dir, 'ev-before');
  const e1 = await bkim.cli.run(['export', before.id, '--out', ok]);
  t.equal(e1.code, 0, e1.stderr);
  const refused = join(dir, 'ev-after');
  const e2 = await bkim.cli.run(['export', after.id, '--out', refused]);
  t.equal(e2.code, 3, e2.stderr);
  t.equal(e2.stderr.trim().split('\n').length, 1, 'one error line');
  t.match(e2.stderr, /^error: message \S+ failed verification: revoked: the issuing CA .+; not exported$/m);
  t.notOk(existsSync(join(refused, 'signature.der')), 'nothing exported');
});
