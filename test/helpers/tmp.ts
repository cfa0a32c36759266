/**
 * Temporary directories for tests: real files on the real file system, removed at teardown.
 */
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Minimal slice of a tap `Test` we need, so this helper does not depend on tap's types. */
interface Teardownable {
  teardown(fn: () => void | Promise<void>): void;
}

/**
 * Creates a fresh directory (mode 0700) under the OS temp dir, removed when `t` ends.
 *
 * @example const dir = tmpDir(t, 'vault-');
 */
export function tmpDir(t: Teardownable, prefix = 'sigil-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o700);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
