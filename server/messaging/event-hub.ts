/**
 * In-memory fan-out of live events to connected readers (SSE). Each connection is a
 * {@link Subscription} with a small bounded queue: a reader too slow to drain it is dropped
 * (its stream ends; the client reconnects with Last-Event-ID and replays from the vault), so one
 * slow client can never make the server buffer without bound.
 *
 * A subscription is read either by iterating it (pull), or by attaching a {@link LiveSink} (push):
 * then an event is handed to the sink synchronously while it publishes, with no queue, promise or
 * timer per event and connection, and queued only while the sink is congested. One event object
 * is shared by every subscriber it reaches, so a sink may cache what it derives from it (e.g. the
 * encoded SSE frame) and do that work once per event, not once per connection.
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

/** Where a subscription in push mode hands its events (an SSE connection). */
export interface LiveSink {
  /**
   * Takes one event. Returns false when the sink is congested (its socket buffer is full): the
   * subscription then queues further events until {@link Subscription.resume} is called.
   */
  deliver(ev: LiveEvent): boolean;
  /** The subscription ended: `dropped` when its queue overflowed (a reader too slow). */
  ended(dropped: boolean): void;
}

/** One connection's view of the hub. Iterate it or {@link attach} a sink; `close()` when the connection ends. */
export class Subscription implements AsyncIterable<LiveEvent> {
  readonly login: string;
  readonly clearanceRank: number;
  /** Allocated on the first event that has to wait (most idle connections never need one). */
  #queue: LiveEvent[] | undefined;
  readonly #max: number;
  readonly #onClose: (s: Subscription) => void;
  #wake: (() => void) | undefined;
  #sink: LiveSink | undefined;
  #congested = false;
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
    if (this.#sink && !this.#congested && !this.#queue?.length) {
      if (!this.#sink.deliver(ev)) this.#congested = true;
      return;
    }
    const q = (this.#queue ??= []);
    if (q.length >= this.#max) {
      this.dropped = true;
      this.close();
      return;
    }
    q.push(ev);
    this.#wake?.();
  }

  /**
   * Switches to push mode: hands `sink` what queued so far, then every event as it is published.
   * Call once; the subscription must not be iterated as well.
   */
  attach(sink: LiveSink): void {
    this.#sink = sink;
    if (this.#closed) sink.ended(this.dropped);
    else this.resume();
  }

  /** The sink drained: hands it the queued events until it is congested again or the queue is empty. */
  resume(): void {
    const sink = this.#sink;
    if (!sink) return;
    this.#congested = false;
    const q = this.#queue;
    while (q && q.length > 0 && !this.#closed) {
      if (!sink.deliver(q.shift()!)) {
        this.#congested = true;
        return;
      }
    }
    this.#queue = undefined;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = undefined;
    this.#onClose(this);
    this.#wake?.();
    this.#sink?.ended(this.dropped);
  }

  /** Resolves on the next event, or undefined once closed. */
  async next(): Promise<LiveEvent | undefined> {
    for (;;) {
      const ev = this.#queue?.shift();
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

  /** True when nobody is connected: publishing can skip building what nobody would receive. */
  get empty(): boolean {
    return this.#byLogin.size === 0;
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
    const ev: LiveEvent = { kind: 'message', seq, data };
    for (const [login, muted] of audience.members) {
      if (muted && !audience.urgent) continue;
      const subs = this.#byLogin.get(login);
      if (!subs) continue;
      for (const s of [...subs]) if (s.clearanceRank >= audience.labelRank) s.push(ev);
    }
  }

  /** Tells `logins` that messages (or a whole conversation, without `ids`) are gone. */
  publishDeleted(logins: Iterable<string>, data: { conversation: string; ids?: string[] }): void {
    const ev: LiveEvent = { kind: 'deleted', data };
    for (const login of logins) for (const s of [...(this.#byLogin.get(login) ?? [])]) s.push(ev);
  }

  /** A delivery/read receipt for the sender of the messages concerned. */
  publishReceipt(login: string, data: unknown): void {
    const ev: LiveEvent = { kind: 'receipt', data };
    for (const s of [...(this.#byLogin.get(login) ?? [])]) s.push(ev);
  }

  /** Ends every subscription (appliance shutdown). */
  closeAll(): void {
    for (const set of [...this.#byLogin.values()]) for (const s of [...set]) s.close();
  }
}
