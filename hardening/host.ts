/**
 * The host being audited: the real one (`/`) or a directory tree standing for one. Every control
 * reads through this, so the same control judges a live host and a test tree.
 *
 * A tree is self-contained: a symbolic link inside it is resolved inside it, as the kernel resolves
 * it for the host the tree stands for (a chroot, or openat2's RESOLVE_IN_ROOT). An absolute target
 * (`/usr/lib/sysctl.d/x.conf`, what a mounted appliance image is full of) names that path under the
 * root, and `..` stops at the root. Otherwise `check --root` would judge the auditing machine's
 * files as the tree's and vouch for a host it never read.
 */
import { constants, type Stats } from 'node:fs';
import { access, lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { dirname, join, posix, resolve } from 'node:path';
import { ProgramDirInvalidError } from './errors.js';

/**
 * Where a live host's system programs (`nft`) are looked for when PATH lacks them: fixed,
 * absolute, root-owned locations only (never the current directory nor a writable place). cron
 * and some service managers run with a PATH without the sbin directories.
 */
export const SYSTEM_PROGRAM_DIRS: readonly string[] = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** Links followed while resolving one path before giving up, as the kernel's ELOOP limit. */
const MAX_LINKS = 40;

/** Options of {@link Host}. */
export interface HostOptions {
  /**
   * Directories searched, after PATH, for the programs a live host's controls run. Absolute
   * paths on this machine. Default {@link SYSTEM_PROGRAM_DIRS}; tests pass a directory holding a
   * fake program.
   */
  programDirs?: readonly string[];
}

/** Where a program was found, or every directory searched for it. */
export type ProgramLookup = { found: true; path: string } | { found: false; searched: string[] };

/** Read-only view of a host's file system rooted at `root`. */
export class Host {
  /** Absolute root directory. */
  readonly root: string;
  /** Directories searched for programs after PATH (see {@link HostOptions.programDirs}). */
  readonly programDirs: readonly string[];

  /** @throws ProgramDirInvalidError when a directory of `options.programDirs` is not absolute. */
  constructor(root: string, options: HostOptions = {}) {
    this.root = resolve(root);
    const dirs = options.programDirs ?? SYSTEM_PROGRAM_DIRS;
    // A relative directory would be searched from wherever check happens to run.
    for (const dir of dirs) if (!posix.isAbsolute(dir)) throw new ProgramDirInvalidError(dir);
    this.programDirs = [...dirs];
  }

  /** True when auditing the running system (root `/`): /proc and /sys describe it. */
  get live(): boolean {
    return this.root === '/';
  }

  /**
   * Host path (`/etc/fstab`) → path on this machine, joined as text: links in it are not resolved
   * (the readers below resolve them inside the tree).
   */
  path(hostPath: string): string {
    return join(this.root, hostPath);
  }

  /**
   * Host path → path on this machine with every symbolic link resolved inside the root, so that
   * reading it follows no link out of the tree. A live host (`/`) is left to the kernel. A missing
   * component ends the resolution: the rest is appended as it is and reading it fails ENOENT.
   * With `followLast` false the last component is not followed (to read a link itself).
   *
   * @throws an ELOOP error after {@link MAX_LINKS} links.
   */
  async resolve(hostPath: string, followLast = true): Promise<string> {
    return this.live ? this.path(hostPath) : this.walk(hostPath, { followLast });
  }

  /**
   * {@link resolve}'s walk, on a live host too, calling `lookIn` with every directory (a path on
   * this machine) a name of the path is looked up in: whoever can write one of them can put
   * another file, or a link, under that name (unit.preload judges each).
   */
  async walk(hostPath: string, opts: { followLast?: boolean; lookIn?: (dir: string) => Promise<void> } = {}): Promise<string> {
    const followLast = opts.followLast ?? true;
    const todo = components(hostPath);
    const done: string[] = [];
    let links = 0;
    while (todo.length > 0) {
      const name = todo.shift() as string;
      if (name === '..') {
        done.pop(); // at the root, `..` is the root (as in a chroot)
        continue;
      }
      await opts.lookIn?.(join(this.root, ...done));
      const here = join(this.root, ...done, name);
      let st: Stats;
      try {
        st = await lstat(here);
      } catch (err) {
        if (!isMissing(err)) throw err;
        // Not joined by join(): a later `..` must not cancel the missing name and reach a file.
        return [here, ...todo].join('/');
      }
      if (!st.isSymbolicLink() || (!followLast && todo.length === 0)) {
        // A file with more to come (`/etc/hostname/../x`): the kernel answers ENOTDIR there, so
        // must the read, rather than let a later `..` pop the file and reach what lies beside it.
        if (todo.length > 0 && !st.isDirectory()) return [here, ...todo].join('/');
        done.push(name);
        continue;
      }
      if (++links > MAX_LINKS) throw Object.assign(new Error(`too many levels of symbolic links resolving ${hostPath} in ${this.root}`), { code: 'ELOOP' });
      const target = await readlink(here);
      // An absolute target starts again from the tree's root, never from this machine's.
      if (target.startsWith('/')) done.length = 0;
      todo.unshift(...components(target));
    }
    return join(this.root, ...done);
  }

  /** Text of a file, or `undefined` when it does not exist (or is not a readable file). */
  async readText(hostPath: string): Promise<string | undefined> {
    try {
      return await readFile(await this.resolve(hostPath), 'utf8');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** Names in a directory, sorted; `[]` when it does not exist. */
  async list(hostPath: string): Promise<string[]> {
    try {
      return (await readdir(await this.resolve(hostPath))).sort();
    } catch (err) {
      if (isMissing(err)) return [];
      throw err;
    }
  }

  /** `stat` (following links, inside the tree), or `undefined` when absent. */
  async stat(hostPath: string): Promise<Stats | undefined> {
    try {
      return await stat(await this.resolve(hostPath));
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** Target of a symbolic link, or `undefined` when the path is absent or not a link. */
  async linkTarget(hostPath: string): Promise<string | undefined> {
    try {
      const path = await this.resolve(hostPath, false);
      const st = await lstat(path);
      return st.isSymbolicLink() ? await readlink(path) : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /**
   * Files `*.conf` of a configuration directory set (`/etc/X.d`, `/run/X.d`, `/usr/lib/X.d`, …) in
   * the order systemd and kmod apply them: one file per name, the earlier directory winning, sorted
   * by name. Returns host paths (read them with {@link readText}, which resolves links in the tree).
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

  /**
   * Finds a program this machine can run for a live host: the absolute directories of PATH (read
   * now), then {@link programDirs}. Relative PATH entries (`.`, an empty one) are skipped: check
   * runs as root and must not run a program from wherever it was started — nor one that another
   * user could have replaced (the file or its directory owned by someone else than root or this
   * user, or writable by group or others): such a candidate is passed over and named in `searched`.
   */
  async findProgram(name: string): Promise<ProgramLookup> {
    const pathDirs = (process.env.PATH ?? '').split(':').filter((d) => posix.isAbsolute(d));
    const searched = [...new Set([...pathDirs, ...this.programDirs])];
    const report: string[] = [];
    for (const dir of searched) {
      const path = join(dir, name);
      if (!(await isExecutableFile(path))) {
        report.push(dir);
        continue;
      }
      // check runs as root: a program that someone else could have replaced is not run.
      const unsafe = await writableByOthers(path);
      if (unsafe === undefined) return { found: true, path };
      report.push(`${dir} (${name} there not run: ${unsafe})`);
    }
    return { found: false, searched: report };
  }
}

/** The names of a path, without the empty ones and `.`. */
function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * How someone other than root could change a file or directory (`owned by uid 1000`, `writable by
 * group or others (mode 0666)`), or undefined. The user running check counts as root: on a live
 * host check runs as root, and a test tree belongs to whoever built it.
 */
export function changeableByOthers(st: Stats): string | undefined {
  const me = process.geteuid?.() ?? 0;
  if (st.uid !== 0 && st.uid !== me) return `owned by uid ${st.uid}, not root`;
  if ((st.mode & 0o022) !== 0) return `writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/** Why someone other than root and this user could replace the program at `path` (it or its directory), or undefined. */
async function writableByOthers(path: string): Promise<string | undefined> {
  for (const p of [path, dirname(path)]) {
    const why = changeableByOthers(await stat(p));
    if (why) return `${p} is ${why}`;
  }
  return undefined;
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** An error saying the path is not there (or not a file/directory where one was expected). */
export function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}
