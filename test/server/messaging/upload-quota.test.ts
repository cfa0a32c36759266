/**
 * Regression (review: pending uploads had no cap): one member kept uploading and never attached,
 * 22 × 4 MiB filled a 96 MiB disk and every write after it — deletions too — answered VAULT_FULL.
 * Each uploader's pending uploads are now capped by count and bytes; a refusal comes before the
 * file key or any row exists, and concurrent uploads cannot pass the cap.
 */
import t from 'tap';
import { harness } from './harness.js';
import { streamOf } from '../../helpers/streams.js';

const KiB = 1024;

t.test('pending-upload cap', async (t) => {
  const h = await harness(t, {
    config: { chunkBytes: 16 * KiB, maxFileBytes: 64 * KiB, maxPendingUploads: 3, maxPendingUploadBytes: 100 * KiB },
  });
  const a = await h.user('uq-mallory');
  const b = await h.user('uq-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const m = h.messaging;
  const state = async () => ({
    files: (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_files'))!.n,
    chunks: (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_file_chunks'))!.n,
    keys: (await h.vault.keys.counts()).messages,
  });
  const bytes = (n: number, fill = 1) => new Uint8Array(n).fill(fill);
  const up = (u = a, n = KiB, announce = true) => m.upload(u.principal, conv.id, streamOf([bytes(n)]), announce ? n : undefined);
  const cleanUp = async () => {
    h.clock.now = new Date(h.clock.now.getTime() + m.config.pendingFileTtlMs + 1000);
    await m.sweep();
  };

  await t.test('when an uploader already keeps the most pending uploads then TOO_MANY_PENDING_UPLOADS and nothing is made', async (t) => {
    for (let i = 0; i < 3; i++) await up();
    const before = await state();
    const err = await up().catch((e: { code: string; status: number; message: string }) => e);
    t.match(err, { code: 'TOO_MANY_PENDING_UPLOADS', status: 429 });
    t.match((err as { message: string }).message, /3 uploads not attached to any message; the limit is 3/, 'the message says what and how much');
    t.same(await state(), before, 'no key, no file row, no chunk');
    await t.resolves(up(b), 'another uploader is not affected');
    await cleanUp();
    await t.resolves(up(), 'once the sweep destroyed them there is room again');
    await cleanUp();
  });

  await t.test('when an announced upload would pass the byte cap then it is refused before anything is made', async (t) => {
    await up(a, 60 * KiB);
    const before = await state();
    await t.rejects(up(a, 50 * KiB), { code: 'TOO_MANY_PENDING_UPLOADS' });
    t.same(await state(), before);
    await t.resolves(up(a, 40 * KiB), 'what fits beside it is taken');
    await cleanUp();
  });

  await t.test('when an unannounced upload streams past what the cap leaves then TOO_MANY_PENDING_UPLOADS and nothing is kept', async (t) => {
    await up(a, 60 * KiB);
    const before = await state();
    await t.rejects(up(a, 50 * KiB, false), { code: 'TOO_MANY_PENDING_UPLOADS' });
    t.same(await state(), before, 'its chunks, row and key are gone');
    const fits = await up(a, 40 * KiB, false);
    t.equal(fits.size, 40 * KiB, 'an unannounced upload that fits is stored with its real size');
    await cleanUp();
  });

  await t.test('when a pending upload is attached to a message then it no longer counts', async (t) => {
    const files = [await up(), await up(), await up()];
    await t.rejects(up(), { code: 'TOO_MANY_PENDING_UPLOADS' });
    const f = files[0]!;
    await m.send(a.principal, await h.compose(a, conv.id, 'attached', { attachments: [{ id: f.fileId, name: 'f', sha384: f.sha384, size: f.size }] }));
    await t.resolves(up(), 'the attached upload made room');
    await cleanUp();
  });

  await t.test('when many uploads start at once then exactly the cap is accepted', async (t) => {
    const before = await state();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => up(a, 20 * KiB)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    t.equal(ok, 3, 'three accepted, no overshoot');
    t.ok(
      results.every((r) => r.status === 'fulfilled' || (r.reason as { code?: string }).code === 'TOO_MANY_PENDING_UPLOADS'),
      'the others are refused by the cap',
    );
    const after = await state();
    t.equal(after.files - before.files, 3, 'three rows');
    t.equal(after.keys - before.keys, 3, 'three keys: the refused ones made none');
    await cleanUp();
  });
});

t.test('when pending rows are inserted at once without the admission queue then the statement itself stops at the cap', async (t) => {
  const h = await harness(t);
  const a = await h.user('uq-eve');
  const b = await h.user('uq-frank');
  const conv = await h.messaging.direct(a.principal, b.login);
  const { insertPendingRow } = await import('../../../server/messaging/upload-quota.js');
  const cfg = { maxPendingUploads: 3, maxPendingUploadBytes: 1000, maxFileBytes: 1000, pendingFileTtlMs: 3_600_000 };
  const at = h.clock.now.toISOString();
  const outcomes = await Promise.all(
    Array.from({ length: 10 }, (_, i) => insertPendingRow(h.vault.db, cfg, { id: `quota-row-${String(i).padStart(12, '0')}`, conversation: conv.id, uploader: a.login, at, length: 100 })),
  );
  t.equal(outcomes.filter((o) => o.ok).length, 3, 'three rows, however the statements interleave');
  t.ok(outcomes.every((o) => o.ok || o.error?.code === 'TOO_MANY_PENDING_UPLOADS'), 'the rest are told why');
  const plan = await h.vault.db.all<{ detail: string }>(
    `EXPLAIN QUERY PLAN SELECT count(*) FROM msg_files WHERE uploader = ? AND state = 'pending'`,
    [a.login],
  );
  t.match(plan.map((p) => p.detail).join('; '), /msg_files_pending/, 'the count reads the partial index of pending uploads');
  await h.vault.db.run(`DELETE FROM msg_files WHERE id LIKE 'quota-row-%'`);
});
