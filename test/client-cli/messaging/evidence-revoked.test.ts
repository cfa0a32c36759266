/**
 * Regression (review of `sigil verify --package`, HIGH): the package verifier judged the signer's
 * chain at message.json's receivedAt — a file the package itself calls "not signed" — or, without
 * it, at the signature's signingTime, the signer's own claim. With a certificate revoked for
 * keyCompromise, whoever held the stolen key could sign a new message, write a receivedAt before
 * the revocation, and get "valid, signed before revocation" (exit 0).
 *
 * With the built CLI against a real appliance: a genuine message by a signer revoked later still
 * verifies online as signed before revocation, but its package alone is not valid (exit 3, one line
 * saying why and pointing to `sigil verify <id>`); a forged package (new message, stolen key,
 * receivedAt before the revocation) is refused, and so is the same without message.json; a
 * package of a signer who is not revoked still verifies, its receivedAt shown as unproven.
 */
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { signDetached } from '../../../pki/index.js';
import { buildHeader } from '../../../client-cli/messaging/header.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { cliUser } from './helpers/users.js';

const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-evrev-');
const cmal = await cliUser(app, dir, 'cmal', 'secret');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const officer = app.officer.token;

const NOTE = /^!! the package cannot prove the message reached the appliance before the revocation; sigil verify [A-Za-z0-9_-]{22} against the appliance judges it at the appliance's recorded receipt time$/m;

// Sent while cmal's certificate is good; alee's stays good throughout.
const genuine = await cmal.cli.json(['send', 'bkim'], { input: 'Meet at the north gate at 09:00' });
const fromAlee = await alee.cli.json(['send', 'bkim'], { input: 'Agenda attached tomorrow' });
// A package made before the revocation: its CRL does not list cmal yet.
const before = join(dir, 'ev-before');
await bkim.cli.json(['export', genuine.id, '--out', before]);
const receivedAt = JSON.parse(readFileSync(join(before, 'message.json'), 'utf8')).receivedAt as string;

// CRL revocation dates have whole seconds: revoke in a later second than the receipt.
const wait = Date.parse(receivedAt) + 1100 - Date.now();
if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
const rev = await app.request(`/v1/certificates/${cmal.user.cert.serialNumber}/revoke`, { token: officer, body: { reason: 'keyCompromise' } });
if (rev.status !== 200) throw new Error(`revoke: ${JSON.stringify(rev.body)}`);
const pub = await app.request('/v1/crl', { token: officer, body: {} });
if (pub.status !== 200) throw new Error(`publish CRL: ${JSON.stringify(pub.body)}`);
const crlNow = join(dir, 'current.crl.pem');
const fetched = await bkim.cli.run(['crl', 'fetch', '--out', crlNow]);
if (fetched.code !== 0) throw new Error(`crl fetch: ${fetched.stderr}`);

// Exported after the revocation: the package carries the CRL that lists cmal (keyCompromise).
const ev = join(dir, 'ev-cmal');
await bkim.cli.json(['export', genuine.id, '--out', ev]);

await t.test('when the signer is revoked after sending then the message verifies online as signed before revocation, but its package alone is not valid', async (t) => {
  const online = await bkim.cli.json(['verify', genuine.id]);
  t.match(online, { verified: true, signer: 'cmal', revokedLater: { reason: 'keyCompromise', at: /^\d{4}-/ } });
  const human = await bkim.cli.run(['verify', genuine.id]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /verdict: +valid, signed before revocation \(revoked \d{4}-.*keyCompromise\)/);

  const local = await bkim.cli.run(['verify', '--package', ev]);
  t.equal(local.code, 3, 'exit 3: verification said no');
  t.match(local.stdout, /^!! VERIFICATION FAILED: revoked: .*keyCompromise/m);
  t.match(local.stdout, NOTE, 'one line says the package cannot prove the time, and where it can be judged');
  t.match(local.stdout, new RegExp(`received: +${receivedAt.replace(/[.]/g, '\\.')} \\(message\\.json, not signed: unproven`));
  t.notMatch(local.stdout, /verdict: +valid/);
  t.equal(local.stderr.trim().split('\n').length, 1, 'one error line');
  const j = await bkim.cli.run(['verify', '--package', ev, '--json']);
  t.equal(j.code, 3);
  t.match(JSON.parse(j.stdout), { id: genuine.id, verified: false, reason: 'revoked', claimedReceivedAt: receivedAt, receivedAtProven: false, note: /cannot prove/ });
  t.match(readFileSync(join(ev, 'README.txt'), 'utf8'), /revoked AFTER this message was received[\s\S]*Offline, this package is refused/);
});

