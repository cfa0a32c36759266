/**
 * rotate-master-key on a real appliance: refusals, then a rotation after which the old key is
 * refused, the appliance starts with the new one and messages still decrypt; a backup made
 * before the rotation restores with its own (old) key.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { openAppliance, loadConfig, PATHS } from '../../../server/index.js';
import { claimRunFile } from '../../../server/ops/index.js';
import { tmpDir } from '../../helpers/tmp.js';
import { live, reopen, runOps } from './fixture.js';

t.test('when the master key is rotated then the old key is refused, the appliance starts with the new one and messages decrypt', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir, keyFile } = L;
  const conv = (await h.as(alice)('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const before = await L.send(alice, conv, 'before the rotation');
  const dir = tmpDir(t, 'sigil-rot-');
  const oldBackup = join(dir, 'old.sbk');
  t.equal((await runOps(['backup', '--data', dataDir, '--out', oldBackup])).code, 0);

  const whileRunning = await runOps(['rotate-master-key', '--data', dataDir, '--new-master-key-file', join(dir, 'x.key')]);
  t.equal(whileRunning.error?.code, 'OPS_SERVER_RUNNING', 'refused while the (real, in-process) server holds the run file');
  await L.stopKeepingData();

  const none = await runOps(['rotate-master-key', '--data', dataDir]);
  t.equal(none.code, 2);
  t.equal(none.error?.code, 'ROTATE_ARGUMENT');
  const both = await runOps(['rotate-master-key', '--data', dataDir, '--new-master-key-file', join(dir, 'y.key')], {
    SIGIL_NEW_MASTER_PASSPHRASE: 'a new passphrase for the vault',
  });
  t.equal(both.error?.code, 'ROTATE_ARGUMENT');
  const same = await runOps(['rotate-master-key', '--data', dataDir, '--new-master-key-file', keyFile]);
  t.equal(same.error?.code, 'ROTATE_ARGUMENT');
  const run = claimRunFile(dataDir);
  const held = await runOps(['rotate-master-key', '--data', dataDir, '--new-master-key-file', join(dir, 'z.key')]);
  run.release();
  t.equal(held.code, 1);
  t.equal(held.error?.code, 'OPS_SERVER_RUNNING');
  t.notOk(existsSync(join(dir, 'z.key')), 'nothing written when refused');

  const newKey = join(dir, 'new.key');
  const oldKeyText = readFileSync(keyFile, 'utf8');
  const r = await runOps(['rotate-master-key', '--data', dataDir, '--new-master-key-file', newKey, '--json']);
  t.equal(r.code, 0, r.stderr);
  const res = r.json();
  t.equal(res.kind, 'keyfile');
  t.equal(res.oldSecretRefused, true);
  t.ok(res.keyring >= 3, 'the appliance keys in the keyring were re-wrapped');
  t.equal(res.conversationKeys, 1);
  t.equal(statSync(newKey).mode & 0o777, 0o600);
  t.not(readFileSync(newKey, 'utf8'), oldKeyText);

  const config = await loadConfig(join(dataDir, PATHS.config));
  await t.rejects(openAppliance({ dataDir, config, masterKey: { keyFilePath: keyFile } }), { code: 'MASTER_KEY_WRONG' }, 'the old key no longer unlocks');
  const checkOld = await runOps(['check', '--data', dataDir, '--json']);
  t.equal(checkOld.code, 1);
  t.match(checkOld.json().items[0], { name: 'master-key', status: 'fail' });
  const checkNew = await runOps(['check', '--data', dataDir, '--master-key-file', newKey, '--json']);
  t.equal(checkNew.code, 0, checkNew.stdout);

  const exists = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', newKey, '--new-master-key-file', newKey + '.other']);
  t.equal(exists.code, 0, 'a second rotation to a fresh file works too');
  const reuse = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', newKey + '.other', '--new-master-key-file', newKey]);
  t.equal(reuse.error?.code, 'MASTER_KEY_EXISTS', 'an existing key file is never reused as a new key');
  t.equal(reuse.code, 2);

  // Passphrase next, shredding the old key file.
  const pass = 'the vault passphrase of the day';
  const toPass = await runOps(['rotate-master-key', '--data', dataDir, '--master-key-file', newKey + '.other', '--shred-old-key-file', '--json'], {
    SIGIL_NEW_MASTER_PASSPHRASE: pass,
  });
  t.equal(toPass.code, 0, toPass.stderr);
  t.equal(toPass.json().oldKeyFileShredded, true);
  for (const secret of [pass, readFileSync(newKey, 'utf8').trim()]) {
    t.notOk(toPass.stdout.includes(secret) || toPass.stderr.includes(secret) || r.stdout.includes(secret) || r.stderr.includes(secret), 'no secret in output or log');
  }
  t.match(toPass.stderr, /^\{"time":.*"msg":"master key rotated"/, 'one JSON log line');
  t.notOk(existsSync(newKey + '.other'), 'the old key file is gone');
  const samePass = await runOps(['rotate-master-key', '--data', dataDir], { SIGIL_MASTER_PASSPHRASE: pass, SIGIL_NEW_MASTER_PASSPHRASE: pass });
  t.equal(samePass.error?.code, 'ROTATE_ARGUMENT');

  const app = await reopen(dataDir, { passphrase: pass }, h.app.caPem);
  const A = await app.as(alice);
  const got = await A(`/v1/messages/${before}`);
  t.equal(got.status, 200, 'a message from before the rotations decrypts');
  t.equal(Buffer.from(got.body.body, 'base64').toString(), 'before the rotation');
  t.equal((await A('/v1/messages', { body: await (async () => { const m = await h.compose(alice, conv, 'after the rotation'); return { header: m.header, signature: m.signature, body: m.body }; })() })).status, 201);
  await app.close();

  // The backup from before is under the first master key: it needs that key to restore.
  const noOld = await runOps(['restore', '--data', dataDir, '--in', oldBackup, '--yes'], { SIGIL_MASTER_PASSPHRASE: pass });
  t.equal(noOld.error?.code, 'BACKUP_KEY_WRONG');
  const wrongOld = await runOps(['restore', '--data', dataDir, '--in', oldBackup, '--yes', '--backup-master-key-file', newKey], { SIGIL_MASTER_PASSPHRASE: pass });
  t.equal(wrongOld.error?.code, 'BACKUP_KEY_WRONG');
  const restored = await runOps(['restore', '--data', dataDir, '--in', oldBackup, '--yes', '--backup-master-key-file', keyFile, '--json'], {
    SIGIL_MASTER_PASSPHRASE: pass,
  });
  t.equal(restored.code, 0, restored.stderr);
  t.equal(restored.json().rewrapped, true);
  t.equal(restored.json().swept.orphanMessageKeys, 1, 'the message sent after the backup is lost with it');
  const app2 = await reopen(dataDir, { passphrase: pass }, h.app.caPem);
  t.teardown(() => app2.close());
  const A2 = await app2.as(alice);
  t.equal((await A2(`/v1/messages/${before}`)).status, 200, 'the restored keyring opens under the current key');
  const chk = await runOps(['check', '--data', dataDir, '--json'], { SIGIL_MASTER_PASSPHRASE: pass });
  t.equal(chk.code, 0, chk.stdout);
});
