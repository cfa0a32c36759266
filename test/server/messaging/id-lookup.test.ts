/**
 * Messages found by id through keys.db (server/messaging/message-lookup.ts, migration
 * messaging-004): vault.db keeps no index on message ids, keys.db's key of a message names its
 * conversation and seq, hence its rowid; start reconciles the two files.
 */
import t from 'tap';
import { join } from 'node:path';
import { clusterKey } from '../../../server/messaging/cluster-key.js';
import { MESSAGING_MIGRATIONS, migrationsBefore } from '../../../server/messaging/schema.js';
import { Db } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';
import { harness } from './harness.js';
import { expectSeqGuarded } from './helpers/seq-guard.js';

t.test('when a vault is made then msg_messages has no index on id, and a lookup by id reads one row by its rowid', async (t) => {
  const h = await harness(t);
  const { a, b, conv } = await h.direct('il-alice', 'il-bob');
  const sent = await h.messaging.send(a.principal, await h.compose(a, conv.id, 'found by id'));

  const indexed = await h.vault.db.all<{ name: string; col: string }>(
    `SELECT il.name, ii.name AS col FROM pragma_index_list('msg_messages') il, pragma_index_info(il.name) ii`,
  );
  t.notOk(indexed.some((i) => i.col === 'id'), `no index on id (${indexed.map((i) => `${i.name}:${i.col}`).join(', ')})`);
  const plan = await h.vault.db.all<{ detail: string }>('EXPLAIN QUERY PLAN SELECT rid, id FROM msg_messages WHERE rid IN (?)', [1]);
  t.match(plan.map((p) => p.detail).join(' | '), /USING INTEGER PRIMARY KEY/, 'the vault read is by rowid');
  const keyPlan = await h.vault.keys.db.all<{ detail: string }>('EXPLAIN QUERY PLAN SELECT msg_id, conv_id, ord FROM message_keys WHERE msg_id IN (?)', ['x']);
  t.match(keyPlan.map((p) => p.detail).join(' | '), /SEARCH message_keys USING INDEX/, "keys.db's read goes through its id index");

  const got = await h.messaging.message(b.principal, sent.id);
  t.equal(got.id, sent.id);
  t.equal(got.seq, sent.seq);
  t.same((await h.vault.keys.locate([sent.id])).get(sent.id), { msgId: sent.id, convId: conv.id, ord: sent.seq }, 'the key names the conversation and seq');
  t.ok(await h.messaging.receipts(a.principal, sent.id), 'receipts find it too');
  await t.rejects(h.messaging.message(b.principal, 'AAAAAAAAAAAAAAAAAAAAAA'), { code: 'MESSAGE_NOT_FOUND' });
});

t.test('when a message is sent twice then the key store refuses the second, and one row carries the id', async (t) => {
  const h = await harness(t);
  const { a, conv } = await h.direct('il-carol', 'il-dave');
  const m = await h.compose(a, conv.id, 'once');
  await h.messaging.send(a.principal, m);
  await t.rejects(h.messaging.send(a.principal, m), { code: 'MESSAGE_REPLAY' });
  // Both at once, in one batch of the writer.
  const twin = await h.compose(a, conv.id, 'twice at once');
  const both = await Promise.allSettled([h.messaging.send(a.principal, twin), h.messaging.send(a.principal, twin)]);
  t.equal(both.filter((r) => r.status === 'fulfilled').length, 1, 'one of two identical sends is accepted');
  for (const id of [m.id, twin.id]) {
    t.equal((await h.vault.db.get<{ n: number }>('SELECT count(*) AS n FROM msg_messages WHERE id = ?', [id]))?.n, 1, `one row of ${id}`);
  }
});

t.test('when keys were stored before keys.db kept seqs then start gives them their seq, and lookups find their rows again', async (t) => {
  const h = await harness(t);
  const { a, b, conv } = await h.direct('il-erin', 'il-frank');
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push(await h.messaging.send(a.principal, await h.compose(a, conv.id, `old ${i}`)));
  // As keystore-2 moved keys of an older keys.db: order 0.
  await h.messaging.close();
  await h.vault.keys.db.run("UPDATE message_keys SET ord = 0 WHERE msg_id NOT LIKE 'file:%'");
  t.equal((await h.vault.keys.locate(sent.map((s) => s.id))).get(sent[0]!.id)?.ord, 0);

  const logged: { event: string; fields: Record<string, unknown> }[] = [];
  const again = await h.restart({ log: (event, fields) => logged.push({ event, fields }) });
  t.teardown(() => again.close());
  t.same(logged, [{ event: 'messaging.keys-reconciled', fields: { placed: 5, orphans: 0 } }], 'start says what it did, and no migration ran');
  const places = await h.vault.keys.locate(sent.map((s) => s.id));
  for (const s of sent) {
    t.equal(places.get(s.id)?.ord, s.seq, `key of seq ${s.seq} placed`);
    t.equal((await again.message(b.principal, s.id)).id, s.id, 'found by id');
  }
  t.equal((await h.vault.keys.counts()).messages, 5, 'no key lost');
});

