/**
 * The fast path of destroying a conversation (issue 8: 100k messages in < 2 s): one DELETE per
 * table, no per-message guard rows, and keys.db deleting beside the vault transaction but
 * committing after it. These tests prove it still leaves nothing behind, with page caches small
 * enough that both databases spill uncommitted pages into their WAL mid-transaction, and that a
 * failed vault transaction destroys no key.
 */
import { join } from 'node:path';
import t from 'tap';
import { unlockVault } from '../../../server/vault/index.js';
import { scanTree } from '../../helpers/forensics.js';
import { harness, sha384b64, type Harness, type User } from './harness.js';
import { streamOf } from '../../helpers/streams.js';

const enc = new TextEncoder();
const MESSAGES = 300;

/** Sends `n` messages (the first with a file) and answers their ids. */
async function fill(h: Harness, u: User, conv: string, marker: string, n: number): Promise<string[]> {
  const content = enc.encode(`file ${marker}-FILE `.repeat(3000));
  const up = await h.messaging.upload(u.principal, conv, streamOf(content), content.length);
  const first = await h.compose(u, conv, `body ${marker}-0`, {
    attachments: [{ id: up.fileId, name: `${marker}.txt`, sha384: await sha384b64(content), size: content.length }],
  });
  const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => h.compose(u, conv, `body ${marker}-${i + 1} ${'x'.repeat(1500)}`)));
  await Promise.all([first, ...rest].map((m) => h.messaging.send(u.principal, m)));
  return [first, ...rest].map((m) => m.id);
}

/** Stored bytes of a conversation: 48-byte slices of every ciphertext, and every wrapped key. */
async function storedOf(h: Harness, conv: string): Promise<{ ciphertexts: Buffer[]; wrapped: Buffer[] }> {
  const slice = (b: Uint8Array) => Buffer.from(b).subarray(64, 112);
  const sealed = await h.vault.db.all<{ sealed: Uint8Array }>('SELECT sealed FROM msg_messages WHERE conversation = ?', [conv]);
  const chunks = await h.vault.db.all<{ data: Uint8Array }>(
    'SELECT data FROM msg_file_chunks WHERE file IN (SELECT id FROM msg_files WHERE conversation = ?)',
    [conv],
  );
  const deks = await h.vault.keys.db.all<{ wrapped: Uint8Array }>('SELECT wrapped FROM message_keys WHERE conv_id = ?', [conv]);
  const ck = await h.vault.keys.db.all<{ wrapped: Uint8Array }>('SELECT wrapped FROM conversation_keys WHERE conv_id = ?', [conv]);
  return {
    ciphertexts: [...sealed.map((r) => slice(r.sealed)), ...chunks.map((r) => slice(r.data))],
    wrapped: [...deks, ...ck].map((r) => Buffer.from(r.wrapped)),
  };
}

