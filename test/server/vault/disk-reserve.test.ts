/**
 * The disk reserve (server/vault/disk-reserve.ts) on its own: made only with room to spare, zeros
 * actually allocated, released, made again; `freeing` retries once, and only on VAULT_FULL. The
 * free space is a seam here; test/server/messaging/sweep-disk-full.test.ts runs it on a full tmpfs.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { DiskReserve, DISK_RESERVE_FILE, OPEN_ROOM_BYTES, releaseReserveToOpen, VaultFullError, VaultIoError } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const MiB = 1024 * 1024;

function reserve(t: Parameters<typeof tmpDir>[0], over: { bytes?: number; free?: number; dir?: string; heldBefore?: boolean } = {}) {
  const dir = over.dir ?? tmpDir(t, 'sigil-reserve-');
  const room = { free: over.free ?? 1024 * MiB };
  const events: string[] = [];
  let checkpoints = 0;
  const r = new DiskReserve({
    dir,
    bytes: over.bytes ?? 3 * MiB + 100,
    marginBytes: MiB,
    checkpoint: async () => void checkpoints++,
    log: (e) => events.push(e),
    freeBytes: async () => room.free,
    ...(over.heldBefore !== undefined ? { heldBefore: over.heldBefore } : {}),
  });
  return { r, dir, room, events, file: join(dir, DISK_RESERVE_FILE), checkpoints: () => checkpoints };
}

t.test('when the disk has room then the reserve is made: random bytes, allocated, 0600', async (t) => {
  const { r, file, events } = reserve(t);
  t.equal(await r.make(), 'held');
  t.ok(r.takesNewData);
  const st = statSync(file);
  t.equal(st.size, 3 * MiB + 100);
  t.ok(st.blocks * 512 >= st.size, 'every block allocated (not sparse)');
  t.equal(st.mode & 0o777, 0o600);
  // Random, not zeros: a compressing or deduplicating file system would store zeros in a few KiB.
  const bytes = readFileSync(file);
  t.ok(gzipSync(bytes).length > bytes.length * 0.99, 'incompressible');
  t.not(bytes.subarray(0, MiB).compare(bytes.subarray(MiB, 2 * MiB)), 0, 'no two blocks alike');
  t.same(events, ['vault.reserve-made']);
  t.equal(await r.make(), 'held', 'a whole reserve is kept as it is');
  t.same(events, ['vault.reserve-made'], 'not written again');
});

t.test('when the disk lacks the reserve and its margin then none is made and new data waits', async (t) => {
  const { r, file, room, events } = reserve(t, { free: 4 * MiB }); // 3 MiB + 100 + 1 MiB margin does not fit
  t.equal(await r.make(), 'released');
  t.notOk(existsSync(file));
  t.notOk(r.takesNewData);
  t.same(events, ['vault.reserve-no-room']);
  t.equal(await r.remake(), 'released', 'still no room');
  t.same(events, ['vault.reserve-no-room'], 'said once, not at every tick');
  room.free = 5 * MiB;
  t.equal(await r.remake(), 'held', 'made once the disk has room');
  t.ok(r.takesNewData);
});

t.test('when a reserve was cut short (a crash) or sized otherwise then it is written anew', async (t) => {
  const { r, file } = reserve(t);
  writeFileSync(file, Buffer.alloc(1000, 1));
  t.equal(await r.make(), 'held');
  t.equal(statSync(file).size, 3 * MiB + 100);
  t.not(readFileSync(file).subarray(0, 1000).compare(Buffer.alloc(1000, 1)), 0, 'not the old bytes');
});

t.test('when it is off then a leftover file is removed and nothing is retried', async (t) => {
  const { r, file, checkpoints } = reserve(t, { bytes: 0 });
  writeFileSync(file, Buffer.alloc(10));
  t.equal(await r.make(), 'off');
  t.notOk(existsSync(file));
  t.ok(r.takesNewData, 'off takes new data');
  let runs = 0;
  await t.rejects(r.freeing(async () => { runs++; throw new VaultFullError('full'); }), { code: 'VAULT_FULL' });
  t.equal(runs, 1);
  t.equal(checkpoints(), 0);
});

t.test('when an operation that frees space meets VAULT_FULL then the reserve is released, the WALs truncated, and it runs once more', async (t) => {
  const { r, file, events, checkpoints, room } = reserve(t);
  await r.make();
  let runs = 0;
  const out = await r.freeing(async () => {
    if (runs++ === 0) throw new VaultFullError('full');
    t.notOk(existsSync(file), 'the retry runs with the reserve gone');
    t.equal(checkpoints(), 1, 'after the checkpoint');
    return 'done';
  });
  t.equal(out, 'done');
  t.equal(runs, 2);
  t.equal(r.state, 'released');
  t.notOk(r.takesNewData, 'new data waits while it is released');
  t.same(events, ['vault.reserve-made', 'vault.reserve-released']);

  runs = 0;
  await t.rejects(r.freeing(async () => { runs++; throw new VaultFullError('still full'); }), { message: 'still full' }, 'a second failure is thrown');
  t.equal(runs, 2, 'released already: still one retry after truncating the WALs');
  t.equal(checkpoints(), 3, 'and the WALs truncated again after the failed retry: what it wrote is given back');

  runs = 0;
  await t.rejects(r.freeing(async () => { runs++; throw new VaultIoError('io'); }), { code: 'VAULT_IO' });
  t.equal(runs, 1, 'any other error is not retried');

  room.free = 3 * MiB + 200;
  t.equal(await r.remake(), 'held', 'made again from the room it gave back, without the margin a first make keeps');
  t.ok(existsSync(file));
  t.same(events.slice(-1), ['vault.reserve-made']);
});

t.test('when a start finds the disk full then the reserve a run left is released first, and is made again from the room it gave back', async (t) => {
  const { r, dir, file } = reserve(t);
  t.equal(await r.make(), 'held', 'control: a run made it');
  const events: string[] = [];
  const log = (e: string) => void events.push(e);
  t.equal(await releaseReserveToOpen(dir, r.bytes, log, async () => OPEN_ROOM_BYTES), false, 'with room to open, kept');
  t.equal(await releaseReserveToOpen(dir, 0, log, async () => 0), false, 'off: left alone');
  t.ok(existsSync(file));
  t.equal(await releaseReserveToOpen(dir, r.bytes, log, async () => OPEN_ROOM_BYTES - 1), true, 'below the room to open, released');
  t.notOk(existsSync(file));
  t.same(events, ['vault.reserve-released']);
  t.equal(await releaseReserveToOpen(dir, r.bytes, log, async () => 0), false, 'none there: nothing to release');

  // The vault opened after it: re-made with no margin, as after any release in the same run.
  const after = reserve(t, { dir, free: r.bytes, heldBefore: true });
  t.equal(after.r.state, 'released', 'new data waits');
  t.equal(await after.r.make(), 'held', 'the room it gave back is enough');
  const fresh = reserve(t, { free: r.bytes });
  t.equal(await fresh.r.make(), 'released', 'control: a first make wants the margin too');
});
