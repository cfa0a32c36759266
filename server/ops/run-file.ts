/**
 * Claim files: who holds a data directory.
 *
 * Two files in the data directory, both written the same way (mode 0600, created atomically with
 * link(2) so that two claimants cannot both win, and durably: fsynced before the link, the
 * directory after it) and both judged the same way (a holder whose pid no longer runs, or — Linux —
 * whose pid now belongs to a process started at another time, is "stale" and is replaced by the
 * next claimant, never waited for):
 *
 * - `sigil-server.run.json`, the run file: `sigil-server start` serves this directory (pid, start
 *   time, URL, version). `status` reads it for the uptime; restore, repack and rotate-master-key
 *   refuse to run under it.
 * - `sigil-server.ops.json`, the ops claim: an operations command (backup, restore, repack,
 *   rotate-master-key) works on this directory, or `start` is starting. At most one holds it
 *   (data-claim.ts); everyone else is refused with the holder's name and pid.
 */
import { linkSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { linkDurable, writeSynced } from '../vault/index.js';
import { ServerRunningError } from './errors.js';

/** Name of the run file inside the data directory. */
export const RUN_FILE = 'sigil-server.run.json';

const RunInfoSchema = z.object({
  pid: z.number().int().positive(),
  startedAt: z.string(),
  /** `/proc/<pid>/stat` field 22 (clock ticks since boot) on Linux: tells a reused pid apart. */
  procStart: z.string().optional(),
  url: z.string().optional(),
  version: z.string().optional(),
  /** In the ops claim: the command that holds it (`backup`, `restore`, `start`, …). */
  command: z.string().optional(),
});
/** What a claim file holds. */
export type RunInfo = z.infer<typeof RunInfoSchema>;

/** Whether the process named by a claim file still runs. */
export type RunState =
  | { running: true; info: RunInfo }
  | { running: false; stale?: RunInfo; reason: 'no-run-file' | 'process-gone' | 'pid-reused' | 'unreadable' };

/** Start time of a process from `/proc/<pid>/stat`, or undefined off Linux / if unreadable. */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19]; // field 22 overall = index 19 after "pid (comm)"
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The state of the claim file at `path`, with the text it was judged on. */
function inspectClaim(path: string): { state: RunState; text?: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return { state: { running: false, reason: 'no-run-file' } };
  }
  let info: RunInfo;
  try {
    info = RunInfoSchema.parse(JSON.parse(text));
  } catch {
    return { state: { running: false, reason: 'unreadable' }, text };
  }
  if (!pidAlive(info.pid)) return { state: { running: false, stale: info, reason: 'process-gone' }, text };
  if (info.procStart !== undefined) {
    const now = processStartTicks(info.pid);
    if (now !== undefined && now !== info.procStart) return { state: { running: false, stale: info, reason: 'pid-reused' }, text };
  }
  return { state: { running: true, info }, text };
}

/** Reads the claim file at `path` and decides whether the process it names still holds it. */
export function readClaimState(path: string): RunState {
  return inspectClaim(path).state;
}

/** Reads the run file and decides whether the process it names is still the server. */
export function readRunState(dataDir: string): RunState {
  return readClaimState(join(dataDir, RUN_FILE));
}

/**
 * Refuses to go on while the server runs on `dataDir`.
 * @throws ServerRunningError naming the pid.
 */
export function assertNotRunning(dataDir: string, what: string): void {
  const s = readRunState(dataDir);
  if (s.running) throw serverRunning(dataDir, what, s.info);
}

/** The refusal of `what` under a live server. */
export function serverRunning(dataDir: string, what: string, info: RunInfo): ServerRunningError {
  return new ServerRunningError(
    `${what} needs the server stopped, but sigil-server (pid ${info.pid}, started ${info.startedAt}) serves ${dataDir}; stop it first`,
  );
}

/** This process's claim record. */
export function claimInfo(opts: { pid?: number; now?: () => Date; url?: string; version?: string; command?: string } = {}): RunInfo {
  const pid = opts.pid ?? process.pid;
  const procStart = processStartTicks(pid);
  return {
    pid,
    startedAt: (opts.now ?? (() => new Date()))().toISOString(),
    ...(procStart !== undefined ? { procStart } : {}),
    ...(opts.url !== undefined ? { url: opts.url } : {}),
    ...(opts.version !== undefined ? { version: opts.version } : {}),
    ...(opts.command !== undefined ? { command: opts.command } : {}),
  };
}

/** Most attempts at a claim before giving up (another claimant keeps replacing it, or takes a stale one over). */
const CLAIM_ATTEMPTS = 40;
/** Pause between attempts while another live claimant takes a stale claim over (it takes milliseconds). */
const CLAIM_RETRY_MS = 5;

/** Blocks this thread `ms` milliseconds (claims are taken synchronously, before anything else runs). */
function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Creates the claim file at `path` holding `info`, atomically and durably: the record is written to
 * a private temporary name and fsynced, hard-linked to `path` (which fails if `path` exists, so of
 * two claimants exactly one wins), and the directory is fsynced (durable-file.ts, as for key files).
 * So the claim is complete whenever it is visible, and after a power cut it is either absent or
 * whole — never an empty or cut file, which would read as "unreadable" and name no holder. A stale
 * file (dead or reused pid, unreadable) is taken over ({@link removeStaleClaim}) and replaced.
 * @returns `release()`, which removes the file if it is still this claim, and the takeover lock
 *   this claim took, if any (idempotent).
 * @throws what `refuse(holder)` answers, when a live process holds the file.
 */
