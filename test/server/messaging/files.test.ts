import t from 'tap';
import { harness, sha384b64 } from './harness.js';

const enc = new TextEncoder();

function streamOf(parts: Uint8Array[], failAfter = false): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < parts.length) c.enqueue(parts[i++]!);
      else if (failAfter) c.error(new Error('client went away'));
      else c.close();
    },
  });
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  const r = s.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) break;
    out.push(Buffer.from(value));
  }
  return Buffer.concat(out);
}

t.test('files', async (t) => {
  const h = await harness(t, { config: { chunkBytes: 64 * 1024, maxFileBytes: 1024 * 1024 } });
  const a = await h.user('fl-alice');
  const b = await h.user('fl-bob');
  const c = await h.user('fl-carol');
  const conv = await h.messaging.direct(a.principal, b.login);
  const m = h.messaging;
  const chunkCount = async () => (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_file_chunks'))!.n;
  const fileCount = async () => (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_files'))!.n;

  const content = new Uint8Array(300_000).map((_, i) => (i * 7) % 251);

  await t.test('when a file is uploaded in pieces and attached then the reader downloads the same bytes', async (t) => {
    const up = await m.upload(a.principal, conv.id, streamOf([content.subarray(0, 1000), content.subarray(1000)]), content.length);
    t.equal(up.size, content.length);
    t.equal(up.sha384, await sha384b64(content));
    t.equal((await h.vault.db.get<{ n: number }>('SELECT chunk_count AS n FROM msg_files WHERE id = ?', [up.fileId]))!.n, 5);
    await t.rejects(m.download(b.principal, up.fileId), { code: 'FILE_NOT_FOUND' }, 'a pending upload is the uploader’s alone');
    const msg = await h.compose(a, conv.id, 'see attached', {
      attachments: [{ id: up.fileId, name: 'data.bin', sha384: up.sha384, size: up.size }],
    });
    await m.send(a.principal, msg);
    const d = await m.download(b.principal, up.fileId);
    t.same(await readAll(d.stream), Buffer.from(content));
    await t.rejects(m.download(c.principal, up.fileId), { code: 'FILE_NOT_FOUND' }, 'an outsider cannot download');
  });

  await t.test('when an attachment is referenced twice then MESSAGE_ATTACHMENT_INVALID', async (t) => {
    const up = await m.upload(a.principal, conv.id, streamOf([enc.encode('once')]), 4);
    const att = [{ id: up.fileId, name: 'x', sha384: up.sha384, size: up.size }];
    await m.send(a.principal, await h.compose(a, conv.id, 'first', { attachments: att }));
    await t.rejects(m.send(a.principal, await h.compose(a, conv.id, 'second', { attachments: att })), {
      code: 'MESSAGE_ATTACHMENT_INVALID',
    });
  });

  await t.test('when an attachment digest differs from the upload then MESSAGE_DIGEST_MISMATCH', async (t) => {
    const up = await m.upload(a.principal, conv.id, streamOf([enc.encode('real content')]), 12);
    const msg = await h.compose(a, conv.id, 'x', {
      attachments: [{ id: up.fileId, name: 'x', sha384: await sha384b64(enc.encode('other')), size: up.size }],
    });
    await t.rejects(m.send(a.principal, msg), { code: 'MESSAGE_DIGEST_MISMATCH' });
  });

  await t.test('when the upload exceeds the limit then FILE_TOO_LARGE and nothing is kept', async (t) => {
    const before = [await chunkCount(), await fileCount()];
    const big = new Uint8Array(256 * 1024);
    await t.rejects(m.upload(a.principal, conv.id, streamOf([big, big, big, big, big])), { code: 'FILE_TOO_LARGE' });
    await t.rejects(m.upload(a.principal, conv.id, streamOf([big]), 5 * 1024 * 1024), { code: 'FILE_TOO_LARGE' });
    t.same([await chunkCount(), await fileCount()], before, 'no chunk and no file row left');
  });

  await t.test('when the upload is shorter than announced then UPLOAD_TRUNCATED and nothing is kept', async (t) => {
    const before = [await chunkCount(), await fileCount()];
    await t.rejects(m.upload(a.principal, conv.id, streamOf([content]), content.length + 10), { code: 'UPLOAD_TRUNCATED' });
    t.same([await chunkCount(), await fileCount()], before);
  });

  await t.test('when the client aborts mid-upload then UPLOAD_TRUNCATED and nothing is kept', async (t) => {
    const before = [await chunkCount(), await fileCount()];
    const keysBefore = (await h.vault.keys.counts()).messages;
    await t.rejects(m.upload(a.principal, conv.id, streamOf([content, content], true)), { code: 'UPLOAD_TRUNCATED' });
    t.same([await chunkCount(), await fileCount()], before);
    t.equal((await h.vault.keys.counts()).messages, keysBefore, 'the upload key is destroyed too');
  });

  await t.test('when a stored chunk is swapped then the download fails instead of serving wrong bytes', async (t) => {
    const up = await m.upload(a.principal, conv.id, streamOf([content]), content.length);
    await h.vault.db.run(
      `UPDATE msg_file_chunks SET data = (SELECT data FROM msg_file_chunks WHERE file = ? AND idx = 0) WHERE file = ? AND idx = 1`,
      [up.fileId, up.fileId],
    );
    const d = await m.download(a.principal, up.fileId);
    await t.rejects(readAll(d.stream), { code: 'VAULT_DECRYPT_FAILED' }, 'AAD binds each chunk to its place');
  });

  await t.test('when the stored digest differs then the download ends with FILE_CORRUPT', async (t) => {
    const up = await m.upload(a.principal, conv.id, streamOf([content]), content.length);
    await h.vault.db.run('UPDATE msg_files SET sha384 = ? WHERE id = ?', [await sha384b64(enc.encode('x')), up.fileId]);
    const d = await m.download(a.principal, up.fileId);
    await t.rejects(readAll(d.stream), { code: 'FILE_CORRUPT' });
  });

  await t.test('when a file id is unknown then FILE_NOT_FOUND', async (t) => {
    await t.rejects(m.download(a.principal, 'AAAAAAAAAAAAAAAAAAAAAA'), { code: 'FILE_NOT_FOUND' });
  });

  await t.test('when a pending upload outlives its TTL then the sweep destroys it', async (t) => {
    const up = await m.upload(a.principal, conv.id, streamOf([enc.encode('forgotten')]), 9);
    h.clock.now = new Date(h.clock.now.getTime() + m.config.pendingFileTtlMs + 1000);
    const r = await m.sweep();
    t.ok(r.pendingFiles >= 1);
    await t.rejects(m.download(a.principal, up.fileId), { code: 'FILE_NOT_FOUND' });
    await t.rejects(h.vault.keys.messageKey(`file:${up.fileId}`), { code: 'VAULT_KEY_NOT_FOUND' });
  });
});
