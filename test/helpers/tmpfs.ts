/**
 * A real size-limited tmpfs (as root), unmounted and removed when `t` ends; undefined — with the
 * test planned empty and `why` said — where it cannot be mounted. No injected error stands in.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export function mountTmpfs(t: { teardown(fn: () => void): void; plan(n: number, why: string): void }, mib: number, why: string): string | undefined {
  const mnt = mkdtempSync(join(tmpdir(), 'sigil-tmpfs-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', mnt]).status === 0;
  t.teardown(() => {
    if (mounted) spawnSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  if (mounted) return mnt;
  t.plan(0, `cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): ${why}`);
  return undefined;
}

const MiB = 1024 * 1024;

/** Free bytes for an unprivileged process on `dir`'s file system. */
export function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

/**
 * Writes into `path` until the file system says ENOSPC, down to its last block, or — given
 * `leave` — until no more than about `leave` bytes (+1 MiB) are free. Answers the bytes written.
 */
export function fillUp(path: string, leave?: number): number {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(MiB, 0xa5);
  let written = 0;
  try {
    if (leave !== undefined) {
      while (freeBytes(dirname(path)) > leave + MiB) written += writeSync(fd, block);
      return written;
    }
    for (let size = MiB; size >= 512; size /= 2) {
      try {
        for (;;) written += writeSync(fd, block.subarray(0, size));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}
