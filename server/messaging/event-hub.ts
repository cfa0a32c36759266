/**
 * In-memory fan-out of live events to connected readers (SSE). Each connection is a
 * {@link Subscription} with a small queue, bounded by count and by bytes: a reader too slow to
 * drain it is dropped (its stream ends; the client reconnects with Last-Event-ID and replays from
 * the vault), so one slow client can never make the server buffer without bound.
 *
 * A queued message event holds the message whole, body included. A deletion therefore withdraws
 * what it covers from every queue before its `deleted` event is queued: once a deletion returns,
 * no copy may be sent or kept ("irreversible means irreversible", issue 4).
 *
 * A subscription is read either by iterating it (pull), or by attaching a {@link LiveSink} (push):
 * then an event is handed to the sink synchronously while it publishes, with no queue, promise or
 * timer per event and connection, and queued only while the sink is congested. One event object
 * is shared by every subscriber it reaches, so a sink may cache what it derives from it (e.g. the
 * encoded SSE frame) and do that work once per event, not once per connection.
 */

/** A live event. `seq` (messages only) becomes the SSE id, so Last-Event-ID resumes from it. */
export type LiveEvent =
  /** `conversation` and `id` say which deletion withdraws it from the queues (`id` is read from
   * the view; undefined only if the view has none). */
  | { kind: 'message'; seq: number; data: unknown; conversation: string; id: string | undefined }
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

/** Bytes a subscription may hold queued by default: a few of the largest messages (1 MiB body). */
export const DEFAULT_QUEUE_MAX_BYTES = 4 * 1024 * 1024;

/** What a deletion covers: a whole conversation, or the messages `ids` of it. */
export interface Withdrawal {
  conversation: string;
  ids: ReadonlySet<string> | undefined;
}

/**
 * About the bytes an event holds: its strings' lengths (the body's base64 dominates) plus a little
 * per field. Approximate on purpose: it bounds memory, it is not the wire size. Cached, since one
 * event object is shared by every subscription that queues it.
 */
const weights = new WeakMap<LiveEvent, number>();
function weightOf(ev: LiveEvent): number {
  let w = weights.get(ev);
  if (w === undefined) weights.set(ev, (w = 64 + weigh(ev.data, 0)));
  return w;
}
function weigh(v: unknown, depth: number): number {
  if (typeof v === 'string') return v.length;
  if (v === null || typeof v !== 'object' || depth > 8) return 8;
  let n = 2;
  if (Array.isArray(v)) for (const x of v) n += 1 + weigh(x, depth + 1);
  else for (const [k, x] of Object.entries(v)) n += 4 + k.length + weigh(x, depth + 1);
  return n;
}

/** The `conversation` of a receipt's data (receipts name the conversation they are about). */
function receiptConversation(data: unknown): unknown {
  return typeof data === 'object' && data !== null ? (data as { conversation?: unknown }).conversation : undefined;
}

/** Where a subscription in push mode hands its events (an SSE connection). */
export interface LiveSink {
  /**
   * Takes one event. Returns false when the sink is congested (its socket buffer is full): the
   * subscription then queues further events until {@link Subscription.resume} is called.
   */
  deliver(ev: LiveEvent): boolean;
  /** The subscription ended: `dropped` when its queue overflowed (a reader too slow), or a deletion could not withdraw from it. */
  ended(dropped: boolean): void;
  /**
   * A deletion withdrew `w`: what the sink took already but has not sent yet (bytes waiting in its
   * socket's buffer) is the sink's to drop.
   */
  withdraw?(w: Withdrawal): void;
}

