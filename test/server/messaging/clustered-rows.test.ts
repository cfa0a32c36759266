/**
 * Message rows clustered by conversation (server/messaging/cluster-key.ts, migration
 * messaging-003): the rowid is the conversation's bucket × 2^33 + seq, seq is the writer's count,
 * and the vault's high-water mark keeps a seq from ever being given twice.
 */
import t from 'tap';
import { join } from 'node:path';
import { clusterKey, clusterKeySql, conversationBucket, SEQ_LIMIT } from '../../../server/messaging/cluster-key.js';
import { MESSAGING_MIGRATIONS, migrationsBefore } from '../../../server/messaging/schema.js';
import { newId } from '../../../server/messaging/context.js';
import { Db } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';
import { harness } from './harness.js';
import { expectSeqGuarded } from './helpers/seq-guard.js';

t.test('when a bucket is computed in SQL and in JavaScript then both agree, for odd ids too', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'x.db'));
  t.teardown(() => db.close());
  const ids = ['', 'a', 'ab', 'abc', 'abcd', 'abcde', 'ÿé€😀x', '😀😀😀😀😀', ...Array.from({ length: 200 }, () => newId((n) => crypto.getRandomValues(new Uint8Array(n))))];
  for (const id of ids) {
    const row = await db.get<{ k: number }>(`SELECT ${clusterKeySql('?', '?')} AS k`, [id, id, id, id, 7]);
    t.equal(row?.k, clusterKey(id, 7), `id ${JSON.stringify(id)}`);
  }
  const buckets = new Set(ids.slice(8).map(conversationBucket));
  t.ok(buckets.size >= 195, `random ids spread over buckets (${buckets.size} of 200 distinct)`);
  t.ok(Number.isSafeInteger(clusterKey('😀😀😀😀', SEQ_LIMIT - 1)), 'the largest rowid is an exact number');
  t.throws(() => clusterKey('abcd', SEQ_LIMIT), RangeError);
  t.throws(() => clusterKey('abcd', 0), RangeError);
});

t.test('when conversations interleave then each one\'s rows are one run of rowids, and seq still orders them', async (t) => {
  const h = await harness(t);
  const a = await h.user('cl-alice');
  const b = await h.user('cl-bob');
  const c = await h.user('cl-carol');
  const convs = [await h.messaging.direct(a.principal, b.login), await h.messaging.direct(a.principal, c.login)];
  t.not(conversationBucket(convs[0]!.id), conversationBucket(convs[1]!.id), 'two buckets (random ids; a shared one is ~1 in 10^6)');
  const sent: { conv: string; seq: number }[] = [];
  for (let round = 0; round < 6; round++) {
    // Both conversations in the same batches, alternating.
    const batch = await Promise.all(
      [0, 1, 0, 1].map(async (i) => ({ conv: convs[i]!.id, m: await h.compose(a, convs[i]!.id, `m${round}-${i}`) })),
    );
    const rs = await Promise.all(batch.map(({ m }) => h.messaging.send(a.principal, m)));
    rs.forEach((r, i) => sent.push({ conv: batch[i]!.conv, seq: r.seq }));
  }
  const rows = await h.vault.db.all<{ rid: number; seq: number; conversation: string }>('SELECT rid, seq, conversation FROM msg_messages ORDER BY rid');
  t.equal(rows.length, 24);
  const runs = rows.map((r) => r.conversation).filter((cv, i, all) => i === 0 || all[i - 1] !== cv);
  t.equal(runs.length, 2, 'in rowid order, each conversation is one run');
  for (const r of rows) t.equal(r.rid, clusterKey(r.conversation, r.seq));
  const seqs = sent.map((s) => s.seq);
  t.equal(new Set(seqs).size, seqs.length, 'every seq given once');
  t.same([...seqs].sort((x, y) => x - y), rows.map((r) => r.seq).sort((x, y) => x - y), 'the receipts carry the stored seqs');
  const page = await h.messaging.history(b.principal, convs[0]!.id, { limit: 50 });
  const pageSeqs = page.messages.map((m) => m.seq);
  t.same(pageSeqs, [...pageSeqs].sort((x, y) => y - x), 'history still newest first, by seq');
  t.equal(pageSeqs.length, 12);
});

