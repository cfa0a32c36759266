/**
 * Progress on stderr for long transfers (uploads, downloads). Drawn only when stderr is a
 * terminal and `--json` is off, so scripts and machine output never see it.
 */
import type { TextSink } from './output.js';
import { oneLine } from './terminal-text.js';

export interface Progress {
  /** Bytes done so far. */
  update(done: number): void;
  /** Clears the bar's line. */
  finish(): void;
}

const WIDTH = 30;

/** A progress bar, or a no-op when not `enabled` (not a TTY, or --json). */
export function createProgress(opts: { label: string; total: number; stderr: TextSink; enabled: boolean }): Progress {
  if (!opts.enabled || opts.total <= 0) return { update() {}, finish() {} };
  let last = -1;
  return {
    update(done) {
      const ratio = Math.min(1, Math.max(0, done / opts.total));
      const pct = Math.floor(ratio * 100);
      if (pct === last) return;
      last = pct;
      const filled = Math.round(ratio * WIDTH);
      opts.stderr.write(`\r${oneLine(opts.label)} [${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(pct).padStart(3)}%`);
    },
    finish() {
      if (last >= 0) opts.stderr.write('\r\x1b[2K');
    },
  };
}
