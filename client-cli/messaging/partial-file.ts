/**
 * Where a download's bytes land before they are verified: a hidden partial file beside the
 * target (`.<name>.sigil-partial-<pid>-<random>`, created exclusively, mode 0600), never the target
 * itself. The target's name appears only once the bytes match the signed header, in one link or
 * rename, so a failed, interrupted or killed transfer never leaves unverified content under the
 * name the user asked for, and `--force` never harms the file it replaces before the new one is good.
 *
 * A failed or signalled download removes its own partial file; one that was killed outright
 * (SIGKILL, a power cut) cannot, so the next download into the same folder does
 * (`removeStalePartials`): the owner's pid in the name tells a dead download from a live one.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { link, lstat, open, readdir, rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname, join } from 'node:path';
import { CliError, UsageError } from '../errors.js';
import { codeOf, hiddenSiblingPath } from '../output-file.js';
import { OutputExistsError } from './errors.js';

/**
 * A signal (Ctrl-C, kill, a closed terminal) stopped a download; the partial file is gone.
 * Not in `exit-codes.ts`'s table, so a plain failure (1): nothing was verified or refused.
 */
export class DownloadInterruptedError extends CliError {
  constructor(file: string, why: string) {
    super('DOWNLOAD_INTERRUPTED', `download of ${file} interrupted (${why}); the partial file was removed and nothing was saved`);
  }
}

export interface PartialFile {
  /** The hidden file the bytes are written to. */
  readonly path: string;
  /** Write stream on `path`; it flushes to disk before it closes. */
  readonly stream: WriteStream;
  /** Puts the written (and verified) file at the target; without `force`, never over an existing one. */
  commit(): Promise<void>;
  /** Removes the partial file (never the target); safe to call at any point, and twice. */
  discard(): Promise<void>;
}

const MARK = '.sigil-partial-';
/** This version's name; group 1 is the owner's pid (no leading zero, at most 10 digits). */
const OWNED = /^\..*\.sigil-partial-([1-9][0-9]{0,9})-[0-9a-f]{12}$/s;
/** Earlier versions' name, without an owner. */
const UNOWNED = /^\..*\.sigil-partial-[0-9a-f]{12}$/s;

/**
 * Hidden, says what it is and which process owns it, unique: `.<name>.sigil-partial-<pid>-<12 hex>`.
 * (output-file.ts `hiddenSiblingPath`, which keeps it under NAME_MAX.)
 */
export function partialPathFor(target: string, pid: number = process.pid): string {
  return hiddenSiblingPath(target, MARK, pid);
}

/**
 * How old an earlier version's partial file (no pid in its name) must be before it is taken for
 * abandoned: a live download writes to its file at least every 5 minutes (the transfer's idle
 * timeout) or fails and removes it, so a day without a write is no live download.
 */
export const UNOWNED_STALE_MS = 24 * 60 * 60 * 1000;

/**
 * Whether process `pid` exists: `process.kill(pid, 0)` sends nothing and only checks. Only
 * ESRCH says "gone"; EPERM (it exists, as another user) and anything else count as alive, so
 * a doubt keeps the file.
 */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return codeOf(err) !== 'ESRCH';
  }
}

export interface StalePartialsOptions {
  /** Milliseconds since the epoch; default `Date.now`. */
  now?: () => number;
  /** Whether a process exists; default `processExists`. */
  isAlive?: (pid: number) => boolean;
}

/**
 * Removes, from `target`'s folder, the partial files that downloads killed outright left there:
 * a name of this version whose owner process no longer exists, or an earlier version's name
 * (no pid) not written for `UNOWNED_STALE_MS`. Only names of exactly those forms, only regular
 * files (lstat: a symlink is neither followed nor removed), only the current user's where the
 * platform tells (`process.getuid`), never `target` itself. A partial file of a live download
 * (its pid exists, or EPERM says it belongs to another user) stays. Never throws: a folder that
 * cannot be read, or a file that cannot be removed, is left as it is.
 * @returns the names removed (without the folder), in folder order
 * @example const removed = await removeStalePartials('/home/alee/report.pdf');
 */
