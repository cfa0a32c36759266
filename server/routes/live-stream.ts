/**
 * One open `/v1/events` stream (events.ts): the sink its subscription pushes into, synchronously,
 * writing each event's SSE frame (encoded once for all its readers) straight to the Node response,
 * corked to one TLS write per tick; the messages that may still sit unsent in the socket's buffer,
 * so that a deletion of one cuts the connection; the deletions that commit while a replay runs.
 */
import type { ServerResponse } from 'node:http';
import type { MessagingRouteDeps } from '../messaging/http.js';
import type { LiveEvent, LiveSink, Subscription } from '../messaging/index.js';
import type { Withdrawal } from '../messaging/event-hub.js';

/** The SSE frame of an event, encoded once per event whatever the number of its readers. */
const frames = new WeakMap<LiveEvent, Buffer>();
function frameOf(ev: LiveEvent): Buffer {
  let f = frames.get(ev);
  if (!f) {
    f = Buffer.from(sseFrame(ev.kind, JSON.stringify(ev.data), ev.kind === 'message' ? ev.seq : undefined));
    frames.set(ev, f);
  }
  return f;
}

/** `event:`/`id:`/`data:` lines; JSON has no raw newline, so the data is one line. */
export function sseFrame(event: string, data: string, id?: number): string {
  return `event: ${event}\n${id !== undefined ? `id: ${id}\n` : ''}data: ${data}\n\n`;
}

export type Svc = () => MessagingRouteDeps['messaging'];

/**
 * One open stream: the sink of its subscription. Kept small on purpose (one per idle connection):
 * no closure per connection besides the response's close listener.
 */
export class LiveStream implements LiveSink {
  /** Highest message seq written (replayed or live); live events at or below it are skipped. */
  last = 0;
  /**
   * When (performance.now()) its session stops being valid unless used again, as the store last
   * answered; Infinity while a re-check is under way (its answer sets the next one).
   */
  due = Infinity;
  #corked = false;
  #ended = false;
  /**
   * The messages written since the socket's buffer was last empty, as flat (conversation, id)
   * pairs: what may still sit in this process, unsent, when a deletion of it commits. One array,
   * emptied in place, so delivering to an idle connection allocates nothing.
   */
  #unsent: (string | undefined)[] | undefined;
  /**
   * While the replay runs: the deletions committed since it began. Its page was read before them,
   * so what they cover must not be written from it.
   */
  #replayWithdrawn: Withdrawal[] | undefined;

  constructor(
    readonly out: ServerResponse,
    readonly sub: Subscription,
    readonly login: string,
    readonly token: string,
    readonly fingerprint: string,
    readonly svc: Svc,
  ) {}

  deliver(ev: LiveEvent): boolean {
    if (this.#ended) return true;
    if (ev.kind === 'message') {
      if (ev.seq <= this.last) return true;
      this.last = ev.seq;
      this.#track(ev.conversation, ev.id);
      // Pushed counts as delivered (API.md receipts); written in the service's next batch.
      this.svc().reportDelivered(this.login, ev.conversation, ev.seq);
    }
    if (this.write(frameOf(ev))) return true;
    // Congested: the subscription queues (bounded) until the socket drains.
    this.out.once('drain', () => this.sub.resume());
    return false;
  }

  /**
   * A deletion committed. A frame of what it destroyed that still waits in the socket's buffer
   * cannot be taken back out of it: the connection is cut instead (the client resumes with
   * Last-Event-ID, and the vault no longer has what was deleted).
   */
  withdraw(w: Withdrawal): void {
    this.#replayWithdrawn?.push(w);
    const unsent = this.#unsent;
    if (this.#ended || this.out.destroyed || !unsent?.length) return;
    if (this.out.writableLength === 0) {
      unsent.length = 0;
      return;
    }
    for (let i = 0; i < unsent.length; i += 2) {
      if (unsent[i] !== w.conversation) continue;
      const id = unsent[i + 1];
      // A message without an id cannot be told apart: cut, as the hub drops such a queue.
      if (!w.ids || id === undefined || w.ids.has(id)) return void this.out.destroy();
    }
  }

  /** Notes a message written: until the socket's buffer empties, a deletion of it cuts the connection. */
  #track(conversation: string, id: string | undefined): void {
    const unsent = (this.#unsent ??= []);
    if (this.out.writableLength === 0) unsent.length = 0; // all before it left the process
    unsent.push(conversation, id);
  }

  /** The replay begins: deletions from now on are remembered for {@link replayable}. */
  replayStarts(): void {
    this.#replayWithdrawn = [];
    this.sub.watch(this);
  }

  /** The replay ended: live delivery (with its own withdrawals) takes over. */
  replayEnds(): void {
    this.#replayWithdrawn = undefined;
  }

  /** Whether a replayed message, read before the deletions since the replay began, is still to be sent. */
  replayable(conversation: string, id: string): boolean {
    for (const w of this.#replayWithdrawn ?? []) if (w.conversation === conversation && (!w.ids || w.ids.has(id))) return false;
    return true;
  }

  /** Writes a replayed message, tracked as a live one is so that a deletion committed while it waits is withdrawn. */
  writeReplayed(conversation: string, id: string, frame: string): void {
    this.#track(conversation, id);
    this.write(frame);
  }

  /** Writes, corking the socket until the end of the tick: a batch of messages → one TLS write. */
  write(chunk: Buffer | string): boolean {
    const out = this.out;
    if (this.#ended || out.destroyed) return true;
    if (!this.#corked) {
      this.#corked = true;
      out.cork();
      process.nextTick(uncork, this);
    }
    return out.write(chunk);
  }

  uncork(): void {
    this.#corked = false;
    if (!this.out.destroyed) this.out.uncork();
  }

  /** A write returned false: resolves when the socket drained or closed. */
  drained(): Promise<void> {
    const out = this.out;
    if (!out.writableNeedDrain || out.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        out.off('drain', done);
        out.off('close', done);
        resolve();
      };
      out.on('drain', done);
      out.on('close', done);
    });
  }

  /** The subscription ended (queue overflow, service closing, session ended): end the response. */
  ended(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.out.destroyed && !this.out.writableEnded) this.out.end();
  }

  get isEnded(): boolean {
    return this.#ended;
  }
}

function uncork(s: LiveStream): void {
  s.uncork();
}
