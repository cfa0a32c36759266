/**
 * Review findings on the disk reserve (server/vault/disk-reserve.ts), each on a real tmpfs:
 * - an upload admitted while the reserve was held went on storing chunks after a deletion released
 *   it, into the room released for deletions, until the disk was full again and the next deletion
 *   failed;
 * - a remake (a refused send, the sweep tick) between the release and the deletion's retry took
 *   the room back, and the deletion failed;
 * - a deletion too big for the released room failed (as documented) but left the WALs holding the
 *   room and the reserve missing: every send answered 507 until the operator freed space;
 * - messages accepted before a release and still queued in the batching writer were written after it.
 * Skips, saying so, where no tmpfs can be mounted (not root).
 */
import { join } from 'node:path';
import t from 'tap';
import { harness, sha384b64, type Harness } from './harness.js';
import { fillUp, freeBytes, mountTmpfs } from '../../helpers/tmpfs.js';
import { streamOf } from '../../helpers/streams.js';

const MiB = 1024 * 1024;
const CONFIG = { maxFileBytes: 40 * MiB, chunkBytes: MiB, maxPendingUploads: 1000, maxPendingUploadBytes: 1024 * MiB };
const RESERVE = { bytes: 16 * MiB, marginBytes: 4 * MiB };

/** A body the test feeds chunk by chunk; `null` ends it. */
function fedStream(): { stream: ReadableStream<Uint8Array>; push(x: Uint8Array | null): void } {
  const queue: (Uint8Array | null)[] = [];
  let wake: (() => void) | undefined;
  const stream = new ReadableStream<Uint8Array>({
    async pull(c) {
      while (queue.length === 0) await new Promise<void>((r) => (wake = r));
      const next = queue.shift();
      if (next) c.enqueue(next);
      else c.close();
    },
  });
  return {
    stream,
    push(x) {
      queue.push(x);
      wake?.();
    },
  };
}

const codeOf = (p: Promise<unknown>): Promise<string> => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));

async function withFile(h: Harness, login: string, mib: number) {
  const { a, b, conv } = await h.direct(`${login}-a`, `${login}-b`);
  const content = new Uint8Array(mib * MiB).fill(5);
  const f = await h.messaging.upload(a.principal, conv.id, streamOf(content), content.length);
  await h.messaging.send(a.principal, await h.compose(a, conv.id, 'with a file', { attachments: [{ id: f.fileId, name: 'f', sha384: await sha384b64(content), size: content.length }] }));
  await h.vault.checkpointAll();
  return { a, b, conv };
}

t.test('when a deletion releases the reserve then an upload already under way stops, and the next deletion still runs', async (t) => {
  const mnt = mountTmpfs(t, 48, 'a full disk is not exercised');
  if (!mnt) return;
  const h = await harness(t, { dir: mnt, reserve: RESERVE, config: CONFIG });
  t.equal(h.vault.reserve.state, 'held', 'control: the reserve was made');
  const { a, b, conv } = await h.direct('if-a', 'if-b');
  const p1 = await h.messaging.upload(a.principal, conv.id, streamOf(new Uint8Array(2 * MiB).fill(1)), 2 * MiB);
  const p2 = await h.messaging.upload(a.principal, conv.id, streamOf(new Uint8Array(2 * MiB).fill(2)), 2 * MiB);
  await h.vault.checkpointAll();
  // bob's upload is admitted while the reserve is held; no length announced.
  const fed = fedStream();
  const bobs = codeOf(h.messaging.upload(b.principal, conv.id, fed.stream));
  fed.push(new Uint8Array(MiB).fill(9));
  await new Promise((r) => setTimeout(r, 200));
  fillUp(join(mnt, 'filler'));
  t.ok(freeBytes(mnt) < 4096, 'control: the disk is full');
  await h.messaging.discardUpload(a.principal, p1.fileId);
  t.equal(h.vault.reserve.state, 'released', 'control: the discard took the reserve');
  for (let i = 0; i < 30; i++) fed.push(new Uint8Array(MiB).fill(10 + i));
  fed.push(null);
  t.equal(await bobs, 'VAULT_FULL', 'the upload under way is refused at its next chunk');
  t.ok(freeBytes(mnt) > 8 * MiB, `the released room is still free (${freeBytes(mnt)} bytes)`);
  t.same(await h.messaging.discardUpload(a.principal, p2.fileId), { id: p2.fileId, discarded: true }, 'the next deletion runs');
});

