/**
 * With the built CLI: `sigil send --file` whose message fails after its uploads (the appliance
 * refuses the message, or a later upload) discards the uploads it made, so they do not hold the
 * sender's cap on pending uploads until they expire. The user sees the failure, one line, exit 1.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { tmpDir } from '../../helpers/tmp.js';
import { cliUser } from './helpers/users.js';

// A small message body limit: a text above it is refused by the appliance after the uploads,
// a real refusal the CLI does not foresee. A cap of 2 pending uploads: one leftover shows.
const { app } = await httpHarness(t, { messaging: { maxBodyBytes: 1024, maxFileBytes: 64 * 1024, maxPendingUploads: 2 } });
const dir = tmpDir(t, 'sigil-cli-discard-');
const alee = await cliUser(app, dir, 'alee', 'secret');
await cliUser(app, dir, 'bkim', 'secret');

const pending = async (): Promise<number> =>
  (await app.appliance.vault.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM msg_files WHERE uploader = 'alee' AND state = 'pending'`))!.n;
const file = (name: string, size: number): string => {
  const p = join(dir, name);
  writeFileSync(p, Buffer.alloc(size, 5));
  return p;
};
const one = file('one.bin', 10_000);
const two = file('two.bin', 20_000);

await t.test('when the appliance refuses the message after the uploads then they are discarded and the error is the refusal', async (t) => {
  const r = await alee.cli.run(['send', 'bkim', '--file', one, '--file', two], { input: 'x'.repeat(2000) });
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stderr, 'error: message body is over the limit of 1024 bytes (MESSAGE_TOO_LARGE)\n', 'one line: the refusal, nothing of the clean-up');
  t.equal(await pending(), 0, 'no pending upload is left behind');
  const ok = await alee.cli.json(['send', 'bkim', '--file', one, '--file', two], { input: 'shorter' });
  t.match(ok.attachments, [{ name: 'one.bin' }, { name: 'two.bin' }], 'the cap of 2 had room for both again');
});

await t.test('when a later upload is refused then the earlier ones are discarded', async (t) => {
  const big = file('big.bin', 65 * 1024);
  const r = await alee.cli.run(['send', 'bkim', '--file', one, '--file', big], { input: 'with a file too large' });
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stderr, 'error: the file is 66560 bytes; the limit is 65536 (FILE_TOO_LARGE)\n');
  t.equal(await pending(), 0, 'the first upload was discarded');
});
