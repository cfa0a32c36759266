/**
 * Bound-parameter lists for `IN (…)` and multi-row `VALUES`, one statement per part instead of one
 * round trip per row. SQLite allows 32,766 bound parameters; callers keep their parts far below.
 */

/** Ids or rows per statement in keys.db's lists: SQLite's default limit of bound parameters is 32766; stay well below it. */
export const IN_CHUNK = 500;

/** `?,?,…` for `n` parameters, or `n` copies of `tuple` (e.g. `'(?, ?)'`) for a VALUES list. */
export function marks(n: number, tuple = '?'): string {
  return Array.from({ length: n }, () => tuple).join(',');
}

/** `list` in consecutive parts of at most `size`. */
export function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
