/**
 * A real size-limited tmpfs (as root), unmounted and removed when `t` ends; undefined — with the
 * test planned empty and `why` said — where it cannot be mounted. No injected error stands in.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
