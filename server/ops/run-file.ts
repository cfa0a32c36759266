/**
 * The run file: how offline commands (restore, rotate-master-key) know that `sigil-server start`
 * is serving a data directory, and how `status` knows its uptime.
 *
 * `start` claims `DIR/sigil-server.run.json` (mode 0600) once it listens and removes it when it
 * stops. A file left by a crashed server is "stale": its pid no longer runs, or (Linux) the
 * process with that pid started at another time than the one recorded (the pid was reused).
 */
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
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
});
/** What the run file holds. */
export type RunInfo = z.infer<typeof RunInfoSchema>;

/** Whether the server runs on a data directory. */
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

/** Reads the run file and decides whether the process it names is still the server. */
export function readRunState(dataDir: string): RunState {
  let text: string;
  try {
    text = readFileSync(join(dataDir, RUN_FILE), 'utf8');
  } catch {
    return { running: false, reason: 'no-run-file' };
  }
  let info: RunInfo;
  try {
    info = RunInfoSchema.parse(JSON.parse(text));
  } catch {
    return { running: false, reason: 'unreadable' };
  }
  if (!pidAlive(info.pid)) return { running: false, stale: info, reason: 'process-gone' };
  if (info.procStart !== undefined) {
    const now = processStartTicks(info.pid);
    if (now !== undefined && now !== info.procStart) return { running: false, stale: info, reason: 'pid-reused' };
  }
  return { running: true, info };
}

/**
 * Refuses to go on while the server runs on `dataDir`.
 * @throws ServerRunningError naming the pid.
 */
export function assertNotRunning(dataDir: string, what: string): void {
  const s = readRunState(dataDir);
  if (s.running) {
    throw new ServerRunningError(
      `${what} needs the server stopped, but sigil-server (pid ${s.info.pid}, started ${s.info.startedAt}) serves ${dataDir}; stop it first`,
    );
  }
}

/**
 * Claims the run file for this process (`start` calls it once listening). Replaces a stale file.
 * @returns `release()`, which removes the file if it is still ours (call it on stop).
 * @throws ServerRunningError if another live server holds it.
 */
export function claimRunFile(
  dataDir: string,
  opts: { url?: string; version?: string; now?: () => Date; pid?: number } = {},
): { info: RunInfo; release: () => void } {
  assertNotRunning(dataDir, 'start');
  const pid = opts.pid ?? process.pid;
  const procStart = processStartTicks(pid);
  const info: RunInfo = {
    pid,
    startedAt: (opts.now ?? (() => new Date()))().toISOString(),
    ...(procStart !== undefined ? { procStart } : {}),
    ...(opts.url !== undefined ? { url: opts.url } : {}),
    ...(opts.version !== undefined ? { version: opts.version } : {}),
  };
  const path = join(dataDir, RUN_FILE);
  const tmp = `${path}.${pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(info)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
  return {
    info,
    release: () => {
      try {
        const cur = RunInfoSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
        if (cur.pid === info.pid && cur.startedAt === info.startedAt) rmSync(path, { force: true });
      } catch {
        // Already gone or replaced: nothing of ours to remove.
      }
    },
  };
}
