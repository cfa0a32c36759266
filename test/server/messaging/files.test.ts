import t, { type Test } from 'tap';
import { messagingErrorOf } from '../../../server/messaging/http.js';
import { failNextKeyDestruction, harness, sha384b64 } from './harness.js';

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

/**
 * Arms `obj[method]` (an own property shadowing the class's method, removed again by the answer)
 * so that `first` runs once, just before the first call whose first argument `when` picks: the
 * way to land a destroy at an exact point of an upload.
 */
function armBefore(obj: object, method: string, when: (arg: unknown) => boolean, first: () => Promise<unknown>): () => void {
  const o = obj as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const orig = o[method]!;
  let fired = false;
  o[method] = async (...args: unknown[]) => {
    if (!fired && when(args[0])) {
      fired = true;
      await first();
    }
    return orig.apply(obj, args);
  };
  return () => void delete o[method];
}

t.test('files racing the pending sweep and conversation destroys', async (t) => {
  const h = await harness(t, { config: { chunkBytes: 64 * 1024, maxFileBytes: 1024 * 1024 } });
  const a = await h.user('fr-alice');
  const b = await h.user('fr-bob');
  const m = h.messaging;
  const db = h.vault.db;

  await t.test('when a message attaches an upload between the sweep finding it and discarding it then the file stays', async (t) => {
    const conv = await m.direct(a.principal, b.login);
    const content = enc.encode('attached just in time');
    const up = await m.upload(a.principal, conv.id, streamOf([content]), content.length);
    h.clock.now = new Date(h.clock.now.getTime() + m.config.pendingFileTtlMs + 1000); // past its TTL, not swept yet
    const msg = await h.compose(a, conv.id, 'see attached', {
      attachments: [{ id: up.fileId, name: 'late.bin', sha384: up.sha384, size: up.size }],
    });
    // Just after the sweep's SELECT saw the upload pending (so not with armBefore), the writer
    // commits the message that attaches it; then the sweep's discard runs.
    let receipt: Awaited<ReturnType<typeof m.send>> | undefined;
    const orig = db.all.bind(db);
    (db as { all: typeof db.all }).all = async <T>(sql: string, params?: Parameters<typeof db.all>[1]): Promise<T[]> => {
      const rows = await orig<T>(sql, params);
      if (sql.includes("state = 'pending' AND created_at <")) receipt ??= await m.send(a.principal, msg);
      return rows;
    };
    let swept: { pendingFiles: number };
    try {
      swept = await m.sweep();
    } finally {
      delete (db as { all?: unknown }).all;
    }
    t.ok(receipt, 'the message was accepted while the sweep ran');
    t.equal(swept.pendingFiles, 0, 'the sweep destroyed nothing: the upload is no longer pending');
    t.same(await db.get('SELECT state, message FROM msg_files WHERE id = ?', [up.fileId]), { state: 'final', message: msg.id });
    const got = await m.message(b.principal, receipt!.id);
    t.ok(got.header.includes(up.fileId), 'the accepted message names the attachment');
    const d = await m.download(b.principal, up.fileId);
    t.same(await readAll(d.stream), Buffer.from(content), 'the reader downloads the attachment');
  });

  let groups = 0;
  const group = () => m.createGroup(a.principal, { name: `fr-group-${++groups}`, label: 'secret' });
  const destroy = async (g: { id: string; name: string }) =>
    m.deleteGroup(a.principal, g.name, await h.deleteRequest(a, `conversation:${g.id}`));
  const counts = async () => ({
    files: (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_files'))!.n,
    chunks: (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_file_chunks'))!.n,
    keys: (await h.vault.keys.counts()).messages,
  });
  /** The upload answered 404 CONVERSATION_NOT_FOUND over HTTP, and left nothing of itself. */
  const expectNothingKept = async (t: Test, err: unknown, before: Awaited<ReturnType<typeof counts>>) => {
    t.match(err, { code: 'CONVERSATION_NOT_FOUND' });
    const http = messagingErrorOf(err, 'req-1');
    t.equal(http.status, 404, 'the HTTP answer is a 404, not a 500');
    t.equal(http.body.error.code, 'CONVERSATION_NOT_FOUND');
    t.same(await counts(), before, 'no chunk, file row or key is left');
  };

  await t.test('when the group is destroyed between two chunks of an upload then CONVERSATION_NOT_FOUND and nothing is kept', async (t) => {
    const g = await group();
    const before = await counts(); // the group holds no message: its destroy removes only the upload's rows and key
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        if (sent === 1) await gate;
        if (sent < 2) c.enqueue(new Uint8Array(100 * 1024).fill(sent++ + 1));
        else c.close();
      },
    });
    const up = m.upload(a.principal, g.id, body, 200 * 1024).then(() => undefined, (e: unknown) => e);
    // The first chunk is stored: the upload is under way when the group goes.
    const stored = async () =>
      (await db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_file_chunks c JOIN msg_files f ON f.id = c.file WHERE f.conversation = ?', [g.id]))!.n;
    while ((await stored()) === 0) await new Promise((r) => setTimeout(r, 5));
    await destroy(g);
    release();
    await expectNothingKept(t, await up, before);
  });

  const points: { when: string; arm: (g: { id: string; name: string }) => () => void }[] = [
    {
      when: 'before the upload makes its file key',
      arm: (g) => armBefore(h.vault.keys, 'createMessageKeys', () => true, () => destroy(g)),
    },
    {
      // The row's INSERT answers the bytes it reserved (RETURNING), so it goes through `all`.
      when: 'before the upload writes its file row',
      arm: (g) => armBefore(db, 'all', (sql) => String(sql).startsWith('INSERT INTO msg_files'), () => destroy(g)),
    },
    {
      when: 'after the last chunk, before the upload is completed',
      arm: (g) => armBefore(db, 'run', (sql) => String(sql).startsWith('UPDATE msg_files SET size'), () => destroy(g)),
    },
  ];
  for (const { when, arm } of points) {
    await t.test(`when the group is destroyed ${when} then CONVERSATION_NOT_FOUND and nothing is kept`, async (t) => {
      const g = await group();
      const before = await counts();
      const disarm = arm(g);
      const err = await m.upload(a.principal, g.id, streamOf([new Uint8Array(100 * 1024).fill(7)]), 100 * 1024).then(
        () => undefined,
        (e: unknown) => e,
      );
      disarm();
      await expectNothingKept(t, err, before);
    });
  }
});

