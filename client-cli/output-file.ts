/**
 * Files the CLI writes whole: secrets (a PKCS#12, an envelope with its one-time password, the
 * profile's key and session) and the few public ones written beside them. Every such file is
 * written to a new hidden file in the target's folder (`.<name>.sigil-new-<pid>-<random>`,
 * created exclusively with its final mode), flushed to disk, then renamed over the target.
 *
 * So the target is never half written, it never keeps the mode of a file it replaces (a
 * `writeFile(path, data, { mode })` over an existing 0644 file left a PKCS#12 world-readable: the
 * mode applies only when a file is created), and there is no moment when it has a looser mode. A
 * symbolic link at the target is replaced by the file, never written through: these commands
 * replace what is at the name they are given, as their `--force`-less overwrite always did, and
 * never someone else's file a link points at. (`download`, which refuses an existing output
 * without `--force`, has its own partial file: messaging/partial-file.ts.)
 *
 * Staging comes apart from committing, so a command can find out that it cannot write its output
 * (a missing folder, no permission) before it does anything that cannot be undone: before the
 * appliance issues a certificate or creates an account, before keygen replaces the profile's key.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CliError } from './errors.js';

/** Owner-only (secrets), or readable by all (certificates, requests, the CA). */
export type OutputMode = 0o600 | 0o644;

/** The `code` of a Node system error (ENOENT, EEXIST, …), if it has one. */
export const codeOf = (err: unknown): string | undefined => (err as { code?: string } | null)?.code;

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'its folder does not exist',
  ENOTDIR: 'a part of its path is not a folder',
  EISDIR: 'it is a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'the name is too long',
  EEXIST: 'something appeared at its name meanwhile (not replaced)',
};

/** An output file could not be written; nothing was left at its name or beside it. */
export class OutputFileError extends CliError {
  constructor(file: string, cause: unknown) {
    const code = codeOf(cause);
    super('OUTPUT_UNWRITABLE', `cannot write ${file}: ${(code && REASONS[code]) ?? code ?? 'unknown error'}`, { cause });
  }
}

/**
 * A new hidden name beside `target` that says what it is and which process made it:
 * `.<name><mark><pid>-<12 hex>`. The target's name is cut to 40 characters (at most 160 bytes), so
 * with a short mark and a pid of up to 10 digits the whole stays under NAME_MAX (255 bytes). In
 * the target's folder so the final rename stays on one file system and is atomic.
 */
export function hiddenSiblingPath(target: string, mark: string, pid: number = process.pid): string {
  const name = [...basename(target)].slice(0, 40).join('');
  return join(dirname(target), `.${name}${mark}${pid}-${randomBytes(6).toString('hex')}`);
}

/** A new hidden name beside `target`: `.<name>.sigil-new-<pid>-<12 hex>`. */
export function stagingPathFor(target: string): string {
  return hiddenSiblingPath(target, '.sigil-new-');
}

/** An output file being prepared: nothing is at the target's name until {@link StagedFile.commit}. */
export interface StagedFile {
  readonly target: string;
  /** The hidden file beside the target. */
  readonly path: string;
  /** Writes the whole content to the hidden file and flushes it to disk. Once. */
  write(data: string | Uint8Array): Promise<void>;
  /** Renames the written file over the target (atomic: the old file or the new one, whole). */
  commit(): Promise<void>;
  /** Removes the hidden file; harmless after a commit, and twice. */
  discard(): Promise<void>;
}

/**
 * Creates the hidden file for `target` (exclusively, so never through a link or over another
 * file, and with `mode` from the start).
 * @throws OutputFileError when the target is a folder or its folder cannot be written
 */
export async function stageFile(target: string, o: { mode: OutputMode }): Promise<StagedFile> {
  const st = await lstat(target).catch((err: unknown) => (codeOf(err) === 'ENOENT' ? undefined : Promise.reject(err)));
  if (st?.isDirectory()) throw new OutputFileError(target, Object.assign(new Error('is a folder'), { code: 'EISDIR' }));
  const path = stagingPathFor(target);
  let fh: FileHandle | undefined;
  try {
    fh = await open(path, 'wx', o.mode);
  } catch (err) {
    throw new OutputFileError(target, err);
  }
  let state: 'open' | 'written' | 'committed' | 'discarded' = 'open';
  const close = async (): Promise<void> => {
    const h = fh;
    fh = undefined;
    await h?.close();
  };
  return {
    target,
    path,
    async write(data) {
      if (state !== 'open' || !fh) throw new Error(`staged file for ${target} was already written or discarded`);
      try {
        await fh.writeFile(data);
        // The rename must never publish a name whose bytes are not on disk yet.
        await fh.sync();
        await close();
      } catch (err) {
        throw new OutputFileError(target, err);
      }
      state = 'written';
    },
    async commit() {
      if (state !== 'written') throw new Error(`staged file for ${target} is not written`);
      try {
        await rename(path, target);
      } catch (err) {
        throw new OutputFileError(target, err);
      }
      state = 'committed';
    },
    async discard() {
      if (state === 'committed' || state === 'discarded') return;
      state = 'discarded';
      await close().catch(() => undefined);
      await unlink(path).catch(() => undefined);
    },
  };
}

