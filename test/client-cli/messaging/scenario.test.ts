/**
 * Issue 5 (messaging half) with the built CLI against a real appliance on 127.0.0.1: two people
 * exchange direct messages and a file (the download matches, and is never overwritten silently),
 * a group is created, joined, written to and read, a label above the sender's clearance is
 * refused, the reader sees the [SECRET] banner, a message is deleted by its sender, a group is
 * destroyed, and an exported evidence package verifies with the real openssl — and fails after
 * a one-byte change, as does `sigil verify --package`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { cliUser } from './users.js';

// The appliance with the messaging routes mounted as the shell mounts them.
const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-msg-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const cdoe = await cliUser(app, dir, 'cdoe', 'confidential');

let firstId = '';
await t.test('when alee sends bkim a text then bkim reads it verified under a [SECRET] banner', async (t) => {
  const sent = await alee.cli.json(['send', 'bkim', 'The meeting moves to 14:00']);
  t.match(sent, { id: /^[A-Za-z0-9_-]{22}$/, label: 'secret', seq: Number });
  firstId = sent.id;
  const r = await bkim.cli.run(['read', 'alee']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^\[SECRET\] \d{4}-\d\d-\d\d \d\d:\d\d alee: The meeting moves to 14:00$/m);
  t.notMatch(r.stdout, /VERIFICATION FAILED/);
  const j = await bkim.cli.json(['read', 'alee']);
  t.match(j.messages[0], { id: firstId, sender: 'alee', label: 'secret', verified: true, signer: 'alee', body: 'The meeting moves to 14:00' });
});

await t.test('when the text comes from stdin and the label is lower then it is sent with that label', async (t) => {
  const sent = await bkim.cli.json(['send', 'alee', '--label', 'restricted', '--reply-to', firstId], { input: 'line one\nline two' });
  t.equal(sent.label, 'restricted');
  const j = await alee.cli.json(['read', 'bkim', '--since', String(sent.seq - 1)]);
  t.equal(j.messages.length, 1);
  t.match(j.messages[0], { body: 'line one\nline two', label: 'restricted', replyTo: firstId, verified: true });
  const human = await alee.cli.run(['read', 'bkim', '--limit', '1']);
  t.match(human.stdout, /^\[RESTRICTED\] .* bkim: line one\n {4}line two$/m);
});

await t.test('when alee has unread messages then inbox lists them verified', async (t) => {
  await bkim.cli.json(['send', 'alee', 'Unread one']);
  const inbox = await alee.cli.json(['inbox']);
  const conv = inbox.conversations.find((c: { name: string }) => c.name === 'bkim');
  t.ok(conv.unread >= 1);
  t.ok(conv.messages.some((m: { body: string; verified: boolean }) => m.body === 'Unread one' && m.verified));
});

await t.test('when a file is sent then the download matches and an existing file is not overwritten', async (t) => {
  const src = join(dir, 'report.bin');
  const bytes = Buffer.alloc(300_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
  writeFileSync(src, bytes);
  const sent = await alee.cli.json(['send', 'bkim', 'Report attached', '--file', src]);
  t.match(sent.attachments, [{ name: 'report.bin', size: bytes.length }]);
  const read = await bkim.cli.run(['read', 'alee', '--limit', '1']);
  t.match(read.stdout, /attachment: report\.bin \(300000 bytes\)/);
  const out = join(dir, 'bkim-report.bin');
  const d = await bkim.cli.json(['download', sent.id, '--out', out]);
  t.match(d, { file: out, size: bytes.length, signer: 'alee' });
  t.ok(readFileSync(out).equals(bytes), 'the downloaded bytes are the sent bytes');
  const again = await bkim.cli.run(['download', sent.id, '--out', out]);
  t.equal(again.code, 1);
  t.match(again.stderr, /^error: .*already exists; add --force/);
  t.equal((await bkim.cli.run(['download', sent.id, '--out', out, '--force'])).code, 0);
  const none = await bkim.cli.run(['download', firstId, '--out', join(dir, 'x')]);
  t.equal(none.code, 1);
  t.match(none.stderr, /has no attachment/);
});

await t.test('when the label is above the sender clearance then sending is refused with one line', async (t) => {
  const r = await cdoe.cli.run(['send', 'alee', '--label', 'secret', 'too high']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: label secret is above your certificate clearance confidential\n$/);
  const bad = await cdoe.cli.run(['send', 'alee', '--label', 'cosmic', 'x']);
  t.equal(bad.code, 2, 'an unknown label is a usage error');
  const ok = await cdoe.cli.json(['send', 'alee', 'fine']);
  t.equal(ok.label, 'confidential', 'a direct conversation is labelled by the lower clearance');
});

await t.test('when a group is created and joined then members send and read it', async (t) => {
  const g = await alee.cli.json(['group', 'create', 'ops', '--label', 'secret']);
  t.match(g, { name: 'ops', label: 'secret', members: [{ login: 'alee', role: 'owner' }] });
  const added = await alee.cli.json(['group', 'add', 'ops', 'bkim']);
  t.equal(added.members.length, 2);
  const low = await alee.cli.run(['group', 'add', 'ops', 'cdoe']);
  t.equal(low.code, 1);
  t.match(low.stderr, /CLEARANCE_TOO_LOW/);
  const sent = await alee.cli.json(['send', '#ops', '--urgent', 'Stand by']);
  t.equal(sent.label, 'secret');
  const r = await bkim.cli.run(['read', '#ops']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, /^\[SECRET\] URGENT .* alee: Stand by$/m);
  const list = await bkim.cli.json(['group', 'list']);
  t.same(list.groups.map((x: { name: string }) => x.name), ['ops']);
  const shown = await bkim.cli.run(['group', 'show', '#ops']);
  t.match(shown.stdout, /members:\s+alee \(owner\), bkim/);
  const outsider = await cdoe.cli.run(['read', '#ops']);
  t.equal(outsider.code, 1);
  t.match(outsider.stderr, /GROUP_NOT_FOUND/);
  const removed = await alee.cli.json(['group', 'remove', 'ops', 'bkim']);
  t.equal(removed.members.length, 1);
  await alee.cli.json(['group', 'add', 'ops', 'bkim']);
});

await t.test('when the sender deletes a message then it is gone for the reader; without --yes and no terminal it is refused', async (t) => {
  const sent = await alee.cli.json(['send', 'bkim', 'sent to the wrong person']);
  const noYes = await alee.cli.run(['delete', sent.id]);
  t.equal(noYes.code, 2, noYes.stderr);
  const both = await alee.cli.run(['delete', sent.id, '--conversation', 'bkim', '--yes']);
  t.equal(both.code, 2);
  const del = await alee.cli.json(['delete', sent.id, '--reason', 'wrong person', '--yes']);
  t.match(del, { deletedBy: 'alee', reason: 'wrong person', count: 1 });
  const j = await bkim.cli.json(['read', 'alee', '--limit', '200']);
  t.notOk(j.messages.some((m: { id: string }) => m.id === sent.id));
  const notMine = await bkim.cli.run(['delete', firstId, '--yes']);
  t.equal(notMine.code, 1, 'only the sender (or an officer) deletes a message');
});

await t.test('when an exported package is checked with openssl then it verifies, and fails after a one-byte change', async (t) => {
  const out = join(dir, 'evidence');
  const ex = await bkim.cli.json(['export', firstId, '--out', out]);
  t.match(ex.files, ['header.json', 'signature.der', 'chain.pem', 'crl.pem', 'ca-and-crl.pem', 'message.json', 'README.txt']);
  const readme = readFileSync(join(out, 'README.txt'), 'utf8');
  const command = /^ {2}(openssl cms -verify .*)$/m.exec(readme)?.[1];
  t.ok(command, 'the README names the command');
  t.notMatch(readFileSync(join(out, 'header.json'), 'utf8'), /meeting/, 'the package carries no body text');
  const argv = (command as string).split(' ').slice(1);
  const good = spawnSync('openssl', argv, { cwd: out, encoding: 'utf8' });
  t.equal(good.status, 0, good.stderr);
  t.match(good.stderr, /Verification successful/);
  const ok = await bkim.cli.json(['verify', '--package', out]);
  t.match(ok, { verified: true, signer: 'alee', label: 'secret', bodyChecked: false });
  const online = await bkim.cli.json(['verify', firstId]);
  t.match(online, { verified: true, bodyChecked: true });

  const header = readFileSync(join(out, 'header.json'));
  const i = header.indexOf('"sentAt":"') + 12;
  header[i] = header[i] === 0x30 ? 0x31 : 0x30;
  writeFileSync(join(out, 'header.json'), header);
  const bad = spawnSync('openssl', argv, { cwd: out, encoding: 'utf8' });
  t.not(bad.status, 0, 'openssl refuses the changed header');
  const local = await bkim.cli.run(['verify', '--package', out]);
  t.equal(local.code, 3);
  t.match(local.stdout, /^!! VERIFICATION FAILED: digest-mismatch/m);
  t.equal(local.stderr.trim().split('\n').length, 1, 'one error line');
  // openssl itself agrees on the chain: the signer certificate verifies against the exported CAs.
  execFileSync('openssl', ['verify', '-CAfile', join(out, 'ca-and-crl.pem'), '-crl_check', join(dir, 'alee', 'cert.pem')], { stdio: 'pipe' });
});

await t.test('when the owner destroys the group then it and its messages are gone', async (t) => {
  const noYes = await alee.cli.run(['group', 'destroy', 'ops']);
  t.equal(noYes.code, 2);
  const d = await alee.cli.json(['group', 'destroy', 'ops', '--yes', '--reason', 'operation closed']);
  t.match(d, { deletedBy: 'alee', reason: 'operation closed' });
  t.ok(d.count >= 1);
  const gone = await bkim.cli.run(['read', '#ops']);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /GROUP_NOT_FOUND/);
});

await t.test('when a recipient is neither a login nor #group then it is a usage error', async (t) => {
  const r = await alee.cli.run(['send', 'Not A Login!', 'x']);
  t.equal(r.code, 2);
  t.match(r.stderr, /neither a login nor #group/);
  const nothing = await alee.cli.run(['send', 'bkim']);
  t.equal(nothing.code, 2);
  t.match(nothing.stderr, /nothing to send/);
});
