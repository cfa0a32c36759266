/**
 * Forensic scan for tests: reads EVERY regular file under a directory (databases, WAL, -shm,
 * journals, temp files, backups) as raw bytes and reports every occurrence of every needle.
 * It is how tests prove that deleted correspondence left nothing behind in what Sigil wrote.
 */
import { readdirSync, readFileSync, lstatSync } from 'node:fs';
import { join } from 'node:path';

/** One occurrence of a needle in a file. */
export interface ScanHit {
  file: string;
  needleIndex: number;
  offset: number;
}

/** Every regular file under `dir`, recursively (symlinks are not followed). */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...listFiles(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

/**
 * Scans every file under `dir` for each needle (strings are searched as UTF-8). Empty needles
 * are refused: they would match everywhere and prove nothing.
 */
export function scanTree(dir: string, needles: readonly (Uint8Array | string)[]): ScanHit[] {
  const bufs = needles.map((n, i) => {
    const b = typeof n === 'string' ? Buffer.from(n, 'utf8') : Buffer.from(n.buffer, n.byteOffset, n.byteLength);
    if (b.length === 0) throw new RangeError(`needle ${i} is empty`);
    return b;
  });
  const hits: ScanHit[] = [];
  for (const file of listFiles(dir)) {
    const content = readFileSync(file);
    bufs.forEach((needle, needleIndex) => {
      for (let at = content.indexOf(needle); at !== -1; at = content.indexOf(needle, at + 1)) {
        hits.push({ file, needleIndex, offset: at });
      }
    });
  }
  return hits;
}
