/**
 * How many long-lived requests (live event streams, send streams) one login may hold at once.
 * Each holds memory (a subscription and its queue; a send stream's unfinished line of up to one
 * message) and a socket for as long as the session lasts: without a cap, one account with one
 * token could open thousands and starve everyone else of memory or file descriptors. A person
 * has a few workstations and terminals; the defaults (config.ts) leave room for those.
 */
import { ServerError } from '../errors.js';

/** Over the cap: 429, the caller closes one of its streams first. */
export class TooManyStreamsError extends ServerError {
  constructor(login: string, max: number, what: string) {
    super('TOO_MANY_STREAMS', `${login} already has ${max} ${what} open, the most one account may hold; close one first`);
    this.name = 'TooManyStreamsError';
  }
}

/** Counts the open streams of one kind, per login. */
export class StreamSlots {
  readonly #open = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly what: string,
  ) {}

  /**
   * Takes a slot for `login`; the function returned gives it back (once, however often called).
   * @throws TooManyStreamsError when `login` holds `max` already.
   */
  take(login: string): () => void {
    const n = this.#open.get(login) ?? 0;
    if (n >= this.max) throw new TooManyStreamsError(login, this.max, this.what);
    this.#open.set(login, n + 1);
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const left = (this.#open.get(login) ?? 1) - 1;
      if (left > 0) this.#open.set(login, left);
      else this.#open.delete(login);
    };
  }

  /** Streams `login` holds now (tests, status). */
  held(login: string): number {
    return this.#open.get(login) ?? 0;
  }
}
