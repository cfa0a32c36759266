/**
 * Is a compiled entry point older than its TypeScript sources? Shared by the helpers that run the
 * built binaries (cli.ts, server-process.ts), so both rebuild by the same rule.
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Newest modification time of any .ts file below `dir`. */
export function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/** True when `builtFile` is missing or older than any source under the repo folders `dirs`. */
export function isStale(builtFile: string, dirs: readonly string[]): boolean {
  let built: number;
  try {
    built = statSync(builtFile).mtimeMs;
  } catch {
    return true;
  }
  return dirs.some((d) => newestSource(join(REPO_ROOT, d)) > built);
}

/** Blocks the test process (not the event loop of a server: helpers run in the test process). */
export const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