export async function removeStalePartials(target: string, o: StalePartialsOptions = {}): Promise<string[]> {
  const folder = dirname(target);
  const own = basename(target);
  const isAlive = o.isAlive ?? processExists;
  const uid = process.getuid?.();
  const names = await readdir(folder).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (name === own || !name.includes(MARK)) continue;
    const owned = OWNED.exec(name);
    if (owned === null && !UNOWNED.test(name)) continue;
    const path = join(folder, name);
    const st = await lstat(path).catch(() => undefined);
    if (st === undefined || !st.isFile() || (uid !== undefined && st.uid !== uid)) continue;
    const stale = owned !== null ? !isAlive(Number(owned[1])) : (o.now ?? Date.now)() - st.mtimeMs > UNOWNED_STALE_MS;
    if (!stale) continue;
    // unlink removes the name, never what a symlink points to, should one have replaced the
    // file since the lstat.
    if (await unlink(path).then(() => true, () => false)) removed.push(name);
  }
  return removed;
}

/**
 * The one line `sigil download` prints (stderr) when it removed stale partial files, or
 * undefined when it removed none. Names are shortened to `.<name>.sigil-partial-…` (at most 3),
 * control characters shown as `?`.
 * @example staleNotice(['.a.pdf.sigil-partial-4242-0123456789ab']) // 'removed 1 unfinished download left by an earlier run (.a.pdf.sigil-partial-…)'
 */
export function staleNotice(removed: readonly string[]): string | undefined {
  if (removed.length === 0) return undefined;
  const shown = [...new Set(removed.map((n) => n.slice(0, n.lastIndexOf(MARK) + MARK.length).replace(/[\x00-\x1f\x7f]/g, '?') + '…'))];
  const list = shown.slice(0, 3).join(', ') + (shown.length > 3 ? ', …' : '');
  return removed.length === 1
    ? `removed 1 unfinished download left by an earlier run (${list})`
    : `removed ${removed.length} unfinished downloads left by earlier runs (${list})`;
}

/**
 * Refuses before any byte is fetched what the commit would refuse anyway: an existing target
 * without `force` (a dangling symlink counts, as it did for an exclusive create), or a folder
 * (which even `force` cannot replace).
 */
async function checkTarget(target: string, force: boolean): Promise<void> {
  const st = await lstat(target).catch((err: unknown) => {
    if (codeOf(err) === 'ENOENT') return undefined;
    throw err;
  });
  if (st === undefined) return;
  if (st.isDirectory()) throw new UsageError(`${target} is a folder; --out must name a file`);
  if (!force) throw new OutputExistsError(target);
}

/**
 * Creates the partial file for `target` (in its folder, so the final rename stays on one file
 * system and is atomic).
 * @throws OutputExistsError when `target` exists and `force` is not set; UsageError when it is a folder
 */
export async function createPartial(target: string, o: { force: boolean }): Promise<PartialFile> {
  await checkTarget(target, o.force);
  const path = partialPathFor(target);
  // flush: the rename below must never publish a name whose bytes are not on disk yet (after a
  // power loss the target would be empty or short).
  const stream = createWriteStream(path, { flags: 'wx', mode: 0o600, flush: true });
  await once(stream, 'open');
  return {
    path,
    stream,
    async commit() {
      // Finished (and flushed) by the pipeline; wait for the descriptor to close, which Windows
      // needs before a rename.
      if (!stream.closed) await once(stream, 'close');
      if (o.force) return rename(path, target);
      try {
        // link fails with EEXIST if the target appeared meanwhile: the no-overwrite promise
        // holds to the last moment, which a check followed by rename would not give.
        await link(path, target);
      } catch (err) {
        if (codeOf(err) === 'EEXIST') throw new OutputExistsError(target);
        return renameOverReservation(path, target);
      }
      // The target is complete and verified; a failure here leaves only a second name for it.
      await unlink(path).catch(() => undefined);
    },
    async discard() {
      if (!stream.closed) {
        stream.destroy();
        await once(stream, 'close').catch(() => undefined);
      }
      await unlink(path).catch(() => undefined);
    },
  };
}

/**
 * Without hard links (FAT/exFAT removable media, some network shares): reserve the target's
 * name with an exclusive create, then rename the verified file over that empty reservation of
 * our own. A crash in between leaves an empty file, never unverified content.
 */
async function renameOverReservation(path: string, target: string): Promise<void> {
  try {
    await (await open(target, 'wx', 0o600)).close();
  } catch (err) {
    throw codeOf(err) === 'EEXIST' ? new OutputExistsError(target) : err;
  }
  try {
    await rename(path, target);
  } catch (err) {
    await unlink(target).catch(() => undefined);
    throw err;
  }
}
