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
      await fh.write(ZEROS, 0, Math.min(ZEROS.length, size - pos), pos);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rm(path, { force: true });
}

/** {@link secureRemove} on a SQLite database and its side files (`-wal`, `-shm`, `-journal`). */
export async function secureRemoveDb(path: string): Promise<void> {
  for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) await secureRemove(p);
}
