/**
 * rotate-master-key: the defects a review of the rotation reproduced (/tmp/review-rotate), one
 * test each. Each failed before its fix.
 *
 * Faults are injected in-process: node:fs functions are wrapped (and `syncBuiltinESMExports`
 * makes the server's named imports see the wrappers) to record fsyncs or to fail one call, and a
 * vault method is made to throw once to stop a rotation where a crash would. A power cut itself
 * cannot be made here; what is checked is the order of the syscalls that makes one harmless.
 */
import fs, { existsSync, readdirSync, readFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { dirname, join } from 'node:path';
import t, { type Test } from 'tap';
import { AuditLog } from '../../../server/audit/index.js';
import { Db, Keyring, Keystore, MasterKey, unlockVault, VAULT_KEY_NEXT_FILE } from '../../../server/vault/index.js';
import { rawSql } from '../../helpers/raw-sql.js';
import { tmpDir } from '../../helpers/tmp.js';
import { live, reopen, runOps, type Live } from './fixture.js';

type AnyFn = (...args: any[]) => any;

/** Replaces `obj[key]` until the test ends (node:fs: also for the ES-module named imports). */
function wrap<T extends object>(t: Test, obj: T, key: keyof T & string, make: (orig: AnyFn) => AnyFn): void {
  const target = obj as unknown as Record<string, AnyFn>;
  const orig = target[key]!;
  target[key] = make(orig);
  if (obj === (fs as object)) syncBuiltinESMExports();
  t.teardown(() => {
    target[key] = orig;
    if (obj === (fs as object)) syncBuiltinESMExports();
  });
}

/** Makes `obj[key]` throw once when `when(args)` holds; later calls go through. */
function failOnce<T extends object>(t: Test, obj: T, key: keyof T & string, when: (...args: any[]) => boolean, code = 'EIO'): void {
  let failed = false;
  wrap(t, obj, key, (orig) =>
    function (this: unknown, ...args: any[]) {
      if (!failed && when(...args)) {
        failed = true;
        throw Object.assign(new Error(`${code}: injected by the test (${key})`), { code });
      }
      return orig.apply(this, args);
    },
  );
}

/** A stopped appliance with one direct conversation (so keys.db holds a conversation key). */
async function stoppedWithConversation(t: Test): Promise<Live & { conv: string }> {
  const L = await live(t);
  const conv = (await L.h.as(L.alice)('/v1/conversations/direct', { body: { peer: L.bob.login } })).body.id as string;
  await L.send(L.alice, conv, 'before the rotation');
  await L.stopKeepingData();
  return { ...L, conv };
}

/** The `vault.master-key-rotated` entries of the appliance's audit log. */
async function rotationEntries(dataDir: string): Promise<{ data?: Record<string, unknown>; leafData: string }[]> {
  const db = await Db.open(join(dataDir, 'vault', 'vault.db'));
  try {
    return await (await AuditLog.open(db)).query({ type: 'vault.master-key-rotated' });
  } finally {
    await db.close();
  }
}

// Review defect 1 (HIGH): the new key file and vault-key.next.json were never fsynced before keys
// were re-wrapped under them; a power cut soon after a "successful" rotation lost them.
t.test('when the master key is rotated onto a key file then the key file, vault-key.next.json and their directories are fsynced before the first key is re-wrapped', async (t) => {
  const L = await stoppedWithConversation(t);
  const keyDir = tmpDir(t, 'sigil-newkey-');
  const newKey = join(keyDir, 'new.key');
  const vaultDir = join(L.dataDir, 'vault');
  const next = join(vaultDir, VAULT_KEY_NEXT_FILE);

  const events: string[] = [];
  const fdPath = new Map<number, string>();
  wrap(t, fs, 'openSync', (orig) => (...a: any[]) => {
    const fd = orig(...a) as number;
    fdPath.set(fd, String(a[0]));
    return fd;
  });
  wrap(t, fs, 'fsyncSync', (orig) => (fd: number) => {
    orig(fd);
    events.push(`fsync ${fdPath.get(fd)}`);
  });
  for (const op of ['renameSync', 'linkSync'] as const) {
    wrap(t, fs, op, (orig) => (from: string, to: string) => {
      orig(from, to);
      events.push(`${op} ${from} -> ${to}`);
    });
  }
  let rewraps = 0;
  wrap(t, MasterKey.prototype, 'rewrapTo', (orig) =>
    function (this: unknown, ...a: any[]) {
      if (rewraps++ === 0) events.push('first re-wrap');
      return orig.apply(this, a);
    },
  );

  const r = await runOps(['rotate-master-key', '--data', L.dataDir, '--new-master-key-file', newKey]);
  t.equal(r.code, 0, r.stderr);
  const at = (e: string, from = 0): number => events.indexOf(e, from);
  const rewrap = at('first re-wrap');
  const nextRenamed = at(`renameSync ${next}.tmp -> ${next}`);
  t.ok(rewrap > 0 && nextRenamed > 0, `the rotation renamed vault-key.next.json in and re-wrapped: ${events.join(' | ')}`);

  // The key file: its bytes, then its directory, before vault-key.next.json names the new key.
  const keyData = events.findIndex((e) => e === `fsync ${newKey}` || e === `fsync ${newKey}.tmp`);
  t.ok(keyData >= 0 && keyData < nextRenamed, 'the key file is fsynced before vault-key.next.json is renamed in');
  const keyDirSynced = at(`fsync ${keyDir}`, keyData);
  t.ok(keyDirSynced > keyData && keyDirSynced < nextRenamed, "the key file's directory is fsynced before vault-key.next.json is renamed in");
  // Wherever the key file got its final name, that name is durable before the first re-wrap.
  const placed = Math.max(keyData, ...events.map((e, i) => (e.endsWith(` -> ${newKey}`) ? i : -1)));
  const placedSynced = at(`fsync ${keyDir}`, placed);
  t.ok(placedSynced > placed && placedSynced < rewrap, "the key file's final name is fsynced (its directory) before the first re-wrap");

  // vault-key.next.json: its bytes before the rename, the directory after it, both before the re-wrap.
  const nextData = at(`fsync ${next}.tmp`);
  t.ok(nextData >= 0 && nextData < nextRenamed, 'vault-key.next.json is fsynced before its rename');
  const vaultDirSynced = at(`fsync ${vaultDir}`, nextRenamed);
  t.ok(vaultDirSynced > nextRenamed && vaultDirSynced < rewrap, "vault-key.next.json's directory is fsynced before the first re-wrap");

  // The final rename over vault-key.json is made durable too.
  const finalRename = at(`renameSync ${next} -> ${join(vaultDir, 'vault-key.json')}`);
  t.ok(finalRename > rewrap, 'vault-key.json is replaced after the re-wrapping');
  t.ok(at(`fsync ${vaultDir}`, finalRename) > finalRename, 'the rename over vault-key.json is followed by an fsync of its directory');
});

// Review defect 2 (MEDIUM): one unreadable conversation key made the rotation commit the keyring
// under the new key and then fail in keys.db: an appliance neither key opened, for good.
t.test('when one conversation key is unreadable then the rotation is refused naming it, nothing is changed, and the appliance still opens with the old key', async (t) => {
  const L = await stoppedWithConversation(t);
  const keysDb = join(L.dataDir, 'vault', 'keys.db');
  const [row] = await rawSql<{ h: string }>(keysDb, [`SELECT hex(wrapped) AS h FROM conversation_keys WHERE conv_id = '${L.conv}'`]);
  const hex = row!.h;
  const flipped = hex.slice(0, -2) + (hex.slice(-2) === '00' ? '01' : '00'); // one byte of the tag
  await rawSql(keysDb, [`UPDATE conversation_keys SET wrapped = x'${flipped}' WHERE conv_id = '${L.conv}'`]);
  const vaultKeyBefore = readFileSync(join(L.dataDir, 'vault', 'vault-key.json'), 'utf8');
  const newKey = join(tmpDir(t), 'new.key');

  const r = await runOps(['rotate-master-key', '--data', L.dataDir, '--new-master-key-file', newKey]);
  t.equal(r.code, 1);
  t.equal(r.error?.code, 'ROTATION_KEY_UNREADABLE');
  t.match(r.error?.message, L.conv, 'the message names the conversation');
  t.match(r.error?.message, /nothing was changed/);
  t.notOk(existsSync(join(L.dataDir, 'vault', VAULT_KEY_NEXT_FILE)), 'no rotation is pending');
  t.notOk(existsSync(newKey) || existsSync(`${newKey}.tmp`), 'no new key file was written');
  t.equal(readFileSync(join(L.dataDir, 'vault', 'vault-key.json'), 'utf8'), vaultKeyBefore);

  const app = await reopen(L.dataDir, { keyFilePath: L.keyFile }, L.h.app.caPem);
  await app.close();
  t.pass('the appliance still starts with the old key');
});

// Review defect 3 (MEDIUM): a backup made while a rotation was pending carried the old
// vault-key.json beside a keyring already under the new key: useless for disaster recovery.
t.test('when a rotation is pending then backup is refused with ROTATION_PENDING and writes nothing, and works once the rotation is finished', async (t) => {
  const L = await stoppedWithConversation(t);
  const newKey = join(tmpDir(t), 'new.key');
  // Stop a rotation after its keyring step, where a crash would: keys.db is not re-wrapped.
  failOnce(t, Keystore.prototype, 'rewrapAll', () => true);
  const v = await unlockVault({ dir: join(L.dataDir, 'vault'), keyFilePath: L.keyFile });
  await t.rejects(v.rotateMasterKey({ keyFilePath: newKey }), { code: 'EIO' });
  await v.close();
  t.ok(existsSync(join(L.dataDir, 'vault', VAULT_KEY_NEXT_FILE)), 'the rotation is pending');

  const out = join(tmpDir(t), 'half.sbk');
  const b = await runOps(['backup', '--data', L.dataDir, '--out', out]);
  t.equal(b.code, 1);
  t.equal(b.error?.code, 'ROTATION_PENDING');
  t.match(b.error?.message, /finish it with "sigil-server rotate-master-key/);
  t.same(readdirSync(dirname(out)), [], 'no backup file, no partial file');

  const done = await runOps(['rotate-master-key', '--data', L.dataDir, '--new-master-key-file', newKey]);
  t.equal(done.code, 0, done.stderr);
  const ok = await runOps(['backup', '--data', L.dataDir, '--out', out, '--master-key-file', newKey]);
  t.equal(ok.code, 0, ok.stderr);
});

// Review defect 4 (MEDIUM): a rotation left no entry in the audit trail.
t.test('when the master key is rotated then vault.master-key-rotated is appended once with the kind and counts, and a resume appends one only if it re-wraps the keyring', async (t) => {
  const L = await stoppedWithConversation(t);
  const dir = tmpDir(t);
  const k1 = join(dir, 'k1.key');
  const r1 = await runOps(['rotate-master-key', '--data', L.dataDir, '--new-master-key-file', k1, '--json']);
  t.equal(r1.code, 0, r1.stderr);
  const res = r1.json();
  let entries = await rotationEntries(L.dataDir);
  t.equal(entries.length, 1, 'one entry');
  t.same(entries[0]!.data, { kind: 'keyfile', resumed: false, keyringRows: res.keyring, conversationKeys: 1 });
  t.notOk(entries[0]!.leafData.includes(readFileSync(k1, 'utf8').trim()), 'no secret in the entry');

  // Cut after the keyring step (its entry committed with it): the resume appends nothing.
  const pass = 'the passphrase after the first rotation';
  const env = { SIGIL_NEW_MASTER_PASSPHRASE: pass };
  failOnce(t, Keystore.prototype, 'rewrapAll', () => true);
  const cut = await runOps(['rotate-master-key', '--data', L.dataDir, '--master-key-file', k1], env);
  t.equal(cut.code, 1, 'stopped after the keyring step');
  t.equal((await rotationEntries(L.dataDir)).length, 2, 'the entry came with the keyring step');
  const resumed = await runOps(['rotate-master-key', '--data', L.dataDir, '--master-key-file', k1, '--json'], env);
  t.equal(resumed.code, 0, resumed.stderr);
  t.equal(resumed.json().resumed, true);
  entries = await rotationEntries(L.dataDir);
  t.equal(entries.length, 2, 'no second entry for the same rotation');
  t.same(entries[1]!.data, { kind: 'passphrase', resumed: false, keyringRows: res.keyring, conversationKeys: 1 });
  t.notOk(entries[1]!.leafData.includes(pass), 'no passphrase in the entry');

  // Cut before the keyring step: the resume re-wraps the keyring and appends the one entry.
  const k2 = join(dir, 'k2.key');
  failOnce(t, Keyring.prototype, 'rewrapAll', () => true);
  const cut2 = await runOps(['rotate-master-key', '--data', L.dataDir, '--new-master-key-file', k2], { SIGIL_MASTER_PASSPHRASE: pass });
  t.equal(cut2.code, 1, 'stopped before the keyring step');
  t.equal((await rotationEntries(L.dataDir)).length, 2, 'nothing appended: nothing re-wrapped');
  const resumed2 = await runOps(['rotate-master-key', '--data', L.dataDir, '--new-master-key-file', k2], { SIGIL_MASTER_PASSPHRASE: pass });
  t.equal(resumed2.code, 0, resumed2.stderr);
  entries = await rotationEntries(L.dataDir);
  t.equal(entries.length, 3);
  t.same(entries[2]!.data, { kind: 'keyfile', resumed: true, keyringRows: res.keyring, conversationKeys: 1 });
  const chk = await runOps(['check', '--data', L.dataDir, '--master-key-file', k2, '--json']);
  t.equal(chk.code, 0, chk.stdout);
});

// Review defect 5a (LOW): a rotation cut before vault-key.next.json existed left the new key
// file behind, and running the same command again was refused MASTER_KEY_EXISTS.
t.test('when a rotation is cut before or just after vault-key.next.json then the same command completes it, and an existing key file is refused with the reason', async (t) => {
  const L = await stoppedWithConversation(t);
  const dir = tmpDir(t);
  const newKey = join(dir, 'new.key');
  const next = join(L.dataDir, 'vault', VAULT_KEY_NEXT_FILE);
  const argv = ['rotate-master-key', '--data', L.dataDir, '--new-master-key-file', newKey];

  // Cut before vault-key.next.json is in place.
  failOnce(t, fs, 'renameSync', (_from: string, to: string) => to === next);
  const cut = await runOps(argv);
  t.equal(cut.code, 1, 'the injected failure stops it');
  t.notOk(existsSync(next), 'no rotation pending');
  const again = await runOps([...argv, '--json']);
  t.equal(again.code, 0, again.stderr);
  t.equal(again.json().resumed, false, 'a fresh rotation: nothing had changed');
  t.notOk(existsSync(`${newKey}.tmp`) || existsSync(`${next}.tmp`), 'no temp file left');

  // Cut after vault-key.next.json, before the key file has its name: the key is found and placed.
  const k2 = join(dir, 'k2.key');
  const argv2 = ['rotate-master-key', '--data', L.dataDir, '--master-key-file', newKey, '--new-master-key-file', k2, '--json'];
  failOnce(t, fs, 'linkSync', (_from: string, to: string) => to === k2);
  const cut2 = await runOps(argv2);
  t.equal(cut2.code, 1, 'the injected failure stops it');
  t.ok(existsSync(next), 'the rotation is pending');
  const resumed = await runOps(argv2);
  t.equal(resumed.code, 0, resumed.stderr);
  t.equal(resumed.json().resumed, true);
  t.ok(existsSync(k2) && !existsSync(`${k2}.tmp`), 'the key file is in place, its temp name gone');
  const chk = await runOps(['check', '--data', L.dataDir, '--master-key-file', k2, '--json']);
  t.equal(chk.code, 0, chk.stdout);

  // A file already at the new path (here an earlier key) is never overwritten, and says why.
  const exists = await runOps(['rotate-master-key', '--data', L.dataDir, '--master-key-file', k2, '--new-master-key-file', newKey]);
  t.equal(exists.error?.code, 'MASTER_KEY_EXISTS');
  t.match(exists.error?.message, /no rotation is pending/);
  t.match(exists.error?.message, /Nothing was changed/);
  t.equal(readFileSync(newKey, 'utf8').length, 45, 'the file is untouched');
});
