/**
 * The data directory's claim: one holder at a time among the commands that write the vault or
 * copy it — `backup`, `restore` (also `--dry-run`), `repack`, `rotate-master-key`, `sign-root-crl`
 * (beside a running server: it appends one audit entry), `renew-issuing` (not beside one: the
 * server holds the issuing certificate in memory), and `start` while it starts.
 *
 * The holder is recorded in `DIR/sigil-server.ops.json` (run-file.ts: pid, start time, `/proc`
 * start ticks, and the command), created atomically; everyone else is refused with
 * OPS_DATA_IN_USE naming the holder and its pid. A claim whose process is gone (kill -9, power
 * cut) is stale and is simply replaced: nothing waits on a dead process.
 *
 * A running server is the run file's business (`sigil-server.run.json`): `backup` and
 * `restore --dry-run` may run beside it (the online backup reads a WAL snapshot), the others are
 * refused with OPS_SERVER_RUNNING. `start` takes this claim first and its run file second, then
 * lets this claim go: from then on its run file keeps restore, repack and rotation away.
 *
 * Having the claim, the holder first removes every working copy left in the vault directory
 * (working-copies.ts): no one else can be making one.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PATHS } from '../appliance.js';
import { DataInUseError } from './errors.js';
import { claimInfo, readClaimState, readRunState, serverRunning, takeClaimFile, type RunInfo, type RunState } from './run-file.js';
import { sweepWorkingCopies, type SweepResult } from './working-copies.js';

/** Name of the ops claim inside the data directory. */
export const OPS_FILE = 'sigil-server.ops.json';

/** The commands that take the claim. */
export type ClaimingCommand = 'start' | 'backup' | 'restore' | 'restore --dry-run' | 'repack' | 'rotate-master-key' | 'sign-root-crl' | 'renew-issuing';

/** Options of {@link claimDataDir}. */
export interface DataClaimOptions {
  /** May run while a server serves the directory (backup, restore --dry-run). Default false. */
  besideServer?: boolean;
  /** Remove leftover working copies once claimed. Default true (`start` does it after its run file). */
  sweep?: boolean;
  /** Hears what the sweep removed or kept, when anything (one line for the log). */
  onSweep?: (r: SweepResult) => void;
}

/** A held claim. */
export interface DataClaim {
  info: RunInfo;
  swept: SweepResult;
  /** Gives the claim up (idempotent; only removes the file while it is still this claim). */
  release(): void;
}

/** Whether (and by whom) the ops claim is held now. */
export function readOpsState(dataDir: string): RunState {
  return readClaimState(join(dataDir, OPS_FILE));
}

/** The refusal while `holder` has the claim. */
export function dataInUse(holder: RunInfo): DataInUseError {
  return new DataInUseError(
    `the appliance's data is in use by \`sigil-server ${holder.command ?? 'start'}\` (pid ${holder.pid}); try again when it has finished`,
  );
}

/**
 * Takes the data directory for `command`, refuses if another live process holds it (or, unless
 * `besideServer`, if a server serves it), then removes leftover working copies.
 * @throws DataInUseError, ServerRunningError.
 */
export async function claimDataDir(dataDir: string, command: ClaimingCommand, opts: DataClaimOptions = {}): Promise<DataClaim> {
  // A restore onto a new machine may find no directory yet.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const info = claimInfo({ command });
  const release = takeClaimFile(join(dataDir, OPS_FILE), info, dataInUse);
  try {
    if (!opts.besideServer) {
      const s = readRunState(dataDir);
      if (s.running) throw serverRunning(dataDir, command, s.info);
    }
    const swept = opts.sweep === false ? { removed: [], kept: [] } : await sweepWorkingCopies(join(dataDir, PATHS.vault));
    if (swept.removed.length > 0 || swept.kept.length > 0) opts.onSweep?.(swept);
    return { info, swept, release };
  } catch (err) {
    release();
    throw err;
  }
}

/** One line saying what a sweep did (for logs and summaries). */
export function sweepLine(r: SweepResult): string {
  const parts: string[] = [];
  if (r.removed.length) parts.push(`removed ${r.removed.length} leftover working file(s) of an interrupted backup/restore/repack: ${r.removed.join(', ')}`);
  if (r.kept.length) parts.push(`kept ${r.kept.join(', ')}: vault.db is missing, one of them may be the vault (a swap was cut short)`);
  return parts.join('; ');
}
