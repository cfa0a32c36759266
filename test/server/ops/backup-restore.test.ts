/**
 * Backup and restore on a real appliance (real TLS, signed messages, real SQLite files):
 * the backup is taken online, holds no plaintext and never keys.db; a restore brings back what
 * was not deleted and keeps deleted correspondence unreadable and gone.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import sqlite3 from 'sqlite3';
import { claimRunFile } from '../../../server/ops/index.js';
import { VAULT_PAGE_SIZE } from '../../../server/vault/index.js';
import { scanTree } from '../../helpers/forensics.js';
import { tmpDir } from '../../helpers/tmp.js';
import { live, reopen, runOps } from './fixture.js';

function rawAll<T>(path: string, sql: string): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path, sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      db.all(sql, (e, rows) => db.close(() => (e ? reject(e) : resolve(rows as T[]))));
    });
  });
}

t.test('when a message is deleted after a backup then restoring that backup leaves it unreadable while the others read', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const kept = await L.send(alice, conv, 'kept: the minutes of Tuesday');
  const doomed = await L.send(alice, conv, 'doomed: the draft that must go');
  const group = (await A('/v1/groups', { body: { name: 'ops-team', label: 'restricted' } })).body;
  t.ok(group.id, JSON.stringify(group));
  const inGroup = await L.send(alice, group.id, 'group: to be destroyed with the group');

  const out = join(tmpDir(t, 'sigil-bk-'), 'sigil.sbk');
  // Online: the server is serving while the backup runs.
  const bk = await runOps(['backup', '--data', dataDir, '--out', out, '--json']);
  t.equal(bk.code, 0, bk.stderr);
  const info = bk.json();
  t.equal(info.counts.messages, 3);
  t.equal(info.file, out);
  t.same(readdirSync(join(dataDir, 'vault')).filter((f) => f.startsWith('.backup-')), [], 'the plaintext snapshot is removed');
  const bytes = readFileSync(out);
  t.equal(bytes.indexOf('SQLite format 3'), -1, 'no SQLite page in clear');
  t.equal(bytes.indexOf(alice.login), -1, 'no login in clear');

  t.equal((await L.del(alice, `/v1/messages/${doomed}`, `message:${doomed}`)).status, 200);
  t.equal((await L.del(alice, `/v1/groups/ops-team`, `conversation:${group.id}`)).status, 200);
  const after = await L.send(alice, conv, 'after: sent after the backup');

  // A dry run is allowed while the server runs and changes nothing.
  const dry = await runOps(['restore', '--data', dataDir, '--in', out, '--dry-run', '--json']);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.json().swept, { messages: 2, conversations: 1, orphanMessageKeys: 1 });
  await L.stopKeepingData();

  const noYes = await runOps(['restore', '--data', dataDir, '--in', out]);
  t.equal(noYes.code, 2);
  t.equal(noYes.error?.code, 'RESTORE_NOT_CONFIRMED');

  const run = claimRunFile(dataDir);
  const running = await runOps(['restore', '--data', dataDir, '--in', out, '--yes']);
  run.release();
  t.equal(running.code, 1);
  t.equal(running.error?.code, 'OPS_SERVER_RUNNING');

  const [replacedHead] = await rawAll<{ size: number; root: Buffer }>(join(dataDir, 'vault', 'vault.db'), 'SELECT size, root FROM audit_head WHERE id = 1');
  const r = await runOps(['restore', '--data', dataDir, '--in', out, '--yes', '--json']);
  t.equal(r.code, 0, r.stderr);
  const res = r.json();
  t.equal(res.dryRun, false);
  t.match(res.swept, { messages: 2, files: 0, conversations: 1, orphanMessageKeys: 1, orphanConversationKeys: 0 });
  t.same(readdirSync(join(dataDir, 'vault')).filter((f) => f.startsWith('.restore-')), [], 'no working copy left');

  const vaultDb = join(dataDir, 'vault', 'vault.db');
  t.same(await rawAll(vaultDb, 'PRAGMA page_size'), [{ page_size: VAULT_PAGE_SIZE }], 'the restored vault keeps its page size');
  const ids = (await rawAll<{ id: string }>(vaultDb, 'SELECT id FROM msg_messages')).map((x) => x.id);
  t.same(ids, [kept], 'only the message not deleted is back');
  const keyIds = (await rawAll<{ msg_id: string }>(join(dataDir, 'vault', 'keys.db'), 'SELECT msg_id FROM message_keys')).map((x) => x.msg_id);
  t.same(keyIds, [kept], 'the key of the message sent after the backup is destroyed with its row');
  t.same(scanTree(dataDir, [doomed, inGroup, after]), [], 'no trace of the deleted or lost message ids in any file');

  const check = await runOps(['check', '--data', dataDir, '--json']);
  t.equal(check.code, 0, check.stdout);

  const app = await reopen(dataDir, { keyFilePath: L.keyFile }, h.app.caPem);
  t.teardown(() => app.close());
  const A2 = await app.as(alice);
  const got = await A2(`/v1/messages/${kept}`);
  t.equal(got.status, 200);
  t.equal(Buffer.from(got.body.body, 'base64').toString(), 'kept: the minutes of Tuesday');
  t.equal((await A2(`/v1/messages/${doomed}`)).status, 404, 'deleted after the backup: not readable');
  t.equal((await A2(`/v1/messages/${after}`)).status, 404, 'sent after the backup: lost with it');
  t.equal((await A2(`/v1/messages/${inGroup}`)).status, 404, 'group destroyed after the backup: not readable');
  t.equal((await A2('/v1/groups/ops-team')).status, 404, 'the destroyed group is not back');
  // The restore itself is on the audit trail.
  const last = await app.appliance.auditLog.entries(0, (await app.appliance.auditLog.root()).size);
  const restored = last.find((e) => e.type === 'vault.restored');
  t.ok(restored, 'vault.restored is logged');
  // With the head of the trail it replaced: an auditor's checkpoint of that trail is explained.
  t.match(restored?.data, { replacedAuditSize: replacedHead!.size, replacedAuditRoot: Buffer.from(replacedHead!.root).toString('base64') });
  t.ok(replacedHead!.size > (restored?.seq ?? Infinity), 'control: the replaced trail was longer than the backup’s');
});

function rawRun(path: string, sql: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path, (err) => {
      if (err) return reject(err);
      db.run(sql, (e) => db.close(() => (e ? reject(e) : resolve())));
    });
  });
}

t.test('when a deletion committed its rows but not yet its key before the restore then the backup’s copy does not come back', async (t) => {
  // The key step of a deletion can fail after its rows committed (a full disk; late destruction
  // retries it, or the next start). A restore run meanwhile counted that key as live, kept the
  // backup's copy of the row, and the deleted message was readable again.
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const conv = (await h.as(alice)('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  const kept = await L.send(alice, conv, 'kept');
  const doomed = await L.send(alice, conv, 'doomed: deleted, its key not yet destroyed');
  const out = join(tmpDir(t, 'sigil-bk-late-'), 'sigil.sbk');
  t.equal((await runOps(['backup', '--data', dataDir, '--out', out])).code, 0);
  const keysDb = join(dataDir, 'vault', 'keys.db');
  const [key] = await rawAll<{ conv_id: string; ord: number; w: string }>(keysDb, `SELECT conv_id, ord, hex(wrapped) AS w FROM message_keys WHERE msg_id = '${doomed}'`);
  t.ok(key, 'control: the key existed');
  t.equal((await L.del(alice, `/v1/messages/${doomed}`, `message:${doomed}`)).status, 200);
  await L.stopKeepingData();
  // The deletion's key step, as if it had not committed yet: the key is back in keys.db.
  await rawRun(keysDb, `INSERT INTO message_keys (conv_id, ord, msg_id, wrapped) VALUES ('${key!.conv_id}', ${key!.ord}, '${doomed}', x'${key!.w}')`);

  const r = await runOps(['restore', '--data', dataDir, '--in', out, '--yes', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.json().swept, { messages: 1 }, 'the backup’s copy of the deleted message is swept');
  const vaultDb = join(dataDir, 'vault', 'vault.db');
  t.same((await rawAll<{ id: string }>(vaultDb, 'SELECT id FROM msg_messages')).map((x) => x.id), [kept], 'only the kept message is back');
  t.same((await rawAll<{ msg_id: string }>(keysDb, 'SELECT msg_id FROM message_keys')).map((x) => x.msg_id), [kept], 'and the pending key is destroyed');
  const app = await reopen(dataDir, { keyFilePath: L.keyFile }, h.app.caPem);
  t.teardown(() => app.close());
  t.equal((await (await app.as(alice))(`/v1/messages/${doomed}`)).status, 404, 'the deleted message is not readable');
});

t.test('when a backup is damaged, foreign, or its target exists then backup and restore refuse with named codes', async (t) => {
  const L = await live(t);
  const { dataDir } = L;
  const dir = tmpDir(t, 'sigil-bk-');
  const out = join(dir, 'a.sbk');
  t.equal((await runOps(['backup', '--data', dataDir, '--out', out])).code, 0);
  const again = await runOps(['backup', '--data', dataDir, '--out', out]);
  t.equal(again.code, 2);
  t.equal(again.error?.code, 'BACKUP_EXISTS');

  const wrongKey = join(dir, 'wrong.key');
  writeFileSync(wrongKey, `${Buffer.alloc(32, 7).toString('base64')}\n`, { mode: 0o600 });
  const wk = await runOps(['backup', '--data', dataDir, '--out', join(dir, 'b.sbk'), '--master-key-file', wrongKey]);
  t.equal(wk.code, 1);
  t.equal(wk.error?.code, 'MASTER_KEY_WRONG');
  t.notOk(existsSync(join(dir, 'b.sbk')));

  const missing = await runOps(['backup', '--data', join(dir, 'nowhere'), '--out', join(dir, 'c.sbk')]);
  t.equal(missing.code, 2);
  t.equal(missing.error?.code, 'APPLIANCE_NOT_INITIALISED');
  await L.stopKeepingData();

  const good = readFileSync(out);
  const variant = (name: string, bytes: Buffer): string => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };
  const restore = (p: string) => runOps(['restore', '--data', dataDir, '--in', p, '--yes']);

  const flipped = Buffer.from(good);
  flipped[flipped.length - 100] ^= 0x01;
  t.equal((await restore(variant('flip.sbk', flipped))).error?.code, 'BACKUP_CORRUPT', 'a flipped byte in a frame');
  t.equal((await restore(variant('cut.sbk', good.subarray(0, good.length - 1000)))).error?.code, 'BACKUP_CORRUPT', 'cut inside a frame');
  // Cut exactly at a frame boundary: the end marker is missing.
  const hl = good.readUInt32BE(8);
  const frame0 = good.readUInt32BE(12 + hl);
  const boundary = 12 + hl + 4 + frame0;
  t.equal((await restore(variant('cut0.sbk', good.subarray(0, boundary)))).error?.code, 'BACKUP_CORRUPT', 'cut at a frame boundary');
  const header = Buffer.from(good);
  const at = header.indexOf('"createdAt":"') + 13;
  header[at + 3] = header[at + 3] === 0x39 ? 0x38 : header[at + 3]! + 1; // another year, still valid JSON
  t.equal((await restore(variant('hdr.sbk', header))).error?.code, 'BACKUP_CORRUPT', 'an edited header');
  const notOurs = await restore(variant('junk.sbk', Buffer.from('PK\u0003\u0004 not a backup at all')));
  t.equal(notOurs.error?.code, 'BACKUP_FORMAT_INVALID');
  t.equal(notOurs.code, 1);
  t.same(readdirSync(join(dataDir, 'vault')).filter((f) => f.startsWith('.restore-')), [], 'failed restores leave no working copy');

  // Well sealed under this appliance's master key, but what it holds is not a Sigil vault.
  const fake = join(dir, 'fake');
  mkdirSync(join(fake, 'vault'), { recursive: true, mode: 0o700 });
  copyFileSync(join(dataDir, 'appliance.json'), join(fake, 'appliance.json'));
  copyFileSync(join(dataDir, 'vault', 'vault-key.json'), join(fake, 'vault', 'vault-key.json'));
  await new Promise<void>((res, rej) => {
    const db = new sqlite3.Database(join(fake, 'vault', 'vault.db'), (e) => {
      if (e) return rej(e);
      db.exec('CREATE TABLE notes (x TEXT); INSERT INTO notes VALUES (1)', (e2) => db.close(() => (e2 ? rej(e2) : res())));
    });
  });
  const foreign = join(dir, 'foreign.sbk');
  t.equal((await runOps(['backup', '--data', fake, '--out', foreign, '--master-key-file', L.keyFile])).code, 0);
  const notVault = await restore(foreign);
  t.equal(notVault.error?.code, 'BACKUP_CONTENT_INVALID');
  t.match(notVault.error?.message, /no table keyring/);

  const ok = await restore(out);
  t.equal(ok.code, 0, ok.stderr);
  t.notMatch(ok.stderr, /"(passphrase|key)"/, 'log lines carry no secrets');
});

t.test('when messages are written while the backup runs then the backup is a consistent snapshot that restores cleanly', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const conv = (await h.as(alice)('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  for (let i = 0; i < 5; i++) await L.send(alice, conv, `before ${i}`);
  const out = join(tmpDir(t, 'sigil-bk-'), 'busy.sbk');
  let writing = true;
  const sent: string[] = [];
  const writer = (async () => {
    while (writing) sent.push(await L.send(i2(sent.length) ? alice : bob, conv, `during ${sent.length}`));
  })();
  const bk = await runOps(['backup', '--data', dataDir, '--out', out, '--json']);
  writing = false;
  await writer;
  t.equal(bk.code, 0, bk.stderr);
  const n = bk.json().counts.messages;
  t.ok(n >= 5 && n <= 5 + sent.length, `snapshot holds ${n} messages (5 before, ${sent.length} during)`);
  await L.stopKeepingData();
  const r = await runOps(['restore', '--data', dataDir, '--in', out, '--yes', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json().swept.messages, 0, 'nothing in the snapshot lacks its key');
  t.equal(r.json().swept.orphanMessageKeys, 5 + sent.length - n, 'exactly the messages after the snapshot lost their keys');
  const chk = await runOps(['check', '--data', dataDir, '--json']);
  t.equal(chk.code, 0, chk.stdout);
  t.match(chk.json().items.find((i: { name: string }) => i.name === 'audit-log'), { status: 'pass', checked: bk.json().audit.size + 1 });
});

function i2(n: number): boolean {
  return n % 2 === 0;
}
