/**
 * The host being audited: the real one (`/`) or a directory tree standing for one. Every control
 * reads through this, so the same control judges a live host and a test tree.
 */
import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, resolve } from 'node:path';

/** Read-only view of a host's file system rooted at `root`. */
export class Host {
  /** Absolute root directory. */
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /** True when auditing the running system (root `/`): /proc and /sys describe it. */
  get live(): boolean {
    return this.root === '/';
  }

  /** Host path (`/etc/fstab`) → path on this machine. */
  path(hostPath: string): string {
    return join(this.root, hostPath);
  }

  /** Text of a file, or `undefined` when it does not exist (or is not a readable file). */
  async readText(hostPath: string): Promise<string | undefined> {
    try {
      return await readFile(this.path(hostPath), 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** Names in a directory, sorted; `[]` when it does not exist. */
  async list(hostPath: string): Promise<string[]> {
    try {
      return (await readdir(this.path(hostPath))).sort();
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  /** `stat` (following links), or `undefined` when absent. */
  async stat(hostPath: string): Promise<Stats | undefined> {
    try {
      return await stat(this.path(hostPath));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** Target of a symbolic link, or `undefined` when the path is absent or not a link. */
  async linkTarget(hostPath: string): Promise<string | undefined> {
    try {
      const st = await lstat(this.path(hostPath));
      return st.isSymbolicLink() ? await readlink(this.path(hostPath)) : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /**
   * Files `*.conf` of a configuration directory set (`/etc/X.d`, `/run/X.d`, `/usr/lib/X.d`, …) in
   * the order systemd and kmod apply them: one file per name, the earlier directory winning, sorted
   * by name. Returns host paths.
   */
  async confDirFiles(dirs: readonly string[]): Promise<string[]> {
    const byName = new Map<string, string>();
    for (const dir of dirs) {
      for (const name of await this.list(dir)) {
        // Hidden files are skipped, as systemd-sysctl and kmod skip them: a setting only there is not in effect.
        if (name.endsWith('.conf') && !name.startsWith('.') && !byName.has(name)) byName.set(name, `${dir}/${name}`);
      }
    }
    return [...byName.keys()].sort().map((name) => byName.get(name) as string);
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
