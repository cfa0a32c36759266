/**
 * Issue 5 (messaging) with the built CLI against a real appliance on 127.0.0.1, direct messages:
 * two people exchange texts (on stdin; never in argv: review-send-argv.test.ts) (files: files.test.ts), the reader sees the [SECRET] banner, inbox shows unread messages
 * verified, a label above the sender's clearance is refused with one line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { cliUser } from './helpers/users.js';

// The appliance with the messaging routes mounted as the shell mounts them.
const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-msg-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
const cdoe = await cliUser(app, dir, 'cdoe', 'confidential');

let firstId = '';
await t.test('when alee sends bkim a text then bkim reads it verified under a [SECRET] banner', async (t) => {
  const sent = await alee.cli.json(['send', 'bkim'], { input: 'The meeting moves to 14:00' });
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
  await bkim.cli.json(['send', 'alee'], { input: 'Unread one' });
  const inbox = await alee.cli.json(['inbox']);
  const conv = inbox.conversations.find((c: { name: string }) => c.name === 'bkim');
  t.ok(conv.unread >= 1);
  t.ok(conv.messages.some((m: { body: string; verified: boolean }) => m.body === 'Unread one' && m.verified));
});

await t.test('when the label is above the sender clearance then sending is refused with one line', async (t) => {
  const r = await cdoe.cli.run(['send', 'alee', '--label', 'secret'], { input: 'too high' });
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: label secret is above your certificate clearance confidential\n$/);
  const bad = await cdoe.cli.run(['send', 'alee', '--label', 'cosmic'], { input: 'x' });
  t.equal(bad.code, 2, 'an unknown label is a usage error');
  const ok = await cdoe.cli.json(['send', 'alee'], { input: 'fine' });
  t.equal(ok.label, 'confidential', 'a direct conversation is labelled by the lower clearance');
});

await t.test('when messages were sent and read then no profile file holds their text', async (t) => {
  for (const u of [alee, bkim, cdoe]) {
    for (const f of readdirSync(u.cli.profile)) {
      const text = readFileSync(join(u.cli.profile, f), 'utf8');
      t.notMatch(text, /meeting moves|Report attached|line two/, `${u.user.login}/${f}`);
    }
  }
});

await t.test('when a recipient is neither a login nor #group then it is a usage error', async (t) => {
  const r = await alee.cli.run(['send', 'Not A Login!'], { input: 'x' });
  t.equal(r.code, 2);
  t.match(r.stderr, /neither a login nor #group/);
  const nothing = await alee.cli.run(['send', 'bkim']);
  t.equal(nothing.code, 2);
  t.match(nothing.stderr, /nothing to send/);
});
