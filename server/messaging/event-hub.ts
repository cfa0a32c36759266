/**
 * In-memory fan-out of live events to connected readers (SSE). Each connection is a
 * {@link Subscription} with a small bounded queue: a reader too slow to drain it is dropped
 * (its stream ends; the client reconnects with Last-Event-ID and replays from the vault), so one
 * slow client can never make the server buffer without bound.
 */

/** A live event. `seq` (messages only) becomes the SSE id, so Last-Event-ID resumes from it. */
export type LiveEvent =
  | { kind: 'message'; seq: number; data: unknown }
  | { kind: 'deleted'; data: { conversation: string; ids?: string[] } }
  | { kind: 'receipt'; data: unknown };

/** Who a message event may reach, decided per subscriber. */
export interface MessageAudience {
  conversation: string;
  labelRank: number;
  urgent: boolean;
  /** login → muted */
  members: ReadonlyMap<string, boolean>;
}

/** One connection's view of the hub. Iterate it; `close()` when the connection ends. */
export class Subscription implements AsyncIterable<LiveEvent> {
  readonly login: string;
  readonly clearanceRank: number;
  readonly #queue: LiveEvent[] = [];
  readonly #max: number;
  readonly #onClose: (s: Subscription) => void;
  #wake: (() => void) | undefined;
  #closed = false;
  /** True when the queue overflowed: the consumer should end the stream. */
  dropped = false;

  constructor(login: string, clearanceRank: number, max: number, onClose: (s: Subscription) => void) {
    this.login = login;
    this.clearanceRank = clearanceRank;
    this.#max = max;
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#closed;
  }

  push(ev: LiveEvent): void {
    if (this.#closed) return;
    if (this.#queue.length >= this.#max) {
      this.dropped = true;
      this.close();
      return;
    }
    this.#queue.push(ev);
    this.#wake?.();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onClose(this);
    this.#wake?.();
  }

  /** Resolves on the next event, or undefined once closed. */
  async next(): Promise<LiveEvent | undefined> {
    for (;;) {
      const ev = this.#queue.shift();
      if (ev) return ev;
      if (this.#closed) return undefined;
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<LiveEvent> {
    for (;;) {
      const ev = await this.next();
      if (!ev) return;
      yield ev;
    }
  }
}

/** The hub: subscriptions by login. */
export class EventHub {
  readonly #byLogin = new Map<string, Set<Subscription>>();
  readonly #queueMax: number;

  constructor(queueMax: number) {
    this.#queueMax = queueMax;
  }

  subscribe(login: string, clearanceRank: number): Subscription {
    const sub = new Subscription(login, clearanceRank, this.#queueMax, (s) => {
      const set = this.#byLogin.get(s.login);
      set?.delete(s);
      if (set && set.size === 0) this.#byLogin.delete(s.login);
    });
    let set = this.#byLogin.get(login);
    if (!set) this.#byLogin.set(login, (set = new Set()));
    set.add(sub);
    return sub;
  }

  /** Number of open subscriptions (for tests and health). */
  get size(): number {
    let n = 0;
    for (const s of this.#byLogin.values()) n += s.size;
    return n;
  }

  /**
   * Pushes a message to every connected member cleared for its label. Non-urgent messages skip
   * members who muted the conversation; urgent ones reach them anyway (issue 4).
   */
  publishMessage(seq: number, data: unknown, audience: MessageAudience): void {
    for (const [login, muted] of audience.members) {
      if (muted && !audience.urgent) continue;
      const subs = this.#byLogin.get(login);
      if (!subs) continue;
      for (const s of [...subs]) if (s.clearanceRank >= audience.labelRank) s.push({ kind: 'message', seq, data });
    }
  }

  /** Tells `logins` that messages (or a whole conversation, without `ids`) are gone. */
  publishDeleted(logins: Iterable<string>, data: { conversation: string; ids?: string[] }): void {
    for (const login of logins) for (const s of [...(this.#byLogin.get(login) ?? [])]) s.push({ kind: 'deleted', data });
  }

  /** A delivery/read receipt for the sender of the messages concerned. */
  publishReceipt(login: string, data: unknown): void {
    for (const s of [...(this.#byLogin.get(login) ?? [])]) s.push({ kind: 'receipt', data });
  }

  /** Ends every subscription (appliance shutdown). */
  closeAll(): void {
    for (const set of [...this.#byLogin.values()]) for (const s of [...set]) s.close();
  }
}
