/**
 * Where a download's bytes land before they are verified: a hidden partial file beside the
 * target (`.<name>.sigil-partial-<random>`, created exclusively, mode 0600), never the target
 * itself. The target's name appears only once the bytes match the signed header, in one link or
 * rename, so a failed, interrupted or killed transfer never leaves unverified content under the
 * name the user asked for, and `--force` never harms the file it replaces before the new one is good.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { link, lstat, open, rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import { basename, dirname, join } from 'node:path';
import { CliError, UsageError } from '../errors.js';
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

const codeOf = (err: unknown): string | undefined => (err as { code?: string } | null)?.code;

/** Hidden, says what it is, unique; the target's name is cut so the whole stays under NAME_MAX (255 bytes). */
export function partialPathFor(target: string): string {
  const name = [...basename(target)].slice(0, 40).join('');
  return join(dirname(target), `.${name}.sigil-partial-${randomBytes(6).toString('hex')}`);
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