export function takeClaimFile(path: string, info: RunInfo, refuse: (holder: RunInfo) => Error): () => void {
  const text = `${JSON.stringify(info)}\n`;
  const tmp = `${path}.${info.pid}.${randomBytes(6).toString('hex')}.tmp`;
  let released = false;
  let lock: string | undefined;
  const release = (): void => {
    if (released) return;
    released = true;
    try {
      const cur = RunInfoSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
      if (cur.pid === info.pid && cur.startedAt === info.startedAt && cur.command === info.command) rmSync(path, { force: true });
    } catch {
      // Already gone or replaced: nothing of ours to remove.
    }
    if (lock) rmSync(lock, { force: true });
  };
  try {
    writeSynced(tmp, text, 0o600);
    for (let attempt = 0; ; attempt++) {
      try {
        linkDurable(tmp, path);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          // The link may have been made and only the directory's fsync failed: a claim this call
          // does not return must not stay behind in a live process's name.
          release();
          throw err;
        }
      }
      const seen = inspectClaim(path);
      if (seen.state.running) throw refuse(seen.state.info);
      // Another claimant keeps replacing it under us, or a live one is slow to take it over: give up rather than spin.
      if (attempt >= CLAIM_ATTEMPTS) throw new Error(`${path} keeps changing under other claimants (or one is taking a stale claim over); try again`);
      if (seen.text === undefined) continue;
      const took = removeStaleClaim(path, seen.text, tmp);
      if (took === 'taken') lock ??= takeoverLock(path, seen.text);
      else if (took === 'busy') pause(CLAIM_RETRY_MS);
    }
  } finally {
    rmSync(tmp, { force: true });
  }
  sweepTakeoverLocks(path, lock);
  return release;
}

/**
 * The takeover lock of the stale claim whose text is `staleText`: of all the claimants that judged
 * that same claim stale, only the one that creates this file (link(2), exclusive) may remove it.
 */
function takeoverLock(path: string, staleText: string): string {
  return `${path}.takeover-${createHash('sha256').update(staleText).digest('hex').slice(0, 16)}`;
}

/**
 * Removes the stale claim file `path` whose text was `staleText`, under its takeover lock, which is
 * made by linking `mine` (this claimant's complete claim record) to {@link takeoverLock}.
 *
 * Why a lock: without it, a claimant that judged the stale file and was then overtaken would move
 * the claim that replaced it. It put that claim back, but a third claimant linking its own in that
 * instant also won: two holders. With the lock, the stale file is removed by one claimant only, and
 * nothing else ever moves a claim that is not stale. The lock stays until that claimant releases
 * its claim (or is found dead), so a claimant that judged the old file long ago cannot take the
 * lock again and move the new claim.
 *
 * @returns `taken` (this claimant removed it, or found it gone, under its lock), `busy` (a live
 *   claimant holds the lock: wait and look again), or `gone` (nothing to do: look again).
 */
export function removeStaleClaim(path: string, staleText: string, mine: string): 'taken' | 'busy' | 'gone' {
  const lock = takeoverLock(path, staleText);
  try {
    linkSync(mine, lock);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return 'gone';
    const holder = inspectClaim(lock);
    if (holder.state.running) return 'busy';
    // Its taker died mid-takeover (or left it behind): moved aside and compared, as claims once were.
    if (holder.text !== undefined) moveAsideIf(lock, holder.text);
    return 'gone';
  }
  moveAsideIf(path, staleText);
  return 'taken';
}

/**
 * Removes `path` if it still holds `text`: renamed to a private name first (atomic) and only then
 * compared; if it was replaced meanwhile, what was moved is linked back instead of being deleted.
 */
function moveAsideIf(path: string, text: string): void {
  const aside = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.stale`;
  try {
    renameSync(path, aside);
  } catch {
    return; // gone already
  }
  try {
    if (readFileSync(aside, 'utf8') !== text) {
      try {
        linkSync(aside, path);
      } catch {
        // Replaced again meanwhile; that one stands.
      }
    }
  } finally {
    rmSync(aside, { force: true });
  }
}

/** Removes the takeover locks of `path` whose takers no longer run (left by a crash), except `keep`. */
function sweepTakeoverLocks(path: string, keep: string | undefined): void {
  const prefix = `${basename(path)}.takeover-`;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const name of names) {
    const lock = join(dirname(path), name);
    if (!name.startsWith(prefix) || lock === keep) continue;
    const seen = inspectClaim(lock);
    if (!seen.state.running && seen.text !== undefined) moveAsideIf(lock, seen.text);
  }
}

/**
 * Claims the run file for this process (`start` calls it once it holds the ops claim). Replaces a
 * stale file.
 * @returns `release()`, which removes the file if it is still ours (call it on stop).
 * @throws ServerRunningError if another live server holds it.
 */
export function claimRunFile(
  dataDir: string,
  opts: { url?: string; version?: string; now?: () => Date; pid?: number } = {},
): { info: RunInfo; release: () => void } {
  const info = claimInfo(opts);
  const release = takeClaimFile(join(dataDir, RUN_FILE), info, (holder) => serverRunning(dataDir, 'start', holder));
  return { info, release };
}
