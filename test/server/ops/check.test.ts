/**
 * `sigil-server check` on a real appliance's files: a healthy vault passes; each kind of damage,
 * made with raw sqlite3 (or on the file itself), is reported as the named failing item.
 */
import { copyFileSync, renameSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { webcrypto } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import sqlite3 from 'sqlite3';
import { tmpDir } from '../../helpers/tmp.js';
import { live, runOps } from './fixture.js';
import { leafHash, memoryNodeSource, rootHash } from '../../../server/audit/index.js';
import { auditTrailOf } from '../../../server/routes/audit.js';

function raw<T = unknown>(path: string, sql: string, params: unknown[] = []): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path, (err) => {
      if (err) return reject(err);
      db.all(sql, params, (e, rows) => db.close(() => (e ? reject(e) : resolve(rows as T[]))));
    });
  });
}

const flip = (b: Uint8Array, at = 20): Buffer => {
  const c = Buffer.from(b);
  c[at] = c[at]! ^ 0x01;
  return c;
};

t.test('when the vault is damaged then check names the failing item and exits 1', async (t) => {
  const L = await live(t);
  const { h, alice, bob, dataDir } = L;
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body.id as string;
  for (let i = 0; i < 3; i++) await L.send(alice, conv, `message ${i}`);
  const content = Buffer.concat([0, 1, 2, 3, 4].map(() => Buffer.from(webcrypto.getRandomValues(new Uint8Array(60_000)))));
  const up = await A(`/v1/files?conversation=${conv}`, { rawBody: content, headers: { 'content-type': 'application/octet-stream' } });
  t.equal(up.status, 201, JSON.stringify(up.body));
  const newest = await L.send(alice, conv, 'with a file', {
    attachments: [{ id: up.body.fileId, name: 'a.bin', sha384: up.body.sha384, size: up.body.size }],
  });
  // A signed checkpoint of this history, as the running server keeps them (this harness mounts no
  // audit routes, so it is signed through the same trail the server builds).
  const trail = auditTrailOf(h.app.appliance, () => new Date());
  await trail.checkpointer.ready();
  t.ok((await trail.checkpointer.current()).size > 0, 'a checkpoint is signed');
  await L.stopKeepingData();

  const vaultDb = join(dataDir, 'vault', 'vault.db');
  const keysDb = join(dataDir, 'vault', 'keys.db');
  const check = async (env: NodeJS.ProcessEnv = {}, extra: string[] = []) => runOps(['check', '--data', dataDir, '--json', ...extra], env);
  const itemOf = (r: Awaited<ReturnType<typeof check>>, name: string) => r.json().items.find((i: { name: string }) => i.name === name);

  const healthy = await check();
  t.equal(healthy.code, 0, healthy.stdout);
  for (const i of healthy.json().items) t.equal(i.status, 'pass', `${i.name}: ${i.detail}`);
  t.equal(itemOf(healthy, 'messages').checked, 4, 'every message sampled (fewer than the sample size)');
  t.equal(itemOf(healthy, 'files').checked, 1);
  const text = await runOps(['check', '--data', dataDir]);
  t.match(text.stdout, /PASS\s+audit-log/);
  t.match(text.stdout, /check: ok/);

  // A conversation key with one flipped bit: it and every key and message under it fail.
  const [ck] = await raw<{ conv_id: string; wrapped: Uint8Array }>(keysDb, 'SELECT conv_id, wrapped FROM conversation_keys');
  await raw(keysDb, 'UPDATE conversation_keys SET wrapped = ? WHERE conv_id = ?', [flip(ck!.wrapped), ck!.conv_id]);
  const badCk = await check();
  t.equal(badCk.code, 1);
  t.equal(badCk.error?.code, 'CHECK_FAILED');
  t.match(itemOf(badCk, 'conversation-keys'), { status: 'fail', failures: [{ id: `conversation:${conv}`, reason: 'VAULT_DECRYPT_FAILED' }] });
  t.match(itemOf(badCk, 'message-keys'), { status: 'fail' });
  t.match(itemOf(badCk, 'messages'), { status: 'fail' });
  const badText = await runOps(['check', '--data', dataDir]);
  t.match(badText.stdout, /FAIL\s+conversation-keys/);
  t.match(badText.stdout, /check: FAILED/);
  await raw(keysDb, 'UPDATE conversation_keys SET wrapped = ? WHERE conv_id = ?', [ck!.wrapped, ck!.conv_id]);

  // An edited audit entry.
  const [entry] = await raw<{ seq: number; data: string }>(vaultDb, 'SELECT seq, data FROM audit_log WHERE seq = 1');
  await raw(vaultDb, 'UPDATE audit_log SET data = ? WHERE seq = 1', [entry!.data.replace('"v":1', '"v":2')]);
  const badAudit = await check();
  t.equal(badAudit.code, 1);
  t.match(itemOf(badAudit, 'audit-log'), { status: 'fail', failures: [{ id: 'entry:1', reason: 'leaf-hash-mismatch' }] });
  await raw(vaultDb, 'UPDATE audit_log SET data = ? WHERE seq = 1', [entry!.data]);

  // A history rewritten consistently (an entry's actor, its leaf hash, every stored node and the
  // head, as a writer with vault.db alone can): every leaf and node verifies again, and only the
  // checkpoint the appliance signed before the rewrite shows it.
  const log = await raw<{ seq: number; data: string; leaf_hash: Uint8Array }>(vaultDb, 'SELECT seq, data, leaf_hash FROM audit_log ORDER BY seq');
  const victim = log.find((r) => /"actor":"[a-z-]+"/.test(r.data))!;
  const forged = victim.data.replace(/"actor":"[a-z-]+"/, '"actor":"forger"');
  const rewrite = async (data: string, hashOf: (seq: number, h: Uint8Array) => Uint8Array): Promise<void> => {
    await raw(vaultDb, 'UPDATE audit_log SET data = ?, leaf_hash = ? WHERE seq = ?', [data, hashOf(victim.seq, victim.leaf_hash), victim.seq]);
    const leaves = log.map((r) => hashOf(r.seq, new Uint8Array(r.leaf_hash)));
    const src = memoryNodeSource(leaves);
    for (const n of await raw<{ level: number; idx: number }>(vaultDb, 'SELECT level, idx FROM audit_nodes')) {
      await raw(vaultDb, 'UPDATE audit_nodes SET hash = ? WHERE level = ? AND idx = ?', [await src(n.level, n.idx), n.level, n.idx]);
    }
    await raw(vaultDb, 'UPDATE audit_head SET root = ? WHERE id = 1', [rootHash(leaves)]);
  };
  const forgedHash = leafHash(new TextEncoder().encode(forged));
  await rewrite(forged, (seq, h) => (seq === victim.seq ? forgedHash : h));
  const rewritten = await check();
  t.equal(rewritten.code, 1, 'a consistent rewrite fails check');
  t.match(itemOf(rewritten, 'audit-log'), { status: 'fail', failures: [{ reason: 'checkpoint-mismatch' }] });
  await rewrite(victim.data, (_seq, h) => h);
  t.match(itemOf(await check(), 'audit-log'), { status: 'pass', detail: /signed checkpoints match the tree/ }, 'and passes once undone');
  // An index column alone (what `sigil audit events --type` searches), the signed data untouched.
  const [typed] = await raw<{ type: string }>(vaultDb, 'SELECT type FROM audit_log WHERE seq = ?', [victim.seq]);
  await raw(vaultDb, "UPDATE audit_log SET type = 'hidden' WHERE seq = ?", [victim.seq]);
  t.match(itemOf(await check(), 'audit-log'), { status: 'fail', failures: [{ id: `entry:${victim.seq}`, reason: 'index-mismatch' }] }, 'an edited index column fails check');
  await raw(vaultDb, 'UPDATE audit_log SET type = ? WHERE seq = ?', [typed!.type, victim.seq]);

  // A keyring row (the issuing CA's key).
  const [ring] = await raw<{ sealed: Uint8Array }>(vaultDb, "SELECT sealed FROM keyring WHERE name = 'ca.issuing.pkcs8'");
  await raw(vaultDb, "UPDATE keyring SET sealed = ? WHERE name = 'ca.issuing.pkcs8'", [flip(ring!.sealed, 40)]);
  const badRing = await check();
  t.match(itemOf(badRing, 'keyring'), { status: 'fail', failures: [{ id: 'secret:ca.issuing.pkcs8', reason: 'VAULT_DECRYPT_FAILED' }] });
  await raw(vaultDb, "UPDATE keyring SET sealed = ? WHERE name = 'ca.issuing.pkcs8'", [ring!.sealed]);

  // A file chunk: the newest file is always in the sample.
  const [chunk] = await raw<{ data: Uint8Array }>(vaultDb, 'SELECT data FROM msg_file_chunks WHERE file = ? AND idx = 0', [up.body.fileId]);
  await raw(vaultDb, 'UPDATE msg_file_chunks SET data = ? WHERE file = ? AND idx = 0', [flip(chunk!.data, 100), up.body.fileId]);
  t.match(itemOf(await check(), 'files'), { status: 'fail', failures: [{ id: `file:${up.body.fileId}`, reason: 'VAULT_DECRYPT_FAILED' }] });
  await raw(vaultDb, 'UPDATE msg_file_chunks SET data = ? WHERE file = ? AND idx = 0', [chunk!.data, up.body.fileId]);

  // A message whose key is gone: unreadable row (fail); a key whose row is gone: warning only.
  const [dek] = await raw<{ msg_id: string; conv_id: string; wrapped: Uint8Array }>(keysDb, 'SELECT * FROM message_keys WHERE msg_id = ?', [newest]);
  await raw(keysDb, 'DELETE FROM message_keys WHERE msg_id = ?', [newest]);
  const rowNoKey = await check();
  t.match(itemOf(rowNoKey, 'orphans'), { status: 'fail', failures: [{ id: `row:${newest}`, reason: 'row-without-key (unreadable)' }] });
  t.match(itemOf(rowNoKey, 'messages'), { status: 'fail', failures: [{ id: `message:${newest}`, reason: 'VAULT_KEY_NOT_FOUND' }] });
  await raw(keysDb, 'INSERT INTO message_keys (msg_id, conv_id, wrapped) VALUES (?, ?, ?)', [dek!.msg_id, dek!.conv_id, dek!.wrapped]);
  const [first] = await raw<{ id: string }>(vaultDb, 'SELECT id FROM msg_messages ORDER BY seq LIMIT 1');
  const saved = await raw<Record<string, unknown>>(vaultDb, 'SELECT * FROM msg_messages WHERE id = ?', [first!.id]);
  await raw(vaultDb, 'DELETE FROM msg_messages WHERE id = ?', [first!.id]);
  const keyNoRow = await check();
  t.equal(keyNoRow.code, 0, 'a key without its row is a warning');
  t.match(itemOf(keyNoRow, 'orphans'), { status: 'warn', failures: [{ id: `message-key:${first!.id}`, reason: 'key-without-row' }] });
  const cols = Object.keys(saved[0]!);
  await raw(vaultDb, `INSERT INTO msg_messages (${cols.join(',')}) VALUES (${cols.map(() => '?').join(',')})`, cols.map((c) => saved[0]![c]));
  t.equal((await check()).code, 0, 'repaired');

  // Master key: wrong key file, and a rotation left half done.
  const wrong = join(tmpDir(t, 'sigil-chk-'), 'wrong.key');
  writeFileSync(wrong, `${Buffer.alloc(32, 9).toString('base64')}\n`, { mode: 0o600 });
  const badMk = await check({}, ['--master-key-file', wrong]);
  t.equal(badMk.code, 1);
  t.match(itemOf(badMk, 'master-key'), { status: 'fail', detail: /^MASTER_KEY_WRONG/ });
  t.match(itemOf(badMk, 'keyring'), { status: 'skipped' });
  t.match(itemOf(badMk, 'audit-log'), { status: 'pass' }, 'what needs no key is still checked');
  const next = join(dataDir, 'vault', 'vault-key.next.json');
  copyFileSync(join(dataDir, 'vault', 'vault-key.json'), next);
  t.match(itemOf(await check(), 'master-key'), { status: 'fail', detail: /^rotation-pending/ });
  rmSync(next);

  // keys.db missing, then vault.db pages overwritten.
  renameSync(keysDb, `${keysDb}.away`);
  const noKeys = await check();
  t.match(itemOf(noKeys, 'keys-db'), { status: 'fail', detail: /^missing/ });
  renameSync(`${keysDb}.away`, keysDb);
  const size = statSync(vaultDb).size;
  const fd = openSync(vaultDb, 'r+');
  writeSync(fd, Buffer.alloc(4096 * 3, 0xa5), 0, 4096 * 3, Math.floor(size / 2 / 4096) * 4096);
  closeSync(fd);
  const broken = await check();
  t.equal(broken.code, 1);
  t.match(itemOf(broken, 'vault-db'), { status: 'fail' });
});

t.test('when check runs on no appliance then it is a usage error', async (t) => {
  const r = await runOps(['check', '--data', join(tmpDir(t, 'sigil-chk-'), 'none')]);
  t.equal(r.code, 2);
  t.equal(r.error?.code, 'APPLIANCE_NOT_INITIALISED');
  const bad = await runOps(['check', '--data', '.', '--sample', 'many']);
  t.equal(bad.code, 2, 'a bad --sample is refused by the flag parser');
});