t.test('when a discarded upload’s key cannot be destroyed at once then late destruction retries it', async (t) => {
  // The sweep deletes the rows first; a key step that then failed was only logged, and with the
  // row gone no later sweep would find it again: the key stayed until the next start.
  const h = await harness(t, { config: { lateDestructionRetryMs: 20 } });
  const m = h.messaging;
  const a = await h.user('fl-alice');
  const b = await h.user('fl-bob');
  const conv = await m.direct(a.principal, b.login);
  const up = await m.upload(a.principal, conv.id, streamOf([enc.encode('forgotten, and its key too')]), 26);
  const failed = failNextKeyDestruction(h);
  h.clock.now = new Date(h.clock.now.getTime() + m.config.pendingFileTtlMs + 1000);
  await m.sweep().catch(() => undefined);
  t.equal(failed(), 1, 'control: the key step failed once');
  t.same(await h.vault.db.all('SELECT id FROM msg_files WHERE id = ?', [up.fileId]), [], 'the rows went');
  const end = Date.now() + 10_000;
  let gone = false;
  while (!gone && Date.now() < end) {
    gone = await h.vault.keys.messageKey(`file:${up.fileId}`).then(() => false, () => true);
    if (!gone) await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(gone, 'the key was destroyed by the retry, without a restart');
});