/**
 * Writes `data` to `target` as a new file of `mode` (staged, then renamed over the target).
 * @throws OutputFileError; then the target is as it was and no hidden file is left
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, o: { mode: OutputMode }): Promise<void> {
  const staged = await stageFile(target, o);
  try {
    await staged.write(data);
    await staged.commit();
  } finally {
    await staged.discard();
  }
}

/**
 * What is wrong with `path` as something only this user may change, or undefined when nothing is:
 * it must be a real `kind` (never a symbolic link), owned by this process's user, with no group
 * or other write bit (ssh/gpg style). POSIX only: on Windows `process.getuid` does not exist and
 * the folder's ACLs decide, so nothing is checked there (always undefined). A missing path is
 * `'missing'`, for the caller to judge.
 */
export async function unsafeReason(path: string, kind: 'folder' | 'file'): Promise<string | 'missing' | undefined> {
  if (typeof process.getuid !== 'function') return undefined;
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return 'missing';
    throw err;
  }
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (kind === 'folder' ? !st.isDirectory() : !st.isFile()) return `is not a ${kind === 'folder' ? 'folder' : 'regular file'}`;
  const uid = process.getuid();
  if (st.uid !== uid) return `belongs to uid ${st.uid}, not to you (uid ${uid})`;
  if ((st.mode & 0o022) !== 0) return `is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}

/** An output folder that someone else could change while the CLI writes into it. */
export class UnsafeOutputFolderError extends CliError {
  constructor(dir: string, reason: string) {
    super(
      'OUTPUT_UNSAFE',
      `output folder ${dir} ${reason}; refusing to write into it: use a new folder of your own` +
        (reason.startsWith('is writable') ? ` or run: chmod go-w ${dir}` : ''),
    );
  }
}

/**
 * Creates `dir` (0700) when missing, then refuses it unless it is a real folder owned by this user
 * and not writable by group or others: from then on nobody else can add a link or a file in it.
 * @throws UnsafeOutputFolderError
 */
export async function makeOwnFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    // EEXIST from a recursive mkdir: something that is not a folder has the name (a file, a link
    // to one). Said as such, as every other refusal of the folder, never as mkdir's bare error.
    if (codeOf(err) === 'EEXIST') throw new UnsafeOutputFolderError(dir, 'is not a folder');
    throw new OutputFileError(dir, err);
  }
  const reason = await unsafeReason(dir, 'folder');
  if (reason === 'missing') throw new OutputFileError(dir, Object.assign(new Error('vanished'), { code: 'ENOENT' }));
  if (reason) throw new UnsafeOutputFolderError(dir, reason);
}

/**
 * Opens `path` as a new file (O_CREAT|O_EXCL: never through a symbolic link, never an existing
 * file). With `replace`, whatever is at the name (a file or a link, never followed) is removed
 * first.
 */
export async function openNewFile(path: string, o: { mode: OutputMode; replace?: boolean }): Promise<FileHandle> {
  if (o.replace) await unlink(path).catch((err: unknown) => (codeOf(err) === 'ENOENT' ? undefined : Promise.reject(new OutputFileError(path, err))));
  try {
    return await open(path, 'wx', o.mode);
  } catch (err) {
    throw new OutputFileError(path, err);
  }
}

/**
 * Writes `data` to `path` as a new file ({@link openNewFile}).
 * @throws OutputFileError; then no file is left at `path`: one that failed part-way (a full disk,
 *   a file size limit) is removed, never left cut short. It was created new here (O_EXCL), so
 *   it is ours to remove.
 */
export async function writeNewFile(path: string, data: string | Uint8Array, o: { mode: OutputMode; replace?: boolean }): Promise<void> {
  const fh = await openNewFile(path, o);
  let written = false;
  try {
    await fh.writeFile(data);
    written = true;
    // The close may be where a delayed write error shows (a full disk on some file systems).
    await fh.close();
  } catch (err) {
    if (!written) await fh.close().catch(() => undefined);
    await unlink(path).catch(() => undefined);
    throw new OutputFileError(path, err);
  }
}

/**
 * The files a command writes into an output folder, each new ({@link openNewFile}), so that a
 * command that fails part-way can take back what it wrote ({@link NewFiles.removeAll}): an export
 * missing its last files, or with one cut short, must not pass for a whole one.
 */
export class NewFiles {
  private readonly paths: string[] = [];

  /** Opens `path` as a new file and remembers it. */
  async open(path: string, o: { mode: OutputMode; replace?: boolean }): Promise<FileHandle> {
    const fh = await openNewFile(path, o);
    this.paths.push(path);
    return fh;
  }

  /** {@link writeNewFile}, remembered. */
  async write(path: string, data: string | Uint8Array, o: { mode: OutputMode; replace?: boolean }): Promise<void> {
    await writeNewFile(path, data, o);
    this.paths.push(path);
  }

  /** Removes every file written so far (best effort: what cannot be removed stays). */
  async removeAll(): Promise<void> {
    for (const p of this.paths.splice(0)) await unlink(p).catch(() => undefined);
  }
}