/** One connection's view of the hub. Iterate it or {@link attach} a sink; `close()` when the connection ends. */
export class Subscription implements AsyncIterable<LiveEvent> {
  readonly login: string;
  readonly clearanceRank: number;
  /** Allocated on the first event that has to wait (most idle connections never need one). */
  #queue: LiveEvent[] | undefined;
  /** Sum of the queued events' {@link weightOf}. */
  #bytes = 0;
  readonly #max: number;
  readonly #maxBytes: number;
  readonly #onClose: (s: Subscription) => void;
  #wake: (() => void) | undefined;
  #sink: LiveSink | undefined;
  /** Told of deletions before a sink is attached: the replay that precedes it (routes/events.ts). */
  #watcher: Pick<LiveSink, 'withdraw'> | undefined;
  #congested = false;
  #closed = false;
  /** True when the queue overflowed (or a deletion could not withdraw from it): the consumer should end the stream. */
  dropped = false;

  /**
   * @param max - queued events before the subscription is dropped
   * @param maxBytes - queued bytes (about, {@link weightOf}) before it is dropped
   */
  constructor(login: string, clearanceRank: number, max: number, onClose: (s: Subscription) => void, maxBytes = DEFAULT_QUEUE_MAX_BYTES) {
    this.login = login;
    this.clearanceRank = clearanceRank;
    this.#max = max;
    this.#maxBytes = maxBytes;
    this.#onClose = onClose;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Events waiting in the queue (health, tests). */
  get queued(): number {
    return this.#queue?.length ?? 0;
  }

  /** About the bytes they hold. */
  get queuedBytes(): number {
    return this.#bytes;
  }

  push(ev: LiveEvent): void {
    if (this.#closed) return;
    if (this.#sink && !this.#congested && !this.#queue?.length) {
      if (!this.#sink.deliver(ev)) this.#congested = true;
      return;
    }
    const q = (this.#queue ??= []);
    // Bytes too: 1024 events of 1 MiB messages would pin ~1.5 GB per stalled reader.
    const w = weightOf(ev);
    if (q.length >= this.#max || this.#bytes + w > this.#maxBytes) {
      this.dropped = true;
      this.close();
      return;
    }
    q.push(ev);
    this.#bytes += w;
    this.#wake?.();
  }

  /**
   * Removes from the queue what deletion `w` covers: its messages (the whole conversation's, and
   * its receipts, without ids). A message event of that conversation without an id cannot be told
   * apart: then the subscription ends instead (dropped, queue discarded), and the client resumes
   * from the vault, where only what was not deleted remains.
   */
  withdraw(w: Withdrawal): void {
    (this.#sink ?? this.#watcher)?.withdraw?.(w);
    const q = this.#queue;
    if (!q || q.length === 0) return;
    let kept = 0;
    for (const ev of q) {
      let gone = false;
      if (ev.kind === 'message' && ev.conversation === w.conversation) {
        if (w.ids && ev.id === undefined) {
          this.dropped = true;
          this.close();
          return;
        }
        gone = !w.ids || w.ids.has(ev.id!);
      } else if (ev.kind === 'receipt' && !w.ids) gone = receiptConversation(ev.data) === w.conversation;
      if (gone) this.#bytes -= weightOf(ev);
      else q[kept++] = ev;
    }
    // In place: the array stays the one resume() and next() read.
    q.length = kept;
  }

  /** The next queued event, its bytes no longer counted. */
  #take(): LiveEvent | undefined {
    const ev = this.#queue?.shift();
    if (ev) this.#bytes -= weightOf(ev);
    return ev;
  }

  /**
   * Until a sink is attached, `watcher` is told of each deletion: a replay writing what it read
   * before the deletion committed must leave out, or cut, what the deletion covers.
   */
  watch(watcher: Pick<LiveSink, 'withdraw'>): void {
    this.#watcher = watcher;
  }

  /**
   * Switches to push mode: hands `sink` what queued so far, then every event as it is published.
   * Call once; the subscription must not be iterated as well.
   */
  attach(sink: LiveSink): void {
    this.#watcher = undefined;
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
      if (!sink.deliver(this.#take()!)) {
        this.#congested = true;
        return;
      }
    }
    this.#queue = undefined;
    this.#bytes = 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = undefined;
    this.#bytes = 0;
    this.#onClose(this);
    this.#wake?.();
    this.#sink?.ended(this.dropped);
  }

  /** Resolves on the next event, or undefined once closed. */
  async next(): Promise<LiveEvent | undefined> {
    for (;;) {
      const ev = this.#take();
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

/**
 * The withdrawals made since {@link EventHub.recordWithdrawals} was called, until `close()`:
 * `covers` says whether one of them took the message `id` of `conversation`.
 */
export interface WithdrawalRecord {
  covers(conversation: string, id: string): boolean;
  close(): void;
}

/** The hub: subscriptions by login. */
export class EventHub {
  readonly #byLogin = new Map<string, Set<Subscription>>();
  /** Open {@link recordWithdrawals} records: every withdrawal is added to each. */
  readonly #records = new Set<Withdrawal[]>();
  readonly #queueMax: number;
  readonly #queueMaxBytes: number;

  /**
   * @param queueMax - events a subscription may hold queued before it is dropped
   * @param queueMaxBytes - and bytes (about: the events' strings)
   */
  constructor(queueMax: number, queueMaxBytes = DEFAULT_QUEUE_MAX_BYTES) {
    this.#queueMax = queueMax;
    this.#queueMaxBytes = queueMaxBytes;
  }

  subscribe(login: string, clearanceRank: number): Subscription {
    const sub = new Subscription(
      login,
      clearanceRank,
      this.#queueMax,
      (s) => {
        const set = this.#byLogin.get(s.login);
        set?.delete(s);
        if (set && set.size === 0) this.#byLogin.delete(s.login);
      },
      this.#queueMaxBytes,
    );
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
    const id = typeof data === 'object' && data !== null ? (data as { id?: unknown }).id : undefined;
    const ev: LiveEvent = { kind: 'message', seq, data, conversation: audience.conversation, id: typeof id === 'string' ? id : undefined };
    for (const [login, muted] of audience.members) {
      if (muted && !audience.urgent) continue;
      const subs = this.#byLogin.get(login);
      if (!subs) continue;
      for (const s of [...subs]) if (s.clearanceRank >= audience.labelRank) s.push(ev);
    }
  }

  /**
   * Takes every queued copy of the messages (or of the whole conversation, without `ids`) out of
   * every subscription, not only its members': a member removed since a message was queued for
   * them is no longer one. Queues are rare (only congested readers have one), so visiting every
   * subscription costs little. {@link publishDeleted} does it first; a deletion calls it as soon
   * as its rows are committed, so that nothing drains in between, and then {@link notifyDeleted}.
   */
  withdraw(target: { conversation: string; ids?: readonly string[] | undefined }): void {
    const w: Withdrawal = { conversation: target.conversation, ids: target.ids ? new Set(target.ids) : undefined };
    for (const r of this.#records) r.push(w);
    for (const set of [...this.#byLogin.values()]) for (const s of [...set]) s.withdraw(w);
  }

  /**
   * Records the withdrawals from now until `close()`. The writer opens one before a batch commits
   * and publishes only what none of them covers: a deletion that commits between the batch's
   * commit and its publication (the members query waits on a busy reader; refused keys are
   * destroyed first) withdrew from the queues before the message was in any, and its publication
   * after that would hand every listener a message that no longer exists, body and all.
   */
  recordWithdrawals(): WithdrawalRecord {
    const list: Withdrawal[] = [];
    this.#records.add(list);
    return {
      covers: (conversation, id) => list.some((w) => w.conversation === conversation && (!w.ids || w.ids.has(id))),
      close: () => void this.#records.delete(list),
    };
  }

  /** Tells `logins` that messages (or a whole conversation, without `ids`) are gone, once their queued copies are withdrawn. */
  publishDeleted(logins: Iterable<string>, data: { conversation: string; ids?: string[] }): void {
    this.withdraw(data);
    this.notifyDeleted(logins, data);
  }

  /**
   * Only the `deleted` event, for a caller that withdrew the copies itself when its rows committed
   * (deletion.ts, retention-sweep.ts): nothing of the deleted rows can be queued since, so a second pass over every
   * subscription would find nothing.
   */
  notifyDeleted(logins: Iterable<string>, data: { conversation: string; ids?: string[] }): void {
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