t.test('when the newest messages are deleted and the writer starts again then their seqs are not given again', async (t) => {
  const h = await harness(t);
  const a = await h.user('hw-alice');
  const b = await h.user('hw-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const first = await h.messaging.send(a.principal, await h.compose(a, conv.id, 'one'));
  const last = await h.messaging.send(a.principal, await h.compose(a, conv.id, 'two'));
  await h.messaging.deleteMessage(a.principal, last.id, await h.deleteRequest(a, `message:${last.id}`));
  t.equal((await h.vault.db.get<{ s: number }>('SELECT max(seq) AS s FROM msg_messages'))?.s, first.seq, 'the newest row is gone');
  t.equal((await h.vault.db.get<{ hi: number }>('SELECT hi FROM msg_sequence'))?.hi, last.seq, 'the mark remembers it');

  // A new service on the same vault: its writer counts from the mark, not from the rows.
  await h.messaging.close();
  const again = await h.restart();
  t.teardown(() => again.close());
  const next = await again.send(a.principal, await h.compose(a, conv.id, 'three'));
  t.ok(next.seq > last.seq, `seq ${next.seq} comes after the deleted ${last.seq}`);
});

t.test('when a vault of the old layout is migrated then rows, seqs and the high-water mark carry over', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  const old = migrationsBefore('messaging-003');
  t.same(old.map((m) => m.id), ['messaging-001-core', 'messaging-002-conversation-index-covers-unread']);
  await db.migrate(old);
  const at = '2026-11-29T00:00:00.000Z';
  for (const id of ['cAAA', 'cBBB']) {
    await db.run(`INSERT INTO msg_conversations (id, kind, name, label, created_by, created_at) VALUES (?, 'group', ?, 'secret', 'bob', ?)`, [id, id, at]);
  }
  // Interleaved, in arrival order, as the old AUTOINCREMENT rowid stored them; then the newest is deleted.
  for (let i = 0; i < 10; i++) {
    await db.run(
      `INSERT INTO msg_messages (id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed) VALUES (?, ?, 'bob', 'secret', 3, 0, ?, ?, ?)`,
      [`m${i}`, i % 2 ? 'cBBB' : 'cAAA', at, at, Buffer.from(`sealed-${i}`)],
    );
  }
  await db.run(`DELETE FROM msg_messages WHERE id = 'm9'`);
  const before = await db.all<{ seq: number; id: string; sealed: Uint8Array }>('SELECT seq, id, sealed FROM msg_messages ORDER BY seq');

  await db.migrate(MESSAGING_MIGRATIONS);
  const after = await db.all<{ rid: number; seq: number; id: string; conversation: string; sealed: Uint8Array }>(
    'SELECT rid, seq, id, conversation, sealed FROM msg_messages ORDER BY rid',
  );
  t.same(
    [...after].sort((x, y) => x.seq - y.seq).map((r) => [r.seq, r.id, Buffer.from(r.sealed).toString()]),
    before.map((r) => [r.seq, r.id, Buffer.from(r.sealed).toString()]),
    'every row, with its seq',
  );
  for (const r of after) t.equal(r.rid, clusterKey(r.conversation, r.seq), `${r.id} re-keyed`);
  t.equal(after.map((r) => r.conversation).filter((cv, i, all) => i === 0 || all[i - 1] !== cv).length, 2, 'clustered');
  t.equal((await db.get<{ hi: number }>('SELECT hi FROM msg_sequence'))?.hi, 10, 'the deleted newest seq (10) is remembered');
  await expectSeqGuarded(t, db, 'cAAA', 'cBBB', 11, at);
});
