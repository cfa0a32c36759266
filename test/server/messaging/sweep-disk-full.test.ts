/**
 * A disk full to the last byte (review: a full disk kept its pending uploads for ever). The vault
 * sits on a real size-limited tmpfs with a disk reserve (server/vault/disk-reserve.ts); the disk
 * is filled by never-attached uploads, or by another file. What frees space — the pending-upload
 * sweep, a deletion — releases the reserve and runs; new data is refused (VAULT_FULL) while it is
 * released; the reserve is made again once the disk has room. Why nothing could be deleted before:
 * server/vault/README.md, "A full disk". Skips, saying so, where no tmpfs can be mounted (not root).
 */
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { DISK_RESERVE_FILE } from '../../../server/vault/index.js';
import { scanTree } from '../../helpers/forensics.js';
import { harness, sha384b64, type Harness } from './harness.js';
import { fillUp, freeBytes, mountTmpfs } from '../../helpers/tmpfs.js';
import { streamOf } from '../../helpers/streams.js';

const MiB = 1024 * 1024;

const count = async (h: Harness, sql: string): Promise<number> => (await h.vault.db.get<{ n: number }>(sql))!.n;

t.test('when pending uploads filled the disk then the sweep still destroys them once they expire', async (t) => {
  const mnt = mountTmpfs(t, 48, 'a full disk is not exercised');
  if (!mnt) return;
  // 24 MiB: on this disk the WAL never reaches its 32 MiB checkpoint, so all it holds (≤ 24 MiB)
  // is past vault.db's end; the released reserve must take it (README, "A full disk").
  const reserve = { bytes: 24 * MiB, marginBytes: 4 * MiB };
  // The cap is set out of the way: this is the disk filling by other means (many members).
  const h = await harness(t, {
    dir: mnt,
    reserve,
    config: { maxFileBytes: 4 * MiB, chunkBytes: MiB, maxPendingUploads: 1000, maxPendingUploadBytes: 1024 * MiB },
  });
  t.equal(h.vault.reserve.state, 'held', 'control: the reserve was made at open');
  const a = await h.user('sd-mallory');
  const b = await h.user('sd-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  let stored = 0;
  let refusal: unknown;
  for (let i = 0; i < 40 && refusal === undefined; i++) {
    const bytes = new Uint8Array(4 * MiB).fill(i + 1);
    await h.messaging.upload(a.principal, conv.id, streamOf(bytes), bytes.length).then(() => stored++, (e: unknown) => (refusal = e));
  }
  t.match(refusal, { code: 'VAULT_FULL' }, `control: the disk filled up after ${stored} uploads`);
  const pending = () => count(h, `SELECT COUNT(*) AS n FROM msg_files WHERE state = 'pending'`);
  t.equal(await pending(), stored, 'the refused upload cleaned up after itself; the others are pending');
  // Cleaning up the refused upload is a deletion on a full disk: it took the reserve.
  t.equal(h.vault.reserve.state, 'released', 'the reserve was released');

  const small = new Uint8Array(1000).fill(7);
  await t.rejects(h.messaging.upload(a.principal, conv.id, streamOf(small), small.length), { code: 'VAULT_FULL', message: /room kept for deletions/ }, 'an upload while the reserve is released is refused');
  await t.rejects(h.messaging.send(a.principal, await h.compose(a, conv.id, 'no room')), { code: 'VAULT_FULL' }, 'so is a message');

  h.clock.now = new Date(h.clock.now.getTime() + h.messaging.config.pendingFileTtlMs + 1000);
  const r = await h.messaging.sweep();
  t.match(r, { pendingFiles: stored }, 'the sweep destroyed every expired upload');
  t.equal(await pending(), 0, 'no pending row is left');
  t.equal(await count(h, 'SELECT COUNT(*) AS n FROM msg_file_chunks'), 0, 'no chunk is left');
  t.equal(statSync(join(h.dir, 'vault.db-wal')).size, 0, "vault.db's WAL is truncated");
  // The pages the sweep freed stay in vault.db (reused by new rows, not given back to the file
  // system), but the room the reserve gave back is free again: the sweep's tick takes it back,
  // without the margin a first make keeps, and new data is taken until the disk is full again.
  t.equal(h.vault.reserve.state, 'held', `the reserve is made again from the room it gave back (${freeBytes(mnt)} bytes free beside it)`);
  t.equal(statSync(join(h.dir, DISK_RESERVE_FILE)).size, reserve.bytes);
  const up = await h.messaging.upload(a.principal, conv.id, streamOf(small), small.length);
  t.equal(up.size, small.length, 'an upload is taken again');
});

t.test('when another file filled the disk then a conversation is still destroyed and nothing of it is recoverable', async (t) => {
  const mnt = mountTmpfs(t, 48, 'a full disk is not exercised');
  if (!mnt) return;
  const h = await harness(t, { dir: mnt, reserve: { bytes: 16 * MiB, marginBytes: 4 * MiB } });
  t.equal(h.vault.reserve.state, 'held', 'control: the reserve was made at open');
  const a = await h.user('sdd-alice');
  const b = await h.user('sdd-bob');
  const c = await h.user('sdd-carol');
  const conv = await h.messaging.direct(a.principal, b.login);
  const other = await h.messaging.direct(a.principal, c.login);
  const content = new TextEncoder().encode('file ZQX-FULL-4471 '.repeat(150_000)); // ~2.7 MiB
  const file = await h.messaging.upload(a.principal, conv.id, streamOf(content), content.length);
  const ids: string[] = [];
  const withFile = await h.compose(a, conv.id, 'body ZQX-FULL-BODY-1', {
    attachments: [{ id: file.fileId, name: 'f.txt', sha384: await sha384b64(content), size: content.length }],
  });
  ids.push((await h.messaging.send(a.principal, withFile)).id);
  for (let i = 0; i < 5; i++) ids.push((await h.messaging.send(b.principal, await h.compose(b, conv.id, `reply ${i} ZQX-FULL-BODY`))).id);
  const kept = await h.messaging.send(c.principal, await h.compose(c, other.id, 'KEEP-FULL-1'));

  // What the deletion must leave nowhere: the ciphertexts as stored and the wrapped keys.
  const needles: Uint8Array[] = [];
  for (const r of await h.vault.db.all<{ sealed: Uint8Array }>('SELECT sealed FROM msg_messages WHERE conversation = ?', [conv.id])) needles.push(r.sealed);
  for (const r of await h.vault.db.all<{ data: Uint8Array }>('SELECT data FROM msg_file_chunks WHERE file = ?', [file.fileId])) needles.push(r.data);
  for (const k of [...ids, `file:${file.fileId}`]) {
    needles.push((await h.vault.keys.db.get<{ wrapped: Uint8Array }>('SELECT wrapped FROM message_keys WHERE msg_id = ?', [k]))!.wrapped);
  }
  needles.push((await h.vault.keys.db.get<{ wrapped: Uint8Array }>('SELECT wrapped FROM conversation_keys WHERE conv_id = ?', [conv.id]))!.wrapped);
  t.equal(needles.length, 6 + 3 + 7 + 1, 'control: 6 messages, 3 chunks, 7 message keys and the conversation key');
  t.ok(scanTree(h.dir, needles).length > 0, 'control: the scan finds them before the deletion');

  fillUp(join(mnt, 'filler'));
  t.ok(freeBytes(mnt) < 4096, `control: the disk is full to the last block (${freeBytes(mnt)} bytes free)`);

  const ts = await h.messaging.deleteConversation(b.principal, conv.id, await h.deleteRequest(b, `conversation:${conv.id}`));
  t.equal(ts.count, 6, 'the conversation is destroyed');
  t.equal(h.vault.reserve.state, 'released', 'with the room of the reserve');
  await t.rejects(h.messaging.history(a.principal, conv.id, {}), { code: 'CONVERSATION_NOT_FOUND' });
  t.same(scanTree(h.dir, needles), [], 'live: no ciphertext and no wrapped key in any file of the data directory');
  for (const k of [...ids, `file:${file.fileId}`]) await t.rejects(h.vault.keys.messageKey(k), { code: 'VAULT_KEY_NOT_FOUND' });
  t.notOk(await h.vault.keys.hasConversationKey(conv.id), 'the conversation key is gone');
  const left = await h.messaging.message(c.principal, kept.id);
  t.match(Buffer.from(left.body!, 'base64').toString(), /KEEP-FULL-1/, 'the other conversation is still readable');
  t.ok((await h.audit.entries(0, 10_000)).some((e) => e.type === 'deletion' && e.subject === ts.target), 'the tombstone is in the audit trail');
  await t.rejects(h.messaging.send(c.principal, await h.compose(c, other.id, 'more')), { code: 'VAULT_FULL' }, 'new messages wait meanwhile');
  t.equal(await h.vault.reserve.remake(), 'held', 'the next tick takes back the room the deletion did not use');

  await h.close();
  t.same(scanTree(h.dir, needles), [], 'closed: nothing of it in any file either');
  t.same(scanTree(h.dir, ['ZQX-FULL']), [], 'and no plaintext ever');
  rmSync(join(mnt, 'filler'));
});

t.test('control: without a reserve the same deletion on a full disk is refused VAULT_FULL', async (t) => {
  const mnt = mountTmpfs(t, 48, 'a full disk is not exercised');
  if (!mnt) return;
  const h = await harness(t, { dir: mnt });
  const { a, b, conv } = await h.direct('sdc-alice', 'sdc-bob');
  const content = new Uint8Array(2 * MiB).fill(3);
  await h.messaging.upload(a.principal, conv.id, streamOf(content), content.length);
  await h.messaging.send(a.principal, await h.compose(a, conv.id, 'one'));
  fillUp(join(mnt, 'filler'));
  await t.rejects(
    h.messaging.deleteConversation(b.principal, conv.id, await h.deleteRequest(b, `conversation:${conv.id}`)),
    { code: 'VAULT_FULL' },
    'nothing can be deleted (server/vault/README.md, "A full disk")',
  );
  rmSync(join(mnt, 'filler'));
});

t.test('when an upload cut by a crash meets a full disk at start then the service starts, and the sweep takes the upload later', async (t) => {
  // Review finding: start destroyed the cut upload first and, on a disk with no room and no
  // reserve to release, failed with VAULT_FULL: the appliance could not start to free space.
  const mnt = mountTmpfs(t, 48, 'a full disk is not exercised');
  if (!mnt) return;
  const h = await harness(t, { dir: mnt });
  const { a, conv } = await h.direct('sc-alice', 'sc-bob');
  // What a crash mid-stream leaves: the pending row (digest not yet written), a key, some chunks.
  const cut = 'CCCCCCCCCCCCCCCCCCCCCC';
  await h.vault.keys.createMessageKeys(conv.id, [`file:${cut}`]);
  await h.vault.db.run(
    `INSERT INTO msg_files (id, conversation, uploader, state, size, sha384, chunk_count, created_at) VALUES (?, ?, ?, 'pending', 0, '', 0, ?)`,
    [cut, conv.id, a.login, h.clock.now.toISOString()],
  );
  for (let i = 0; i < 4; i++) await h.vault.db.run('INSERT INTO msg_file_chunks (file, idx, data) VALUES (?, ?, ?)', [cut, i, Buffer.alloc(MiB, i + 1)]);
  await h.vault.checkpointAll();
  await h.messaging.close();
  fillUp(join(mnt, 'filler'));

  const logged: string[] = [];
  const again = await h.restart({ log: (event) => void logged.push(event) });
  t.teardown(() => again.close());
  t.ok(logged.includes('messaging.start-discard-deferred'), 'it started, and said what it left');
  t.equal(await count(h, `SELECT COUNT(*) AS n FROM msg_files WHERE id = '${cut}'`), 1, 'control: the cut upload is still there');

  rmSync(join(mnt, 'filler'));
  h.clock.now = new Date(h.clock.now.getTime() + again.config.pendingFileTtlMs + 1000);
  t.match(await again.sweep(), { pendingFiles: 1 }, 'once space returns, the sweep takes it');
  t.equal(await count(h, `SELECT COUNT(*) AS n FROM msg_file_chunks WHERE file = '${cut}'`), 0, 'no chunk is left');
  await t.rejects(h.vault.keys.messageKey(`file:${cut}`), { code: 'VAULT_KEY_NOT_FOUND' }, 'its key is destroyed');
});
