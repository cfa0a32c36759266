/**
 * Disaster recovery: keys.db is lost with the disk (or the appliance moves to a new machine). A
 * restore --without-keys brings back accounts, certificates, keyring and audit log, and no
 * message: the destroyable keys were never in any backup.
 */
import { join } from 'node:path';
import t from 'tap';
import { scanTree } from '../../helpers/forensics.js';
import { tmpDir } from '../../helpers/tmp.js';
import { live, reopen, runOps } from './fixture.js';

t.test('when keys.db is lost then restore --without-keys brings the appliance back on a new machine without any message', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir, keyFile } = L;
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const msg = await L.send(alice, conv, 'a message whose key dies with the disk');
  const dir = tmpDir(t, 'sigil-dr-');
  const out = join(dir, 'dr.sbk');
  t.equal((await runOps(['backup', '--data', dataDir, '--out', out])).code, 0);
  await L.stopKeepingData();

  const beside = await runOps(['restore', '--data', dataDir, '--in', out, '--yes', '--without-keys']);
  t.equal(beside.code, 2);
  t.equal(beside.error?.code, 'RESTORE_ARGUMENT', 'a live keys.db is never replaced');

  const fresh = join(dir, 'new-machine');
  const refused = await runOps(['restore', '--data', fresh, '--in', out, '--yes', '--master-key-file', keyFile]);
  t.equal(refused.code, 1);
  t.equal(refused.error?.code, 'OPS_DATA_MISSING', 'losing the messages must be acknowledged');
  const r = await runOps(['restore', '--data', fresh, '--in', out, '--yes', '--without-keys', '--master-key-file', keyFile, '--json']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.json().swept, { messages: 1, conversations: 1 });
  t.ok(r.json().restoredFiles.includes('appliance.json') && r.json().restoredFiles.includes('tls/server.pem'));
  t.ok(r.json().restoredFiles.includes('ca/root-crl.pem'), 'the root CRL comes back too: auditors keep -crl_check_all');
  t.same(scanTree(fresh, [msg]), [], 'no trace of the message id on the new machine');
  const chk = await runOps(['check', '--data', fresh, '--master-key-file', keyFile, '--json']);
  t.equal(chk.code, 0, chk.stdout);

  const app = await reopen(fresh, { keyFilePath: keyFile }, h.app.caPem);
  t.teardown(() => app.close());
  const A2 = await app.as(alice);
  t.equal((await A2(`/v1/messages/${msg}`)).status, 404, 'the message is gone with its key');
  const again = await A2('/v1/conversations/direct', { body: { peer: bob.login } });
  t.equal(again.status, 200, 'accounts and certificates are back: a new conversation opens');
  t.not(again.body.id, undefined);
});
