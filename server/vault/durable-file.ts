/**
 * Small files that must survive a power cut the moment a function returns: the master-key
 * description (`vault-key.json`, `vault-key.next.json`), a new master-key file, a renewed
 * TLS certificate (certs/tls-renewer.ts), and the files the CA's ceremonies and renewals replace
 * once their audit entry is in ({@link replaceFilesAfter}).
 *
 * `writeFileSync` + `renameSync` is atomic but not durable: until the kernel writes back (tens
 * of seconds), a power cut can lose the file's bytes, or the rename, while SQLite — which does
 * fsync — has already committed keys re-wrapped under the key that file describes. So every
 * write here is: temp file, fsync it, rename (or link) into place, fsync the directory.
 *
 * Synchronous on purpose: the callers are one-off administrative steps (a TLS renewal runs once
 * in ~800 days), and an ordered sequence of syscalls is what this is about.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Errors of fsync(2) on a directory that mean "this file system does not do that", not "the data is lost". */
const DIR_SYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR']);

/** The temp name a durable write of `path` uses (a leftover of a killed write is replaced by the next write). */
export const tempPathOf = (path: string): string => `${path}.tmp`;

/** fsync(2) of a directory, so that a rename or link in it survives a power cut. */
export function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } catch (err) {
    // Some file systems refuse fsync on a directory; the rename itself is still atomic there.
    if (!DIR_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `path` anew (a leftover is removed first; O_EXCL never follows a planted link) with
 * `data` and `mode`, and fsyncs it. Its name is not yet durable: rename or link it, or
 * {@link syncDir}. The caller chooses a name nobody else uses.
 */
export function writeSynced(path: string, data: string | Uint8Array, mode: number): void {
  rmSync(path, { force: true });
  const fd = openSync(path, 'wx', mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fchmodSync(fd, mode); // the umask may have narrowed it; nothing may have widened it
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** rename(2) of `from` over `to`, then fsync of the directory that now holds `to`. */
export function renameDurable(from: string, to: string): void {
  renameSync(from, to);
  syncDir(dirname(to));
}

/**
 * link(2) of `from` to `to` (fails with EEXIST when `to` exists: never replaces a file), unlink
 * of `from`, fsync of the directory.
 */
export function linkDurable(from: string, to: string): void {
  linkSync(from, to);
  rmSync(from, { force: true });
  syncDir(dirname(to));
}

/** Writes `path` durably: {@link writeSynced} to its temp name, then {@link renameDurable}. */
export function writeFileDurable(path: string, data: string | Uint8Array, mode: number): void {
  viaTempFile(path, data, mode, renameDurable);
}

/**
 * Creates `path` durably, never replacing a file: {@link writeSynced} to its temp name, then
 * {@link linkDurable} (EEXIST when `path` exists). Whole or absent after a power cut.
 */
export function createFileDurable(path: string, data: string | Uint8Array, mode: number): void {
  viaTempFile(path, data, mode, linkDurable);
}

/** `data` written to `path`'s temp name, then put at `path` by `place`; the temp file never left behind. */
function viaTempFile(path: string, data: string | Uint8Array, mode: number, place: (from: string, to: string) => void): void {
  const tmp = tempPathOf(path);
  try {
    writeSynced(tmp, data, mode);
    place(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** A file for {@link replaceFilesAfter}: its new content and mode. */
export interface FileReplacement {
  path: string;
  data: string | Uint8Array;
  mode: number;
}

/**
 * Replaces `files` durably once `between` has succeeded — typically the audit entry recording the
 * change, so that no replacement is ever in place without its entry. Each new content is written
 * and fsynced under a temp name of its own first, then `between` runs, then the files are renamed
 * into place in the order given. If a write or `between` fails, nothing is replaced and the temp
 * files are removed. A crash between two renames leaves the first ones replaced: order the files
 * so that any prefix is a usable state.
 */
export async function replaceFilesAfter<T>(files: readonly FileReplacement[], between: () => Promise<T>): Promise<T> {
  const suffix = `${randomBytes(6).toString('hex')}.tmp`;
  const staged = files.map((f) => ({ ...f, tmp: `${f.path}.${suffix}` }));
  try {
    for (const f of staged) writeSynced(f.tmp, f.data, f.mode);
    const result = await between();
    for (const f of staged) renameDurable(f.tmp, f.path);
    return result;
  } finally {
    for (const f of staged) rmSync(f.tmp, { force: true });
  }
}
