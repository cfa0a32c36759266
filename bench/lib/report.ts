/**
 * What every bench prints beside its figures: percentiles, fixed-width numbers, and the line
 * saying what machine the run shared with the server.
 */
import { readFileSync } from 'node:fs';
import { jemallocLibrary } from './server-proc.js';

/** The p-th percentile (0–100) of an ascending array (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Formats a number with a fixed width. */
export const fmt = (n: number, digits = 0, width = 8): string => n.toFixed(digits).padStart(width);

/** A line saying the load generator and the server share this machine. */
export function machineNote(): string {
  const os = { cpus: 0, load: [0] as number[] };
  try {
    os.cpus = readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
    os.load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    /* not Linux: omit */
  }
  const malloc = process.env.BENCH_SERVER_ENV?.match(/(?:^| )LD_PRELOAD=(\S*)/)?.[1] ?? process.env.LD_PRELOAD ?? jemallocLibrary();
  return `machine: ${os.cpus} cores, load average ${os.load.join(' ')}, node ${process.version}, server malloc ${malloc ? `preloaded ${malloc}` : 'glibc'}; the load generator and the server share this machine`;
}
