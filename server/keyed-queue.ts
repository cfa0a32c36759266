/**
 * Runs tasks one after another per key, and tasks of different keys side by side.
 *
 * Why: some operations read state, spend real time (argon2, signing) and then write what they
 * decided. Two of them for the same subject that overlap both decide on the state before either
 * wrote: a burst of login guesses all passed the lockout check before the first failure was
 * counted, and two CRLs published at once took the same number. Queued per key (a login; the CRL),
 * each sees what the one before it wrote. One process owns the vault, so an in-memory queue is
 * enough.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `task` once every earlier task of `key` has settled; resolves or rejects as it does. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key) ?? Promise.resolve();
    const result = before.then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    // Forget an idle key, so unknown logins tried once do not pile up.
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return result;
  }

  /** Keys with a task queued or running (for tests). */
  get size(): number {
    return this.#tails.size;
  }
}
