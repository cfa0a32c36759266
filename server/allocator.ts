/**
 * Which malloc the server process runs on. The systemd unit preloads jemalloc where the host has it
 * (hardening/apply, SIGIL_ALLOCATOR), as do `make run` and the benches: on the 2-core appliance it
 * gave ~4 points more of the P-384 verification bound and ~15 MiB less RSS with 1,000 idle live
 * connections than glibc's malloc, whose arena locks and fast-bin consolidation took ~7 % of the
 * machine under load (bench/README.md, "Sixteenth session").
 *
 * Read from the process's own mappings, not from LD_PRELOAD: the dynamic loader ignores a preload it
 * cannot open (with one line on stderr), and then the process runs on glibc whatever the variable says.
 */
import { readFileSync } from 'node:fs';

/** 'jemalloc' when libjemalloc is mapped into this process, 'glibc' when not, 'unknown' off Linux. */
export function mallocInUse(maps: () => string = () => readFileSync('/proc/self/maps', 'utf8')): 'jemalloc' | 'glibc' | 'unknown' {
  let text: string;
  try {
    text = maps();
  } catch {
    return 'unknown';
  }
  return /\/libjemalloc\.so[^\n/]*$/m.test(text) ? 'jemalloc' : 'glibc';
}