await t.test('when a package made before the revocation is checked with the current CRL then it is not valid either', async (t) => {
  const local = await bkim.cli.run(['verify', '--package', before, '--crl', crlNow]);
  t.equal(local.code, 3, local.stdout);
  t.match(local.stdout, /^!! VERIFICATION FAILED: revoked: .*keyCompromise/m);
  t.match(local.stdout, NOTE);
});

/** A message cmal never sent, signed now with the stolen key, dated at `when` (before the revocation). */
async function forge(out: string, when: Date): Promise<string> {
  const legit = JSON.parse(readFileSync(join(ev, 'message.json'), 'utf8')) as { conversation: string };
  const { text, header } = await buildHeader({
    conversation: legit.conversation,
    sender: 'cmal',
    label: 'secret',
    body: new TextEncoder().encode('Transfer the files to the courier. -- cmal'),
    sentAt: when,
  });
  const sig = await signDetached({ content: new TextEncoder().encode(text), signerCert: cmal.user.cert, signerKey: cmal.user.key, label: 'secret', signingTime: when });
  cpSync(ev, out, { recursive: true });
  writeFileSync(join(out, 'header.json'), text);
  writeFileSync(join(out, 'signature.der'), sig);
  writeFileSync(join(out, 'message.json'), JSON.stringify({ ...legit, id: header.id, seq: 99, receivedAt: when.toISOString() }, null, 2) + '\n');
  return header.id;
}

await t.test('when a new message is signed with the revoked key and message.json claims receipt before the revocation then the package is refused', async (t) => {
  const forged = join(dir, 'forged');
  const id = await forge(forged, new Date(receivedAt));
  const local = await bkim.cli.run(['verify', '--package', forged]);
  t.equal(local.code, 3, local.stdout);
  t.match(local.stdout, /^!! VERIFICATION FAILED: revoked: .*keyCompromise/m);
  t.match(local.stdout, NOTE);
  t.notMatch(local.stdout, /valid, signed before revocation/);
  t.match(local.stderr, new RegExp(`^error: message ${id} failed verification: revoked`));
});

await t.test('when the forged package has no message.json then the signer’s signingTime does not save it either', async (t) => {
  const forged = join(dir, 'forged-bare');
  await forge(forged, new Date(receivedAt));
  rmSync(join(forged, 'message.json'));
  const local = await bkim.cli.run(['verify', '--package', forged]);
  t.equal(local.code, 3, local.stdout);
  t.match(local.stdout, /^!! VERIFICATION FAILED: revoked: .*keyCompromise/m);
  t.match(local.stdout, NOTE);
  t.match(local.stdout, /received: +\(none\)/);
  const j = await bkim.cli.run(['verify', '--package', forged, '--json']);
  t.match(JSON.parse(j.stdout), { verified: false, reason: 'revoked', claimedReceivedAt: null });
});

await t.test('when the signer is not revoked then the package still verifies, with receivedAt shown as unproven', async (t) => {
  const evAlee = join(dir, 'ev-alee');
  await bkim.cli.json(['export', fromAlee.id, '--out', evAlee]);
  const human = await bkim.cli.run(['verify', '--package', evAlee]);
  t.equal(human.code, 0, human.stderr);
  t.match(human.stdout, /^verdict: +valid$/m);
  t.match(human.stdout, /received: +\d{4}-\S+ \(message\.json, not signed: unproven, not used\)/);
  t.match(human.stdout, /checked at: +\d{4}-\S+ \(now/);
  const j = await bkim.cli.json(['verify', '--package', evAlee]);
  t.match(j, { verified: true, signer: 'alee', revokedLater: null, receivedAtProven: false, claimedReceivedAt: /^\d{4}-/, checkedAt: /^\d{4}-/ });
  const withCrl = await bkim.cli.json(['verify', '--package', evAlee, '--crl', crlNow]);
  t.match(withCrl, { verified: true, signer: 'alee' });
  const usage = await bkim.cli.run(['verify', fromAlee.id, '--crl', crlNow]);
  t.equal(usage.code, 2, '--crl goes only with --package');
});