t.test('when a group of many messages is destroyed on the fast path then nothing of it survives, live or after close, and its neighbour does', async (t) => {
  const h = await harness(t);
  // Tiny page caches: the DELETEs spill uncommitted pages into both WALs before their commits.
  await h.vault.db.exec('PRAGMA cache_size = 16');
  await h.vault.keys.db.exec('PRAGMA cache_size = 8');
  const owner = await h.user('fp-owner');
  const g = await h.messaging.createGroup(owner.principal, { name: 'fp-big', label: 'restricted' });
  const keep = await h.messaging.createGroup(owner.principal, { name: 'fp-keep', label: 'restricted' });
  const ids = await fill(h, owner, g.id, 'ZQX-FAST', MESSAGES);
  const kept = await fill(h, owner, keep.id, 'KEEP-FAST', 3);
  await h.messaging.flush();
  const s = await storedOf(h, g.id);
  const neighbour = await storedOf(h, keep.id);
  t.equal(s.ciphertexts.length, MESSAGES + 1, 'control: every message and the file chunk');
  t.equal(s.wrapped.length, MESSAGES + 2, 'control: a DEK per message and file, and the CK');
  const found = (hits: { needleIndex: number }[]) => new Set(hits.map((x) => x.needleIndex)).size;
  t.equal(found(scanTree(h.dir, s.ciphertexts)), s.ciphertexts.length, 'control: each ciphertext is found before');
  t.equal(found(scanTree(h.dir, s.wrapped)), s.wrapped.length, 'control: each wrapped key is found before');
  const backupDir = join(h.dir, '..', 'backup');
  await h.vault.backupTo(backupDir);
  t.ok(scanTree(backupDir, s.ciphertexts).length > 0, 'control: the backup holds the ciphertexts');

  const guards = async () => (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_replay_guard'))!.n;
  const guardsBefore = await guards();
  const ts = await h.messaging.deleteGroup(owner.principal, g.name, await h.deleteRequest(owner, `conversation:${g.id}`));
  t.equal(ts.count, MESSAGES);
  t.equal(await guards(), guardsBefore, 'no guard row per message');
  t.same(scanTree(h.dir, s.ciphertexts), [], 'live: no ciphertext in any file (db, WAL, shm) once the call returned');
  t.same(scanTree(h.dir, s.wrapped), [], 'live: no wrapped key in any file once the call returned');
  t.same(
    await h.vault.keys.db.all('SELECT msg_id FROM message_keys WHERE conv_id = ?', [g.id]),
    [],
    'no DEK row under the conversation',
  );
  const entries = await h.audit.entries(0, 10_000);
  const tomb = entries.find((e) => e.type === 'deletion' && e.subject === ts.target);
  t.ok(tomb, 'the tombstone is in the audit trail');
  t.equal(tomb?.data?.count, MESSAGES);
  t.ok(typeof tomb?.data?.statementSignature === 'string', 'with the deleter signature');
  const left = await h.messaging.history(owner.principal, keep.id, {});
  t.equal(left.messages.length, 3, 'the neighbouring group still reads');
  await h.close();

  t.same(scanTree(h.dir, s.ciphertexts), [], 'after close: no ciphertext anywhere under the data dir');
  t.same(scanTree(h.dir, s.wrapped), [], 'after close: no wrapped key anywhere under the data dir');
  t.same(scanTree(h.dir, ['ZQX-FAST']), [], 'no marker anywhere');
  t.same(scanTree(backupDir, s.wrapped), [], 'no wrapped key in the earlier backup');
  t.equal(found(scanTree(h.dir, neighbour.ciphertexts)), neighbour.ciphertexts.length, "control: the neighbour's ciphertexts are all still there");
  const vault = await unlockVault({ dir: h.dir, keyFilePath: join(h.dir, '..', 'master.key') });
  try {
    t.notOk(await vault.keys.hasConversationKey(g.id), 'the conversation key is gone');
    for (const id of ids.slice(0, 20)) await t.rejects(vault.keys.messageKey(id), { code: 'VAULT_KEY_NOT_FOUND' });
    await t.resolves(vault.keys.messageKey(kept[0]!), 'a neighbouring key still unwraps');
  } finally {
    await vault.close();
  }
});

t.test('when the vault transaction of a destroy fails then no key is destroyed and the group reads as before', async (t) => {
  const h = await harness(t);
  const owner = await h.user('fr-owner');
  const g = await h.messaging.createGroup(owner.principal, { name: 'fr-group', label: 'restricted' });
  await fill(h, owner, g.id, 'FAIL-ROLLBACK', 20);
  await h.messaging.flush();
  const keysBefore = await h.vault.keys.counts();
  // The last statement of the rows' transaction fails, after keys.db has done its deletes.
  await h.vault.db.exec(`CREATE TEMP TRIGGER fr_boom BEFORE DELETE ON main.msg_conversations BEGIN SELECT RAISE(ABORT, 'fr-boom'); END`);
  await t.rejects(h.messaging.deleteGroup(owner.principal, g.name, await h.deleteRequest(owner, `conversation:${g.id}`)), {
    message: /fr-boom/,
  });
  t.same(await h.vault.keys.counts(), keysBefore, 'every key is still there');
  const page = await h.messaging.history(owner.principal, g.id, { limit: 50 });
  t.equal(page.messages.length, 20, 'and every message still decrypts');
  t.ok(page.messages.every((m) => typeof m.body === 'string' || m.body === undefined));
  await h.messaging.send(owner.principal, await h.compose(owner, g.id, 'keys.db is free again'));
  await h.messaging.flush();

  await h.vault.db.exec('DROP TRIGGER temp.fr_boom');
  const ts = await h.messaging.deleteGroup(owner.principal, g.name, await h.deleteRequest(owner, `conversation:${g.id}`));
  t.equal(ts.count, 21, 'the retry destroys it');
  t.notOk(await h.vault.keys.hasConversationKey(g.id));
  t.same(await h.vault.keys.counts(), { conversations: 0, messages: 0 });
});

t.test('when a group is read all the while it is destroyed then afterwards no reader finds it', async (t) => {
  const h = await harness(t);
  await h.vault.db.exec('PRAGMA cache_size = 16'); // a longer transaction: more reads land inside it
  const owner = await h.user('fc-owner');
  const g = await h.messaging.createGroup(owner.principal, { name: 'fc-group', label: 'restricted' });
  await fill(h, owner, g.id, 'FC', 200);
  await h.messaging.flush();
  let done = false;
  let reads = 0;
  const reader = (async () => {
    while (!done) {
      // before: 1 = an empty page: membership only, no key lookup waiting for keys.db
      await h.messaging.history(owner.principal, g.id, { before: 1, limit: 1 }).catch(() => undefined);
      reads++;
      await new Promise((r) => setImmediate(r)); // let I/O in: a cached answer settles in microtasks only
    }
  })();
  const destroying = h.messaging.deleteGroup(owner.principal, g.name, await h.deleteRequest(owner, `conversation:${g.id}`));
  await destroying.finally(() => (done = true));
  await reader;
  t.ok(reads > 0, `control: ${reads} reads ran beside the destroy`);
  await t.rejects(h.messaging.history(owner.principal, g.id, {}), { code: 'CONVERSATION_NOT_FOUND' });
  await t.rejects(h.messaging.send(owner.principal, await h.compose(owner, g.id, 'late')), { code: 'CONVERSATION_NOT_FOUND' });
});