t.test('when keys.db holds keys without rows, or two keys at one place, then start keeps only the row\'s own', async (t) => {
  const h = await harness(t);
  const { a, b, conv } = await h.direct('il-gina', 'il-hank');
  const kept = await h.messaging.send(a.principal, await h.compose(a, conv.id, 'kept'));
  await h.messaging.close();
  const wrapped = (await h.vault.keys.db.get<{ wrapped: Uint8Array }>('SELECT wrapped FROM message_keys WHERE msg_id = ?', [kept.id]))!.wrapped;
  // A refused batch's key that outlived it, at the seq given again to `kept`; one at a seq no row has;
  // one of an unplaced message that does not exist; a file key without its file.
  await h.vault.keys.storeWrappedKeys([
    { convId: conv.id, msgId: 'stray-same-place', wrapped, order: kept.seq },
    { convId: conv.id, msgId: 'stray-no-row', wrapped, order: kept.seq + 100 },
    { convId: conv.id, msgId: 'stray-unplaced', wrapped, order: 0 },
    { convId: conv.id, msgId: 'file:stray', wrapped, order: 0 },
  ]);
  t.equal((await h.vault.keys.counts()).messages, 5);

  const again = await h.restart();
  t.teardown(() => again.close());
  const left = await h.vault.keys.db.all<{ msg_id: string }>('SELECT msg_id FROM message_keys');
  t.same(left.map((r) => r.msg_id), [kept.id], 'only the key of the row stays');
  t.equal((await again.message(b.principal, kept.id)).id, kept.id);
});

t.test('when the start reads the rows for the reconciliation then it reads the conversation index, not the table', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  await db.migrate(MESSAGING_MIGRATIONS);
  const plan = await db.all<{ detail: string }>('EXPLAIN QUERY PLAN SELECT conversation, seq FROM msg_messages INDEXED BY msg_messages_conv');
  t.match(plan.map((p) => p.detail).join(' | '), /SCAN msg_messages USING COVERING INDEX msg_messages_conv/);
});

t.test('when a clustered vault of before messaging-004 is migrated then every row stays and the id index is gone', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  const upTo3 = migrationsBefore('messaging-004');
  t.equal(upTo3.length, 3);
  await db.migrate(upTo3);
  const at = '2026-11-29T00:00:00.000Z';
  await db.run(`INSERT INTO msg_conversations (id, kind, name, label, created_by, created_at) VALUES ('cAAA', 'group', 'g', 'secret', 'bob', ?)`, [at]);
  for (let seq = 1; seq <= 6; seq++) {
    await db.run(
      `INSERT INTO msg_messages (rid, seq, id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed)
       VALUES (?, ?, ?, 'cAAA', 'bob', 'secret', 3, 0, ?, ?, ?)`,
      [clusterKey('cAAA', seq), seq, `m${seq}`, at, at, Buffer.from(`sealed-${seq}`)],
    );
  }
  const before = await db.all<Record<string, unknown>>('SELECT * FROM msg_messages ORDER BY rid');
  t.ok((await db.all('SELECT 1 FROM pragma_index_list(\'msg_messages\') WHERE "unique" = 1 AND origin = \'u\'')).length >= 2, 'id and seq were unique');

  await db.migrate(MESSAGING_MIGRATIONS);
  t.same(await db.all('SELECT * FROM msg_messages ORDER BY rid'), before, 'every row, as it was');
  const cols = await db.all<{ col: string }>(`SELECT ii.name AS col FROM pragma_index_list('msg_messages') il, pragma_index_info(il.name) ii`);
  t.notOk(cols.some((c) => c.col === 'id'), 'no index on id');
  await expectSeqGuarded(t, db, 'cAAA', 'cAAA', 7, at);
});
