/**
 * The state of a `Db` transaction or savepoint in progress (db.ts), and the callbacks that wait
 * for its outermost transaction to end: what `Queryable.whenSettled` asks for.
 */

/**
 * A transaction or savepoint in progress. `root` is the outermost transaction (itself for one):
 * what {@link Queryable.whenSettled} asks for waits in its `settled` list until it has ended.
 */
export interface TxState {
  done: boolean;
  root: { done: boolean; settled: (() => void)[] };
}

/** See {@link Queryable.whenSettled}. */
export function whenSettled(state: TxState | undefined, fn: () => void): void {
  if (state && !state.root.done) state.root.settled.push(fn);
  else fn();
}

/** Runs the callbacks of an ended transaction; one that throws does not stop the others. */
export function runSettled(list: (() => void)[]): void {
  for (const fn of list.splice(0)) {
    try {
      fn();
    } catch {
      // A cache callback has nothing to report; the transaction's outcome is what matters.
    }
  }
}
