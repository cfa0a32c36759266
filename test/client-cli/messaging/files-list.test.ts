/**
 * `sigil files <conversation>` with the built CLI against a real appliance: a group's files newest
 * first with sender, name, size and the message to download them from, only from messages that
 * carry files; JSON with each file's verdict; none is one line on stderr; and a message that fails
 * verification (received after the root CRL revoked the issuing CA) is listed loudly in place of
 * its files, with exit 3, while the earlier file still lists as verified.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Certificate, createRootCrl } from '../../../pki/index.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { appRootCrl } from './helpers/root-crl.js';
import { cliUser } from './helpers/users.js';

const { app } = await httpHarness(t, {
  // A server that has not noticed the root key ceremony yet (its watch looks every 10 s), as in
  // read-root-crl.test.ts: the reader must refuse what it accepted in that window.
  rootCrlCheckEveryMs: 24 * 3_600_000,
});
const dir = tmpDir(t, 'sigil-cli-files-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
await alee.cli.json(['group', 'create', 'ops', '--label', 'secret']);
await alee.cli.json(['group', 'add', 'ops', 'bkim']);

const file = (name: string, size: number): string => {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(size, 7));
  return path;
};

const plan = await alee.cli.json(['send', '#ops', '--file', file('plan.pdf', 1200), '--file', file('map.png', 3400)], { input: 'Plan and map' });
await bkim.cli.json(['send', '#ops'], { input: 'no file in this one' });
const notes = await bkim.cli.json(['send', '#ops', '--file', file('notes.txt', 56)], { input: 'Notes' });

t.test('when a member lists a group’s files then they come newest first with the message to download each from', async (t) => {
  const r = await bkim.cli.run(['files', '#ops']);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.match(lines[0], /^SENT\s+FROM\s+FILE\s+BYTES\s+MESSAGE$/);
  t.equal(lines.length, 4, 'three files of two messages; the message without a file adds none');
  t.match(lines[1], new RegExp(`^\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+bkim\\s+notes\\.txt\\s+56\\s+${notes.id}$`));
  t.match(lines[2], new RegExp(`\\s+alee\\s+plan\\.pdf\\s+1200\\s+${plan.id}$`));
  t.match(lines[3], new RegExp(`\\s+alee\\s+map\\.png\\s+3400\\s+${plan.id}$`));
  const j = await alee.cli.json(['files', '#ops', '--limit', '2']);
  t.match(j, { conversation: { kind: 'group', name: 'ops' }, files: [{ message: notes.id, sender: 'bkim', name: 'notes.txt', size: 56, verified: true }] });
  t.equal(j.files.length, 1, '--limit bounds the messages looked through');
});

t.test('when a conversation has no files then one line says so', async (t) => {
  await alee.cli.json(['send', 'bkim'], { input: 'just text' });
  const r = await bkim.cli.run(['files', 'alee']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, '');
  t.equal(r.stderr, 'no files in the newest 1 messages\n');
  const usage = await bkim.cli.run(['files', '#ops', '--limit', '0']);
  t.equal(usage.code, 2);
});

t.test('when a message fails verification then it is listed loudly in place of its files, and the command exits 3', async (t) => {
  const rootCrl = appRootCrl(app);
  const { cert, key } = await rootCrl.rootSigner();
  const revokedAt = new Date();
  await new Promise((r) => setTimeout(r, 50));
  const late = await alee.cli.json(['send', '#ops', '--file', file('late.bin', 10)], { input: 'after the ceremony' });
  const crl = await createRootCrl({
    cert,
    key,
    crlNumber: 2n,
    revoked: [{ serialNumber: Certificate.fromPem(readFileSync(join(app.dataDir, 'ca', 'issuing.pem'), 'utf8')).serialNumber, revocationDate: revokedAt, reason: 'cACompromise' }],
  });
  rootCrl.replace(t, crl.pem);
  const r = await bkim.cli.run(['files', '#ops']);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stdout, new RegExp(`!! VERIFICATION FAILED: revoked: .+\\s+${late.id}$`, 'm'));
  t.notMatch(r.stdout, /late\.bin/, 'no name from a header whose signature does not hold');
  t.match(r.stdout, new RegExp(`\\s+bkim\\s+notes\\.txt\\s+56\\s+${notes.id}$`, 'm'), 'files of messages before the revocation still list');
  t.match(r.stderr, /^error: 1 of \d+ messages failed verification; do not trust their files$/m);
});
