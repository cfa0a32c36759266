/**
 * A restore keeps the live replay guard (msg_replay_guard): a message deleted after the backup
 * stays deleted even against its own signed original, resubmitted while its sentAt is still
 * inside the clock-skew window. Real appliance, real TLS, the real `restore` command.
 *
 * Review finding: the restored vault took the backup's replay guard, so the guard rows of every
 * deletion since the backup were gone. A message sent and deleted after the backup (its row was
 * never in the backup, so the sweep did not guard it either) could be posted again from its signed
 * original right after the restore, and was back: readable, as if never deleted.
 */
import { join } from 'node:path';
import t from 'tap';
import { tmpDir } from '../../helpers/tmp.js';
import { live, reopen, runOps } from './fixture.js';

t.test('when a message is deleted after the backup then its signed original is refused as a replay after the restore', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const conv = (await h.as(alice)('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  await L.send(alice, conv, 'before the backup');
  const out = join(tmpDir(t, 'sigil-replay-'), 'sigil.sbk');
  t.equal((await runOps(['backup', '--data', dataDir, '--out', out])).code, 0);

  const m = await h.compose(alice, conv, 'sent and deleted after the backup');
  const original = { header: m.header, signature: m.signature, body: m.body };
  t.equal((await h.as(alice)('/v1/messages', { body: original })).status, 201);
  t.equal((await L.del(alice, `/v1/messages/${m.id}`, `message:${m.id}`)).status, 200);
  const live409 = await h.as(alice)('/v1/messages', { body: original });
  t.equal(live409.body?.error?.code, 'MESSAGE_REPLAY', 'control: before the restore the original is refused');
  await L.stopKeepingData();

  const r = await runOps(['restore', '--data', dataDir, '--in', out, '--yes']);
  t.equal(r.code, 0, r.stderr);

  const app = await reopen(dataDir, { keyFilePath: L.keyFile }, h.app.caPem);
  t.teardown(() => app.close());
  const A = await app.as(alice);
  const again = await A('/v1/messages', { body: original });
  t.equal(again.body?.error?.code, 'MESSAGE_REPLAY', `the deleted message is not accepted again: ${again.status} ${JSON.stringify(again.body)}`);
  t.equal((await A(`/v1/messages/${m.id}`)).status, 404, 'and it is not readable');
});
