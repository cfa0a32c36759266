/**
 * Delivery receipts of live delivery, batched process-wide (issue 8, bench/live).
 *
 * Every message pushed over SSE counts as delivered. Writing that mark per connection (one
 * transaction, one fsync each, every second) made hundreds of fsyncs per second with 500 live
 * readers and slowed the message writer down. Here connections only {@link DeliveryMarks.report}
 * (login, conversation, seq) in memory, keeping the highest seq per (login, conversation), and
 * every `intervalMs` all of them are written in ONE vault transaction: multi-row statements, a
 * watermark that only moves forward, a mark row for each watermark that moved, and the live
 * receipt events for the senders afterwards, as `markDelivered` does for one (message-marks.ts).
 * {@link DeliveryMarks.close} writes what is pending (graceful stop: no receipt is lost).
 *
 * Membership is respected as in `markDelivered`: only an existing `msg_members` row moves, so a
 * reader removed from the conversation (or a destroyed conversation) gets no mark. Delivery marks
 * are not audited (neither are the unbatched ones).
 */
import type { Ctx } from './context.js';
import { RECENT_SENDERS_SQL, RECENT_SENDERS_WINDOW } from './message-marks.js';
import { chunks, marks } from '../vault/index.js';
import { errorFields } from '../log.js';

/** What the batcher needs from the messaging context. */
export type DeliveryMarksCtx = Pick<Ctx, 'db' | 'hub' | 'now' | 'log'>;

/** Options of {@link DeliveryMarks}. */
export interface DeliveryMarksOptions {
  /** How long a reported mark may wait before it is written. Default 1000 ms. */
  intervalMs?: number;
}

/** One pending watermark: the highest seq reported and when it was reported (the receipt's time). */
interface Pending {
  seq: number;
  at: string;
}

/** Rows per statement: 4 parameters each, far below SQLite's 32,766 host parameters. */
const CHUNK = 500;
/** Senders told about one mark, newest first (as `markDelivered`). */
const SENDERS_MAX = 50;

/**
 * The process-wide delivery-mark batcher; one per messaging service.
 *
 * @example
 * const marks = new DeliveryMarks(ctx);
 * marks.report('alee', conversationId, 42);   // from a live connection, synchronous
 * await marks.close();                         // at shutdown, before the vault closes
 */
export class DeliveryMarks {
  readonly #ctx: DeliveryMarksCtx;
  readonly #intervalMs: number;
  /** login → conversation → pending watermark. */
  #pending = new Map<string, Map<string, Pending>>();
  #timer: NodeJS.Timeout | undefined;
  /** The flush in progress: flushes never overlap, so watermarks are written in order. */
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(ctx: DeliveryMarksCtx, opts: DeliveryMarksOptions = {}) {
    this.#ctx = ctx;
    this.#intervalMs = opts.intervalMs ?? 1000;
  }

  /** Number of (login, conversation) watermarks waiting to be written (tests, health). */
  get pending(): number {
    let n = 0;
    for (const convs of this.#pending.values()) n += convs.size;
    return n;
  }

  /**
   * `login` received the messages of `conversation` up to `seq`. In memory only; written within
   * one interval. Ignored once closed (the service is stopping and has written what it had).
   */
  report(login: string, conversation: string, seq: number): void {
    if (this.#closed) return;
    const convs = this.#pending.get(login);
    const p = convs?.get(conversation);
    if (p && p.seq >= seq) return;
    this.#merge(login, conversation, seq, this.#ctx.now().toISOString());
  }

  #merge(login: string, conversation: string, seq: number, at: string): void {
    let convs = this.#pending.get(login);
    if (!convs) this.#pending.set(login, (convs = new Map()));
    const p = convs.get(conversation);
    if (!p) convs.set(conversation, { seq, at });
    else if (p.seq < seq) {
      p.seq = seq;
      p.at = at;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#intervalMs).unref();
  }

  /** Writes every pending watermark now, in one transaction; resolves once written. Never rejects. */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flushing = this.#flushing
      .then(() => this.#write())
      .catch((err: unknown) => this.#ctx.log('messaging.delivery-marks-failed', errorFields(err)));
    return this.#flushing;
  }

  /** Stops taking reports and writes the pending ones (call before the vault closes). */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    const rows: { login: string; conversation: string; seq: number; at: string }[] = [];
    for (const [login, convs] of batch) for (const [conversation, p] of convs) rows.push({ login, conversation, ...p });
    let moved: typeof rows;
    try {
      moved = await this.#ctx.db.transaction(async (tx) => {
        const out: typeof rows = [];
        for (const chunk of chunks(rows, CHUNK)) {
          const updated = await tx.all<{ conversation: string; login: string }>(
            `WITH v(conversation, login, seq) AS (VALUES ${marks(chunk.length, '(?, ?, ?)')})
             UPDATE msg_members SET delivered_seq = v.seq FROM v
             WHERE msg_members.conversation = v.conversation AND msg_members.login = v.login
               AND msg_members.delivered_seq < v.seq
             RETURNING msg_members.conversation AS conversation, msg_members.login AS login`,
            chunk.flatMap((r) => [r.conversation, r.login, r.seq]),
          );
          if (updated.length === 0) continue;
          const now = updated.map((u) => batch.get(u.login)!.get(u.conversation)!);
          const movedRows = updated.map((u, k) => ({ login: u.login, conversation: u.conversation, seq: now[k]!.seq, at: now[k]!.at }));
          await tx.run(
            `INSERT INTO msg_marks (conversation, login, kind, seq, at) VALUES ${movedRows.map(() => `(?, ?, 'delivered', ?, ?)`).join(', ')}`,
            movedRows.flatMap((r) => [r.conversation, r.login, r.seq, r.at]),
          );
          out.push(...movedRows);
        }
        return out;
      });
    } catch (err) {
      // Keep them for the next interval (a watermark: merging keeps the highest), unless stopping.
      if (!this.#closed) for (const r of rows) this.#merge(r.login, r.conversation, r.seq, r.at);
      this.#ctx.log('messaging.delivery-marks-failed', { count: rows.length, ...errorFields(err) });
      return;
    }
    await this.#tellSenders(moved).catch((err: unknown) =>
      this.#ctx.log('messaging.delivery-receipts-failed', errorFields(err)),
    );
  }

  /**
   * Live receipts for the senders whose messages the moved marks passed. Readers of one
   * conversation mostly share the same watermark (the last message pushed), so the senders are
   * looked up once per (conversation, seq), not once per reader.
   */
  async #tellSenders(moved: readonly { login: string; conversation: string; seq: number; at: string }[]): Promise<void> {
    const senders = new Map<string, string[]>();
    for (const m of moved) {
      const key = `${m.seq}:${m.conversation}`;
      let list = senders.get(key);
      if (!list) {
        // One more than the cap, so that leaving out the reader still leaves up to SENDERS_MAX.
        // The senders of the newest messages the mark passed, in a bounded window (see
        // RECENT_SENDERS_SQL: a DISTINCT over the whole conversation visited every row).
        const rows = await this.#ctx.db.all<{ sender: string }>(RECENT_SENDERS_SQL, [m.conversation, m.seq, RECENT_SENDERS_WINDOW, '']);
        senders.set(key, (list = rows.map((r) => r.sender)));
      }
      let told = 0;
      for (const s of list) {
        if (s === m.login) continue;
        if (told++ === SENDERS_MAX) break;
        this.#ctx.hub.publishReceipt(s, { conversation: m.conversation, login: m.login, kind: 'delivered', upTo: m.seq, at: m.at });
      }
    }
  }
}
