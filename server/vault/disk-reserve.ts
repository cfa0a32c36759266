/**
 * The disk reserve: a file beside vault.db that holds back the room a deletion needs on a
 * disk that is otherwise full to the last byte (README.md, "A full disk"). Every change, a delete
 * too, goes to the WAL first (secure_delete writes each freed page, zeroed), and a checkpoint must
 * grow vault.db to take the WAL's frames past its end: with no free byte, nothing can be deleted.
 *
 * Made when the vault opens, if the disk has room for it and a margin; released (unlinked) when an
 * operation that frees space meets VAULT_FULL ({@link DiskReserve.freeing}); made again, once the
 * disk has room, by {@link DiskReserve.remake} (messaging's sweep tick). While it is not in place
 * {@link DiskReserve.takesNewData} is false: callers refuse new messages and uploads, so that what
 * it freed goes to deletions and not to more data.
 *
 * The file holds random bytes (no secret: fresh, never used for anything) written block by block:
 * a sparse file reserves nothing, and zeros reserve nothing on a file system that compresses (btrfs
 * reports their logical size while storing a few KiB) or drops zero blocks (ZFS).
 */
import { randomFillSync } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { VaultFullError } from './errors.js';

/** The reserve's file name in the vault directory (beside vault.db: the same file system). */
export const DISK_RESERVE_FILE = 'disk-reserve';

const MiB = 1024 * 1024;

/** Free space kept beyond the reserve when making it, so that making it never fills the disk. Default 16 MiB. */
export const DEFAULT_RESERVE_MARGIN_BYTES = 16 * MiB;

/** Whether the reserve is off (not managed), in place, or missing (released, or no room to make it). */
export type ReserveState = 'off' | 'held' | 'released';

export interface DiskReserveOptions {
  /** The vault directory. */
  dir: string;
  /** Size in bytes; 0 = off (a file left from an earlier setting is removed). */
  bytes: number;
  /** Free space that must remain after making it. Default {@link DEFAULT_RESERVE_MARGIN_BYTES}. */
  marginBytes?: number;
  /** Truncates both WALs, best effort: run between releasing the reserve and the retry. */
  checkpoint: () => Promise<void>;
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** Free bytes for an unprivileged process on `dir`'s file system (a test seam). Default statfs. */
  freeBytes?: (dir: string) => Promise<number>;
  /** It was in place until {@link releaseReserveToOpen} released it for this run: re-made without the margin. */
  heldBefore?: boolean;
}

const BLOCK_BYTES = MiB;
const FULL = new VaultFullError('').code;

/**
 * Whether a reserve file (its stat, or undefined when there is none) is there at full size, every
 * block allocated (not sparse, not cut short by a crash). Also `sigil-server status`'s check.
 */
export function reserveIsWhole(st: { size: number; blocks: number } | undefined, bytes: number): boolean {
  return st !== undefined && st.size === bytes && st.blocks * 512 >= bytes;
}

async function statfsFree(dir: string): Promise<number> {
  const s = await statfs(dir);
  return s.bavail * s.bsize;
}

/**
 * Free bytes below which a start releases the reserve before anything else
 * ({@link releaseReserveToOpen}): the start's claim and run files, each database's -shm (32 KiB)
 * and -wal, and the few pages the start writes.
 */
export const OPEN_ROOM_BYTES = MiB;

/**
 * Before a start writes anything: a disk with less than {@link OPEN_ROOM_BYTES} free cannot hold
 * the start's claim and run files, nor SQLite's -shm and -wal, so the appliance could not start —
 * nor, then, delete anything to make room. A reserve file an earlier run left in `dir` is removed
 * for that. As after any release, the vault then refuses new data until the reserve is made again,
 * which needs only the room it gave back (pass the answer as {@link DiskReserveOptions.heldBefore}).
 * Answers whether it removed one. The caller makes sure no other process holds the vault.
 */
export async function releaseReserveToOpen(
  dir: string,
  bytes: number,
  log?: (event: string, fields: Record<string, unknown>) => void,
  freeBytes: (dir: string) => Promise<number> = statfsFree,
): Promise<boolean> {
  if (bytes === 0) return false;
  const path = join(dir, DISK_RESERVE_FILE);
  if (!(await stat(path).catch(() => undefined))) return false;
  const free = await freeBytes(dir);
  if (free >= OPEN_ROOM_BYTES) return false;
  await rm(path, { force: true });
  log?.('vault.reserve-released', { file: path, bytes, free, reason: 'the disk was full when the vault opened' });
  return true;
}

export class DiskReserve {
  readonly path: string;
  readonly bytes: number;
  readonly #margin: number;
  readonly #opts: DiskReserveOptions;
  #state: ReserveState;
  #making: Promise<ReserveState> | undefined;
  #lastLook = 0;
  #noRoomSaid = false;
  /** Operations running on the released room ({@link afterFull}): no make takes it back meanwhile. */
  #freeingNow = 0;
  /** Held once in this process: re-making it then needs only the room it gave back, no margin. */
  #wasHeld = false;

  constructor(opts: DiskReserveOptions) {
    this.#opts = opts;
    this.path = join(opts.dir, DISK_RESERVE_FILE);
    this.bytes = opts.bytes;
    this.#margin = opts.marginBytes ?? DEFAULT_RESERVE_MARGIN_BYTES;
    this.#state = opts.bytes > 0 ? 'released' : 'off';
    this.#wasHeld = opts.bytes > 0 && opts.heldBefore === true;
  }

