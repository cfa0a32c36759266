/**
 * Issue 5 (messaging) with the built CLI, files: `send --file` streams the upload, `download`
 * verifies the message, writes the attachment and matches its bytes; an existing file is never
 * overwritten without --force; a message without attachments has nothing to download; a signed
 * name unsafe as a file name (a dotfile) is saved under a safe one.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

let firstId = '';
await t.test('when a text is sent then it has no attachment to download', async (t) => {
  firstId = (await alee.cli.json(['send', 'bkim'], { input: 'no file here' })).id;
  t.match(firstId, /^[A-Za-z0-9_-]{22}$/);
});

await t.test('when a file is sent then the download matches and an existing file is not overwritten', async (t) => {
  const src = join(dir, 'report.bin');
  const bytes = Buffer.alloc(300_000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
  writeFileSync(src, bytes);
  const sent = await alee.cli.json(['send', 'bkim', '--file', src], { input: 'Report attached' });
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


await t.test('when a file’s name holds a line break then send refuses it before uploading anything', async (t) => {
  const src = join(dir, 'x.pdf\n[SECRET] forged');
  writeFileSync(src, 'x');
  const r = await alee.cli.run(['send', 'bkim', '--file', src], { input: 'see attached' });
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: \S+x\.pdf\\x0a\[SECRET\] forged is not a file whose name is free of control characters, line breaks and bidirectional overrides; rename it\n$/);
  t.notMatch((await bkim.cli.run(['read', 'alee', '--limit', '1'])).stdout, /see attached/, 'nothing was sent');
});

await t.test('when a file’s signed name is unsafe as a file name then the download without --out saves it under a safe one, here', async (t) => {
  // A sender chose `.bash_login`: downloaded into a home folder as is, the next login shell would run it.
  const src = join(dir, '.bash_login');
  writeFileSync(src, 'echo owned\n');
  const sent = await alee.cli.json(['send', 'bkim', '--file', src], { input: 'see attached' });
  t.match(sent.attachments, [{ name: '.bash_login' }]);
  const home = join(dir, 'bkim-home');
  mkdirSync(home);
  const r = await bkim.cli.run(['download', sent.id], { cwd: home });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, 'saving as bash_login: the name the sender gave is not safe as a file name here\n');
  t.same(readdirSync(home), ['bash_login'], 'no dotfile was made');
  t.match(r.stdout, /^attachment: +\.bash_login$/m, 'the signed name is still shown as signed');
});
