/**
 * Removing a plaintext working file so that its bytes do not stay readable in its blocks:
 * overwrite in place with zeros, fsync, then unlink. On a copy-on-write or journaling file system
 * or an SSD this is best effort (the old blocks may survive below the file system); the data
 * directory is expected to live on the appliance's encrypted, mirrored disk, which is why working
 * files are made there and nowhere else.
 */
import { open, rm, stat } from 'node:fs/promises';

const ZEROS = new Uint8Array(1024 * 1024);

/** Overwrites `path` with zeros, syncs it and unlinks it. A missing file is not an error. */
export async function secureRemove(path: string): Promise<void> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    return;
  }
  const fh = await open(path, 'r+');
  try {
    for (let pos = 0; pos < size; pos += ZEROS.length) {
      const n = Math.min(ZEROS.length, size - pos);
      try {
        await fh.write(ZEROS, 0, n, pos);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
        await overwritePagewise(fh, pos, n);
      }
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rm(path, { force: true });
}

/**
 * On a full disk a file that a failed write left sparse (a copy cut short by ENOSPC) cannot be
 * zeroed where it has holes: that needs new blocks. A hole holds no bytes, so it is skipped;
 * every page that has blocks is still overwritten. Without this, cleaning up after a full disk
 * failed in turn and left the partial copy behind (test/faults/disk-full.test.ts, repack).
 */
async function overwritePagewise(fh: Awaited<ReturnType<typeof open>>, from: number, length: number): Promise<void> {
  const PAGE = 4096;
  for (let pos = from; pos < from + length; pos += PAGE) {
    try {
      await fh.write(ZEROS, 0, Math.min(PAGE, from + length - pos), pos);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
    }
  }
}

/** {@link secureRemove} on a SQLite database and its side files (`-wal`, `-shm`, `-journal`). */
export async function secureRemoveDb(path: string): Promise<void> {
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) await secureRemove(p);
}