  get state(): ReserveState {
    return this.#state;
  }

  /** False while the reserve is on but not in place: new messages and uploads are to be refused. */
  get takesNewData(): boolean {
    return this.#state !== 'released';
  }

  /**
   * Makes the reserve if it is missing and the disk has room for it and the margin; keeps a whole
   * one that is there. Never throws: a reserve that cannot be made is logged and stays missing.
   */
  make(): Promise<ReserveState> {
    if (this.#freeingNow > 0) return Promise.resolve(this.#state);
    this.#making ??= this.#make()
      .catch((err: unknown) => {
        this.#log('vault.reserve-failed', { bytes: this.bytes, errorMessage: err instanceof Error ? err.message : String(err) });
        return this.#state;
      })
      .finally(() => (this.#making = undefined));
    return this.#making;
  }

  /**
   * {@link make}, only when the reserve is missing: the sweep tick, and each refused write (so a
   * disk given room is seen within a second, not a minute), which pass `notWithinMs` so that a
   * stream of them looks at the disk at most that often.
   */
  async remake(notWithinMs = 0): Promise<ReserveState> {
    const now = Date.now();
    if (this.#state !== 'released' || now - this.#lastLook < notWithinMs) return this.#state;
    this.#lastLook = now;
    return this.make();
  }

  async #make(): Promise<ReserveState> {
    if (this.bytes === 0) {
      await rm(this.path, { force: true });
      return this.#state;
    }
    if (await this.#whole()) return this.#held();
    await rm(this.path, { force: true }); // a part written before a crash, or another size
    const free = await (this.#opts.freeBytes ?? statfsFree)(this.#opts.dir);
    // After a release the deletions it made room for free pages inside vault.db, not on the file
    // system: asking for the margin too would keep the reserve (and so new data) out until the
    // operator freed space. Taking back the room it gave is the safer state: deletions work again.
    if (free < this.bytes + (this.#wasHeld ? 0 : this.#margin)) {
      if (!this.#noRoomSaid) this.#log('vault.reserve-no-room', { bytes: this.bytes, free });
      this.#noRoomSaid = true; // once until the reserve is made, not at every tick
      return (this.#state = 'released');
    }
    try {
      await this.#write();
    } catch (err) {
      await rm(this.path, { force: true }).catch(() => undefined);
      this.#log('vault.reserve-failed', { bytes: this.bytes, free, errorMessage: err instanceof Error ? err.message : String(err) });
      return (this.#state = 'released');
    }
    this.#log('vault.reserve-made', { bytes: this.bytes });
    this.#noRoomSaid = false;
    return this.#held();
  }

  #held(): ReserveState {
    this.#wasHeld = true;
    return (this.#state = 'held');
  }

  async #whole(): Promise<boolean> {
    return reserveIsWhole(await stat(this.path).catch(() => undefined), this.bytes);
  }

  async #write(): Promise<void> {
    const f = await open(this.path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      const block = new Uint8Array(BLOCK_BYTES);
      for (let at = 0; at < this.bytes; at += block.length) {
        const n = Math.min(block.length, this.bytes - at);
        // Incompressible and never twice the same block: a compressing or deduplicating file
        // system stores it whole. ~2 ms per MiB, once per start or release.
        randomFillSync(block, 0, n);
        await f.write(block, 0, n, at);
      }
      await f.sync(); // allocated now, not at some later write-back that could meet a full disk
    } finally {
      await f.close();
    }
    if (!(await this.#whole())) throw new Error('the file system did not allocate the bytes written');
  }

  /**
   * Unlinks the reserve so that a deletion can use its room. Answers whether it was in place.
   * Waits for a reserve being made, so that one is never left half-written behind a release.
   */
  async release(why: string): Promise<boolean> {
    await this.#making;
    if (this.#state !== 'held') return false;
    await rm(this.path, { force: true });
    this.#state = 'released';
    this.#log('vault.reserve-released', { bytes: this.bytes, reason: why });
    return true;
  }

  /**
   * Runs an operation that frees space (a deletion, the pending-upload sweep, a checkpoint). If it
   * fails with VAULT_FULL while the reserve is on, releases it (if still in place), truncates both
   * WALs — their frames past the databases' ends are copied in with the released room, and their
   * space given back — and runs it once more. Anything else, or the retry's failure, is thrown.
   * The operation must have written nothing when it fails (one transaction, or idempotent).
   */
  async freeing<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      return this.afterFull(err, op);
    }
  }

  /**
   * The second half of {@link freeing}, for an operation that already failed with `err`: on
   * VAULT_FULL with the reserve on, release, truncate the WALs, run `op`; otherwise throw `err`.
   */
  async afterFull<T>(err: unknown, op: () => Promise<T>): Promise<T> {
    // By code: a fault injected by a test, or a wrapper's error, is VAULT_FULL without the class.
    if ((err as { code?: unknown } | null)?.code !== FULL || this.#state === 'off') throw err;
    this.#freeingNow++;
    try {
      await this.release('an operation that frees space met a full disk');
      await this.#opts.checkpoint();
      return await op();
    } catch (retryErr) {
      // What the failed retry wrote to the WALs (rolled back) is given back, or the room stays lost.
      await this.#opts.checkpoint();
      throw retryErr;
    } finally {
      this.#freeingNow--;
    }
  }

  #log(event: string, fields: Record<string, unknown>): void {
    this.#opts.log?.(event, { file: this.path, ...fields });
  }
}
