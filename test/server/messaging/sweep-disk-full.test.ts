/**
 * Known limitation, kept as a TODO test (review: a full disk keeps its pending uploads for ever):
 * with the vault on a real size-limited tmpfs filled by never-attached uploads, the pending-upload
 * sweep cannot destroy them once they expire. The per-uploader cap (upload-quota.ts) keeps one
 * person from getting there; many people still can. Why no deletion runs on a disk full to the last
 * byte, and what would fix it, is in server/vault/README.md ("A full disk"). Remove `todo` once
 * that is built. Skips, saying so, where no tmpfs can be mounted (not root).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { harness } from './harness.js';

const MiB = 1024 * 1024;

function mountTmpfs(t: { teardown(fn: () => void): void; plan(n: number, why: string): void }, mib: number): string | undefined {
  const mnt = mkdtempSync(join(tmpdir(), 'sigil-tmpfs-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', mnt]).status === 0;
  t.teardown(() => {
    if (mounted) spawnSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  if (mounted) return mnt;
  t.plan(0, 'cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): the sweep on a full disk is not exercised');
  return undefined;
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(c) {
      if (sent) return c.close();
      sent = true;
      c.enqueue(bytes);
    },
  });
}

const TODO = 'a disk full to the last byte: the WAL frames past vault.db\'s end need space to be checkpointed (server/vault/README.md, "A full disk")';

t.test('when pending uploads filled the disk then the sweep still destroys them once they expire', { todo: TODO }, async (t) => {
  const mnt = mountTmpfs(t, 48);
  if (!mnt) return;
  // The cap is set out of the way: this is the disk filling by other means (many members).
  const h = await harness(t, {
    dir: mnt,
    config: { maxFileBytes: 4 * MiB, chunkBytes: MiB, maxPendingUploads: 1000, maxPendingUploadBytes: 1024 * MiB },
  });
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
  const pending = async () => (await h.vault.db.get<{ n: number }>(`SELECT COUNT(*) AS n FROM msg_files WHERE state = 'pending'`))!.n;
  t.ok((await pending()) >= stored, 'control: the uploads are pending');
  h.clock.now = new Date(h.clock.now.getTime() + h.messaging.config.pendingFileTtlMs + 1000);
  const r = await h.messaging.sweep().catch((e: unknown) => e);
  t.match(r, { pendingFiles: stored }, 'the sweep destroyed every expired upload');
  t.equal(await pending(), 0, 'no pending row is left');
  t.equal((await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_file_chunks'))!.n, 0, 'no chunk is left');
});
