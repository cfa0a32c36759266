/**
 * A file's SHA-384 is sealed with the file key in vault.db (server/messaging/file-digest.ts): the
 * data directory's bytes do not hold the digest of a file's plaintext in any form, attaching and
 * downloading still check it, and a digest stored in clear by an earlier version is sealed at
 * the next start.
 */
import t from 'tap';
import { scanTree } from '../../helpers/forensics.js';
import { harness, sha384b64 } from './harness.js';
import { streamOf } from '../../helpers/streams.js';

async function readAll(s: ReadableStream<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of s as unknown as AsyncIterable<Uint8Array>) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

/** The digest in each form it could be stored in. */
function forms(b64: string): (string | Uint8Array)[] {
  const raw = Buffer.from(b64, 'base64');
  return [b64, raw.toString('hex'), raw.toString('base64url'), new Uint8Array(raw)];
}

t.test('when a file is uploaded, attached and downloaded then no byte of the data directory holds its digest', async (t) => {
  const h = await harness(t, { config: { chunkBytes: 16 * 1024 } });
  const { a, b, conv } = await h.direct('fd-alice', 'fd-bob');
  const content = new Uint8Array(50_000).map((_, i) => (i * 13) % 251);
  const digest = await sha384b64(content);
  const up = await h.messaging.upload(a.principal, conv.id, streamOf(content), content.length);
  t.equal(up.sha384, digest, 'the uploader is told the digest');

  const wrong = { id: up.fileId, name: 'report.pdf', sha384: await sha384b64(new Uint8Array([1])), size: up.size };
  await t.rejects(h.messaging.send(a.principal, await h.compose(a, conv.id, 'wrong digest', { attachments: [wrong] })), { code: 'DIGEST_MISMATCH' });
  await h.messaging.send(a.principal, await h.compose(a, conv.id, 'attached', { attachments: [{ ...wrong, sha384: digest }] }));
  const d = await h.messaging.download(b.principal, up.fileId);
  t.equal(d.sha384, digest, 'the download names the digest');
  t.same(await readAll(d.stream), Buffer.from(content));

  t.same(scanTree(h.dir, forms(digest)), [], 'the digest is in no file, WAL included');
  t.not(scanTree(h.dir, [up.fileId]).length, 0, 'control: the scan reads the vault (the file id is stored in clear)');
});

t.test('when a digest was stored in clear by an earlier version then the next start seals it and the file still reads', async (t) => {
  const h = await harness(t);
  const { a, b, conv } = await h.direct('fd-carol', 'fd-dave');
  const content = new TextEncoder().encode('minutes of the meeting, attached');
  const digest = await sha384b64(content);
  const up = await h.messaging.upload(a.principal, conv.id, streamOf(content), content.length);
  await h.messaging.send(a.principal, await h.compose(a, conv.id, 'attached', { attachments: [{ id: up.fileId, name: 'm.txt', sha384: digest, size: up.size }] }));
  await h.vault.db.run('UPDATE msg_files SET sha384 = ? WHERE id = ?', [digest, up.fileId]);
  await h.vault.db.checkpointTruncate();
  t.not(scanTree(h.dir, [digest]).length, 0, 'control: the legacy row holds the digest in clear');

  await h.messaging.close();
  const again = await h.restart();
  t.teardown(() => again.close());
  const stored = await h.vault.db.get<{ sha384: string }>('SELECT sha384 FROM msg_files WHERE id = ?', [up.fileId]);
  t.match(stored?.sha384, /^sealed:/);
  t.same(scanTree(h.dir, forms(digest)), [], 'sealed, and the clear copy gone from the pages and the WAL');
  const d = await again.download(b.principal, up.fileId);
  t.equal(d.sha384, digest);
  t.same(await readAll(d.stream), Buffer.from(content));
});
