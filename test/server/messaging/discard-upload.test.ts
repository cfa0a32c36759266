/**
 * The uploader discards a pending upload (`discardUpload`, `DELETE /v1/files/:id`): `sigil send`
 * does it when its message fails after the uploads, so they stop eating the sender's cap of
 * pending uploads until the sweep. Real vault, real keys.db, real signatures.
 */
import t from 'tap';
import { failNextKeyDestruction, harness, type Harness, type User } from './harness.js';
import { streamOf } from '../../helpers/streams.js';

const enc = new TextEncoder();

async function readAll(s: ReadableStream<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const v of s as unknown as AsyncIterable<Uint8Array>) out.push(Buffer.from(v));
  return Buffer.concat(out);
}

/** What the vault holds of one upload: its row, its chunks, and whether its key still opens. */
async function traces(h: Harness, fileId: string) {
  return {
    rows: (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_files WHERE id = ?', [fileId]))!.n,
    chunks: (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_file_chunks WHERE file = ?', [fileId]))!.n,
    key: await h.vault.keys.messageKey(`file:${fileId}`).then(() => true, () => false),
  };
}

t.test('discarding a pending upload', async (t) => {
  const h = await harness(t, { config: { chunkBytes: 1024, maxPendingUploads: 1 } });
  const m = h.messaging;
  const a = await h.user('dc-alice');
  const b = await h.user('dc-bob');
  const conv = await m.direct(a.principal, b.login);
  const content = new Uint8Array(5000).map((_, i) => i % 251);
  const up = (u: User = a) => m.upload(u.principal, conv.id, streamOf(content), content.length);

  await t.test('when the uploader discards a pending upload then its row, chunks and key are gone and the cap has room', async (t) => {
    const f = await up();
    t.same(await traces(h, f.fileId), { rows: 1, chunks: 5, key: true }, 'control: stored in 5 chunks with its key');
    await t.rejects(up(), { code: 'TOO_MANY_PENDING_UPLOADS' }, 'control: the cap of 1 is full');
    t.same(await m.discardUpload(a.principal, f.fileId), { id: f.fileId, discarded: true });
    t.same(await traces(h, f.fileId), { rows: 0, chunks: 0, key: false }, 'no row, no chunk, no key');
    await t.rejects(m.download(a.principal, f.fileId), { code: 'FILE_NOT_FOUND' });
    await t.rejects(m.discardUpload(a.principal, f.fileId), { code: 'FILE_NOT_FOUND', status: 404 }, 'a second discard finds nothing');
    const next = await up();
    t.ok(next.fileId, 'the discarded upload no longer counts against the cap');
    await m.discardUpload(a.principal, next.fileId);
  });

  await t.test('when another person names the upload then FILE_NOT_FOUND, as for an id that does not exist, and it stays', async (t) => {
    const f = await up();
    const other = await m.discardUpload(b.principal, f.fileId).catch((e: Error & { code: string; status: number }) => e);
    const unknownId = 'AAAAAAAAAAAAAAAAAAAAAA';
    const unknown = await m.discardUpload(b.principal, unknownId).catch((e: Error & { code: string; status: number }) => e);
    t.match(other, { code: 'FILE_NOT_FOUND', status: 404 });
    t.equal(
      (other as Error).message.replace(f.fileId, 'ID'),
      (unknown as Error).message.replace(unknownId, 'ID'),
      'the same answer: nothing says the upload exists',
    );
    t.same(await traces(h, f.fileId), { rows: 1, chunks: 5, key: true }, 'the upload is untouched');
    await m.discardUpload(a.principal, f.fileId);
  });

  await t.test('when the upload is attached to a message then FILE_ATTACHED and the recipient still downloads it', async (t) => {
    const f = await up();
    await m.send(a.principal, await h.compose(a, conv.id, 'attached', { attachments: [{ id: f.fileId, name: 'f.bin', sha384: f.sha384, size: f.size }] }));
    const err = await m.discardUpload(a.principal, f.fileId).catch((e: Error & { code: string; status: number }) => e);
    t.match(err, { code: 'FILE_ATTACHED', status: 409 });
    t.match((err as Error).message, /attached to a message; delete the message instead/);
    await t.rejects(m.discardUpload(b.principal, f.fileId), { code: 'FILE_NOT_FOUND' }, 'only its uploader learns that it was attached');
    t.same(await readAll((await m.download(b.principal, f.fileId)).stream), Buffer.from(content), 'the file is whole');
  });
});

t.test('when a message attaches an upload while its uploader discards it then one of them wins, never both', async (t) => {
  const h = await harness(t);
  const m = h.messaging;
  const a = await h.user('dr-alice');
  const b = await h.user('dr-bob');
  const conv = await m.direct(a.principal, b.login);
  const outcomes = { messageWon: 0, discardWon: 0 };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const rounds = 24;
  for (let i = 0; i < rounds; i++) {
    const f = await m.upload(a.principal, conv.id, streamOf(enc.encode(`race ${i}`)), `race ${i}`.length);
    const msg = await h.compose(a, conv.id, `race ${i}`, { attachments: [{ id: f.fileId, name: 'r', sha384: f.sha384, size: f.size }] });
    // The discard starts a little later each round, so it lands on every step of the send:
    // before its checks, during them, around the writer's transaction, and (last) after it.
    const sending = m.send(a.principal, msg);
    const discarding = (i === rounds - 1 ? sending.catch(() => undefined) : sleep(i / 2)).then(() => m.discardUpload(a.principal, f.fileId));
    const [sent, discarded] = await Promise.allSettled([sending, discarding]);
    const left = await traces(h, f.fileId);
    if (sent!.status === 'fulfilled') {
      outcomes.messageWon++;
      t.match(discarded, { status: 'rejected', reason: { code: 'FILE_ATTACHED' } }, `${i}: the message won, the discard is refused`);
      t.same(left, { rows: 1, chunks: 1, key: true }, `${i}: the attached file is whole`);
      t.equal((await readAll((await m.download(b.principal, f.fileId)).stream)).toString(), `race ${i}`);
    } else {
      outcomes.discardWon++;
      t.match(sent, { status: 'rejected', reason: { code: 'MESSAGE_ATTACHMENT_INVALID' } }, `${i}: the discard won, the message is refused`);
      t.match(discarded, { status: 'fulfilled', value: { discarded: true } });
      t.same(left, { rows: 0, chunks: 0, key: false }, `${i}: nothing of the upload is left`);
      await t.rejects(m.message(b.principal, msg.id), { code: 'MESSAGE_NOT_FOUND' }, `${i}: no message names the discarded file`);
    }
  }
  t.comment(`message won ${outcomes.messageWon}, discard won ${outcomes.discardWon}`);
  t.ok(outcomes.messageWon > 0, 'control: the message won at least once (the last round)');
});

t.test('when a message attaches the upload just after the discard read it as pending then FILE_ATTACHED and the file stays', async (t) => {
  const h = await harness(t);
  const m = h.messaging;
  const db = h.vault.db;
  const a = await h.user('dw-alice');
  const b = await h.user('dw-bob');
  const conv = await m.direct(a.principal, b.login);
  const f = await m.upload(a.principal, conv.id, streamOf(enc.encode('attached just in time')), 21);
  const msg = await h.compose(a, conv.id, 'see attached', { attachments: [{ id: f.fileId, name: 'late.bin', sha384: f.sha384, size: f.size }] });
  // Between the discard's read (pending) and its transaction, the writer commits the message.
  let receipt: Awaited<ReturnType<typeof m.send>> | undefined;
  const orig = db.get.bind(db);
  (db as { get: typeof db.get }).get = async <T>(sql: string, params?: Parameters<typeof db.get>[1]): Promise<T | undefined> => {
    const row = await orig<T>(sql, params);
    if (sql.startsWith('SELECT uploader, state FROM msg_files')) receipt ??= await m.send(a.principal, msg);
    return row;
  };
  let err: unknown;
  try {
    err = await m.discardUpload(a.principal, f.fileId).catch((e: unknown) => e);
  } finally {
    delete (db as { get?: unknown }).get;
  }
  t.ok(receipt, 'control: the message was accepted while the discard ran');
  t.match(err, { code: 'FILE_ATTACHED', status: 409 });
  t.equal((await readAll((await m.download(b.principal, f.fileId)).stream)).toString(), 'attached just in time', 'the file is whole');
});

t.test('when the key of a discarded upload cannot be destroyed at once then the discard still answers and late destruction retries', async (t) => {
  const logs: string[] = [];
  const h = await harness(t, { config: { lateDestructionRetryMs: 20 } });
  const m = await (async () => {
    await h.messaging.close();
    return h.restart({ log: (event) => void logs.push(event) });
  })();
  t.teardown(() => m.close());
  const a = await h.user('dk-alice');
  const b = await h.user('dk-bob');
  const conv = await m.direct(a.principal, b.login);
  const f = await m.upload(a.principal, conv.id, streamOf(enc.encode('its key fails once')), 18);
  const failed = failNextKeyDestruction(h);
  t.same(await m.discardUpload(a.principal, f.fileId), { id: f.fileId, discarded: true }, 'the rows went: it is discarded');
  t.equal(failed(), 1, 'control: the key step failed once');
  t.ok(logs.includes('messaging.discard-key-deferred'), 'the deferral is logged');
  const end = Date.now() + 10_000;
  let gone = false;
  while (!gone && Date.now() < end) {
    gone = !(await traces(h, f.fileId)).key;
    if (!gone) await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(gone, 'the key was destroyed by the retry');
});
