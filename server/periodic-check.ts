/**
 * A check the server repeats while it runs (the CRL refresher, the TLS renewer): on an unref'd
 * timer every `everyMs`, never two at once (a check asked for while one runs joins it), a failure
 * reported and retried at the next interval, and `stop()` waiting for a check under way so the
 * vault can close after it.
 */
export interface PeriodicCheckOptions<T> {
  /** Who owns it, for the error on a bad interval. */
  name: string;
  /** Real milliseconds between checks (the timer's, not an injected clock's). */
  everyMs: number;
  /** One check; `force` is what {@link PeriodicCheck.run} was given (the timer passes false). */
  check: (force: boolean) => Promise<T | undefined>;
  /** Told of a failed check that {@link PeriodicCheck.tick} ran. */
  onError?: (err: unknown) => void;
}

export class PeriodicCheck<T> {
  readonly #o: PeriodicCheckOptions<T>;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<T | undefined> | undefined;
  #stopped = false;

  constructor(o: PeriodicCheckOptions<T>) {
    if (!(o.everyMs > 0)) throw new RangeError(`${o.name}: checkEveryMs must be positive, got ${o.everyMs}`);
    this.#o = o;
  }

  /** Whether the timer was started or the check stopped (a second start does nothing). */
  get startedOrStopped(): boolean {
    return this.#timer !== undefined || this.#stopped;
  }

  /** Starts the timer (idempotent; not after stop). */
  startTimer(): void {
    if (this.startedOrStopped) return;
    this.#timer = setInterval(() => void this.tick(), this.#o.everyMs);
    this.#timer.unref();
  }

  /** One check now, or the one under way. Rejects when it fails. */
  run(force = false): Promise<T | undefined> {
    return (this.#running ??= this.#o.check(force).finally(() => (this.#running = undefined)));
  }

  /** {@link run} that never rejects: a failure goes to `onError` and resolves undefined. Nothing after stop. */
  tick(): Promise<T | undefined> {
    if (this.#stopped) return Promise.resolve(undefined);
    return this.run().catch((err: unknown) => {
      this.#o.onError?.(err);
      return undefined;
    });
  }

  /** Stops the timer and waits for a check under way. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }
}
