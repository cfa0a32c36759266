import t from 'tap';
import { harness } from './harness.js';

t.test('when the service starts then keys without rows are destroyed and keys with rows kept', async (t) => {
  const h = await harness(t);
  const a = await h.user('s-alice');
  const b = await h.user('s-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const kept = await h.compose(a, conv.id, 'kept');
  await h.messaging.send(a.principal, kept);
  // As if the appliance crashed after a deletion removed the rows but before it removed the keys.
  await h.vault.keys.createMessageKeys(conv.id, ['AAAAAAAAAAAAAAAAAAAAAA']);
  await h.messaging.close();
  const again = await h.restart();
  t.teardown(() => again.close());
  await t.rejects(h.vault.keys.messageKey('AAAAAAAAAAAAAAAAAAAAAA'), { code: 'VAULT_KEY_NOT_FOUND' });
  const got = await again.message(b.principal, kept.id);
  t.equal(Buffer.from(got.body!, 'base64').toString(), 'kept');
});

t.test('when the service is closed then sending is refused with UNAVAILABLE', async (t) => {
  const h = await harness(t);
  const a = await h.user('s2-alice');
  const b = await h.user('s2-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const msg = await h.compose(a, conv.id, 'late');
  await h.messaging.close();
  await t.rejects(h.messaging.send(a.principal, msg), { code: 'UNAVAILABLE' });
});

t.test('when a live reader is too slow then its subscription is dropped instead of buffering', async (t) => {
  const h = await harness(t, { config: { eventQueueMax: 2 } });
  const a = await h.user('s3-alice');
  const b = await h.user('s3-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const slow = h.messaging.subscribe(b.principal);
  const fast = h.messaging.subscribe(b.principal);
  const got: number[] = [];
  const reading = (async () => {
    for await (const ev of fast) if (ev.kind === 'message') got.push(ev.seq);
  })();
  for (let i = 0; i < 5; i++) await h.messaging.send(a.principal, await h.compose(a, conv.id, `flood ${i}`));
  t.ok(slow.dropped, 'the subscription that never read was dropped');
  t.ok(slow.closed);
  t.notOk(fast.dropped, 'a reader that keeps up stays');
  t.equal(got.length, 5);
  fast.close();
  await reading;
});

t.test('when a batch cannot be written then its keys go too and the same message can be sent again', async (t) => {
  const h = await harness(t);
  const a = await h.user('s4-alice');
  const b = await h.user('s4-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const msg = await h.compose(a, conv.id, 'retry me');
  // A real failure inside the vault transaction: the audit log's table is missing.
  await h.vault.db.exec('ALTER TABLE audit_log RENAME TO audit_log_away');
  await t.rejects(h.messaging.send(a.principal, msg), { code: 'VAULT_SQL' });
  await t.rejects(h.vault.keys.messageKey(msg.id), { code: 'VAULT_KEY_NOT_FOUND' }, 'the key made for it is gone');
  t.equal((await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_messages'))!.n, 0, 'no row');
  await h.vault.db.exec('ALTER TABLE audit_log_away RENAME TO audit_log');
  const r = await h.messaging.send(a.principal, msg);
  t.equal(r.id, msg.id, 'a retry is accepted, not taken for a replay');
});

t.test('when many small batches overlap then every message commits once, in seq order with its audit entry', async (t) => {
  const h = await harness(t, { config: { batchMax: 8, batchDelayMs: 1 } });
  const a = await h.user('s5-alice');
  const b = await h.user('s5-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const msgs = await Promise.all(Array.from({ length: 100 }, (_, i) => h.compose(a, conv.id, `overlap ${i}`)));
  const rs = await Promise.all(msgs.map((x) => h.messaging.send(a.principal, x)));
  t.equal(new Set(rs.map((r) => r.seq)).size, 100, 'distinct seqs');
  const bySeq = [...rs].sort((x, y) => x.seq - y.seq);
  const idx = bySeq.map((r) => r.audit!.index);
  t.same(idx, [...idx].sort((x, y) => x - y), 'audit entries follow seq order');
  const n = (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_messages WHERE conversation = ?', [conv.id]))!.n;
  t.equal(n, 100);
  t.equal((await h.vault.keys.counts()).messages >= 100, true);
});

t.test('issue 8 regression (kill -9 mid-upload): when the service starts then an upload cut off by a crash is destroyed with its key', async (t) => {
  const h = await harness(t, { config: { chunkBytes: 1024 } });
  const a = await h.user('s4-alice');
  const b = await h.user('s4-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const done = await h.messaging.upload(
    a.principal,
    conv.id,
    new ReadableStream({ start: (c) => (c.enqueue(new Uint8Array(3000).fill(7)), c.close()) }),
    3000,
  );
  // What a crash mid-stream leaves: the pending row (digest not yet written), a key, some chunks.
  const cutId = 'BBBBBBBBBBBBBBBBBBBBBB';
  await h.vault.keys.createMessageKeys(conv.id, [`file:${cutId}`]);
  await h.vault.db.run(
    `INSERT INTO msg_files (id, conversation, uploader, state, size, sha384, chunk_count, created_at) VALUES (?, ?, ?, 'pending', 0, '', 0, ?)`,
    [cutId, conv.id, a.login, new Date().toISOString()],
  );
  await h.vault.db.run('INSERT INTO msg_file_chunks (file, idx, data) VALUES (?, 0, ?)', [cutId, Buffer.alloc(64, 1)]);
  await h.messaging.close();
  const again = await h.restart();
  t.teardown(() => again.close());
  const rows = await h.vault.db.all<{ id: string }>('SELECT id FROM msg_files ORDER BY id');
  t.same(rows.map((r) => r.id), [done.fileId], 'only the finished upload remains');
  t.same(await h.vault.db.all('SELECT file FROM msg_file_chunks WHERE file = ?', [cutId]), [], 'no chunk of the cut upload');
  await t.rejects(h.vault.keys.messageKey(`file:${cutId}`), { code: 'VAULT_KEY_NOT_FOUND' }, 'its key is destroyed');
});