t.test('when something would re-make the reserve during a deletion\'s retry then it waits, and the deletion runs', async (t) => {
  const mnt = mountTmpfs(t, 64, 'a full disk is not exercised');
  if (!mnt) return;
  const h = await harness(t, { dir: mnt, reserve: RESERVE, config: CONFIG });
  const { b, conv } = await withFile(h, 'rm', 14);
  fillUp(join(mnt, 'filler'), 7 * MiB);
  // Between the release's checkpoint and the retry: a send is refused (it asks for a remake) and
  // the sweep tick's remake runs.
  const db = h.vault.db as unknown as { checkpointTruncate: () => Promise<void> };
  const checkpoint = db.checkpointTruncate.bind(db);
  let meddled = false;
  db.checkpointTruncate = async () => {
    await checkpoint();
    if (meddled || h.vault.reserve.state !== 'released') return;
    meddled = true;
    t.equal(await codeOf(h.messaging.send(b.principal, await h.compose(b, conv.id, 'meanwhile'))), 'VAULT_FULL', 'a send meanwhile is refused');
    await h.vault.reserve.make();
    t.equal(h.vault.reserve.state, 'released', 'the room stays with the deletion');
  };
  t.equal(await codeOf(h.messaging.deleteConversation(b.principal, conv.id, await h.deleteRequest(b, `conversation:${conv.id}`))), 'ok', 'the deletion runs');
  t.ok(meddled, 'control: the deletion went through the reserve');
});

t.test('when a deletion is too big for the released room then it fails, and sends work again once the reserve is back', async (t) => {
  const mnt = mountTmpfs(t, 96, 'a full disk is not exercised');
  if (!mnt) return;
  const h = await harness(t, { dir: mnt, reserve: RESERVE, config: CONFIG });
  const { a, b, conv } = await withFile(h, 'st', 30);
  fillUp(join(mnt, 'filler'), 3 * MiB);
  t.equal(await codeOf(h.messaging.send(a.principal, await h.compose(a, conv.id, 'before'))), 'ok', 'control: sends work');
  t.equal(await codeOf(h.messaging.deleteConversation(b.principal, conv.id, await h.deleteRequest(b, `conversation:${conv.id}`))), 'VAULT_FULL', 'control: too big even with the reserve');
  t.ok(freeBytes(mnt) >= RESERVE.bytes, `the failed retry gave the WALs' room back (${freeBytes(mnt)} bytes free)`);
  await h.messaging.sweep();
  t.equal(h.vault.reserve.state, 'held', 'the sweep tick re-made the reserve from the room it had given');
  t.equal(await codeOf(h.messaging.send(a.principal, await h.compose(a, conv.id, 'after'))), 'ok', 'sends work as before the attempt');
  t.equal((await h.messaging.history(a.principal, conv.id, {})).messages.length, 3, 'nothing of the conversation was lost');
});

t.test('when the reserve is released while a message waits in the writer\'s queue then it is refused, not written', async (t) => {
  const h = await harness(t);
  const { a, conv } = await h.direct('wq-a', 'wq-b');
  // Room at acceptance; none by the time the writer commits (a deletion released the reserve).
  let looks = 0;
  Object.defineProperty(h.vault.reserve, 'takesNewData', { get: () => looks++ === 0 });
  const msg = await h.compose(a, conv.id, 'queued before the release');
  t.equal(await codeOf(h.messaging.send(a.principal, msg)), 'VAULT_FULL');
  t.equal(looks, 2, 'control: looked at acceptance and again at the commit');
  t.same(await h.vault.db.all('SELECT id FROM msg_messages WHERE conversation = ?', [conv.id]), [], 'nothing stored');
  await t.rejects(h.vault.keys.messageKey(msg.id), { code: 'VAULT_KEY_NOT_FOUND' }, 'no key left either');
});
