/**
 * /proc sampling of a process (the server child): CPU seconds in all and per thread, the split of
 * a run's CPU by role (main thread, check workers, the rest), and resident memory. Linux only.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** utime + stime of a process in seconds (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s). */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces: split after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** CPU seconds of a process's main thread (tid = pid), of all its other threads together, and of each thread by id. */
export function procThreadCpuSeconds(pid: number): { main: number; others: number; byThread: Map<string, number> } {
  let main = 0;
  let others = 0;
  const byThread = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const s = (Number(fields[11]) + Number(fields[12])) / 100;
    byThread.set(tid, s);
    if (Number(tid) === pid) main += s;
    else others += s;
  }
  return { main, others, byThread };
}

/**
 * A run's server CPU by role, from two {@link procThreadCpuSeconds} readings: the main thread
 * (tid = pid); the check workers, taken as the `workerCount` busiest other threads (messages.js
 * passes CheckPool's default size, defaultCheckPoolSize: under a message load each runs near a whole
 * core, far above any other thread); and the rest. A thread born between the readings counts from
 * zero.
 */
export function threadSplit(
  before: Map<string, number>,
  after: Map<string, number>,
  pid: number,
  workerCount: number,
): { main: number; workers: number; rest: number; workerCount: number } {
  const others: number[] = [];
  let main = 0;
  for (const [tid, s] of after) {
    const d = s - (before.get(tid) ?? 0);
    if (Number(tid) === pid) main = d;
    else others.push(d);
  }
  others.sort((a, b) => b - a);
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  return { main, workers: sum(others.slice(0, workerCount)), rest: sum(others.slice(workerCount)), workerCount };
}

/** VmRSS and VmHWM of a process in MiB. */
export function procRssMb(pid: number): { now: number; peak: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  // RssFile is mostly node's own binary: mapped text pages count toward RSS once touched.
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024, anon: kb('RssAnon') / 1024, file: kb('RssFile') / 1024 };
}
