/**
 * The batching writer: every accepted message goes through here. Messages that arrive within a
 * few milliseconds share one key-store transaction per conversation and one vault transaction,
 * which is what makes thousands of signed messages per second possible on SQLite.
 *
 * Order per batch (ARCHITECTURE.md "write order keeps crashes harmless"): create the messages'
 * DEKs in keys.db (committed) → encrypt header, signature and body with them (WebCrypto, thread
 * pool, all in parallel) → one vault transaction inserting every row and finalising attachments,
 * sequence numbers assigned by SQLite inside it → keys of messages that were refused are
 * destroyed again → each request's promise resolves with its sequence number.
 */
import { seal, type CryptoKey } from '../vault/index.js';
import { messageAad, packMessage, type Ctx } from './context.js';
import {
  AttachmentInvalidError,
  ConversationNotFoundError,
  MessagingClosedError,
  ReplayError,
} from './errors.js';

/** A verified message, ready to be stored. Plaintext lives only in memory until sealed. */
export interface StagedMessage {
  id: string;
  /** Keyed hash of `message:<id>`: the audit subject and the replay-guard key. */
  subject: string;
  conversation: string;
  sender: string;
  label: string;
  labelRank: number;
  urgent: boolean;
  sentAt: string;
  receivedAt: string;
  header: Uint8Array;
  signature: Uint8Array;
  body: Uint8Array;
  attachments: readonly { id: string; sha384: string; size: number }[];
}

/** What the writer answers for a stored message. */
export interface Committed {
  seq: number;
  id: string;
  conversation: string;
  receivedAt: string;
}

interface Pending {
  m: StagedMessage;
  resolve: (c: Committed) => void;
  reject: (e: unknown) => void;
}

/** Called after a batch committed (live events, audit); errors there never fail the messages. */
export type AfterCommit = (batch: readonly { m: StagedMessage; c: Committed }[]) => Promise<void>;

/**
 * Called inside the vault transaction with the messages about to commit (the audit append: it
 * becomes a savepoint of this transaction, so a message and its audit entry commit together).
 * Throwing fails the whole batch.
 */
export type InTransaction = (batch: readonly { m: StagedMessage; c: Committed }[]) => Promise<void>;

const INSERT_SQL = `INSERT INTO msg_messages
  (id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed)
  SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
  WHERE EXISTS (SELECT 1 FROM msg_conversations WHERE id = ?)
    AND NOT EXISTS (SELECT 1 FROM msg_replay_guard WHERE id_hash = ?)
  ON CONFLICT (id) DO NOTHING`;

const ATTACH_SQL = `UPDATE msg_files SET state = 'final', message = ?
  WHERE id = ? AND state = 'pending' AND uploader = ? AND conversation = ? AND sha384 = ? AND size = ?`;

export class BatchWriter {
  readonly #ctx: Ctx;
  readonly #after: AfterCommit;
  readonly #inTx: InTransaction | undefined;
  #queue: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  /** Ids queued or being written: a second copy in the same window is a replay. */
  readonly #inFlight = new Set<string>();
  #closed = false;

  constructor(ctx: Ctx, after: AfterCommit, inTx?: InTransaction) {
    this.#ctx = ctx;
    this.#after = after;
    this.#inTx = inTx;
  }

  /** Queues a message; resolves once it is committed. @throws ReplayError, ConversationNotFoundError, AttachmentInvalidError */
  submit(m: StagedMessage): Promise<Committed> {
    if (this.#closed) return Promise.reject(new MessagingClosedError('the messaging service is closed'));
    if (this.#inFlight.has(m.id)) return Promise.reject(new ReplayError(`message ${m.id} was already submitted`));
    this.#inFlight.add(m.id);
    return new Promise<Committed>((resolve, reject) => {
      this.#queue.push({ m, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#running) return; // the running flush re-checks the queue when it ends
    if (this.#queue.length >= this.#ctx.config.batchMax) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#start();
    } else if (!this.#timer) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#start();
      }, this.#ctx.config.batchDelayMs);
    }
  }

  #start(): void {
    if (this.#running || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#ctx.config.batchMax);
    this.#running = this.#flush(batch)
      .catch((err) => {
        for (const p of batch) p.reject(err);
      })
      .finally(() => {
        for (const p of batch) this.#inFlight.delete(p.m.id);
        this.#running = undefined;
        if (this.#queue.length) this.#schedule();
      });
  }

  /** Waits until everything queued so far is written. */
  async drain(): Promise<void> {
    while (this.#queue.length || this.#running) {
      if (!this.#running) this.#start();
      await this.#running;
    }
  }

  /** Refuses new messages and finishes the queued ones. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.drain();
  }

  async #flush(batch: Pending[]): Promise<void> {
    const ctx = this.#ctx;
    // 1. Keys first, one key-store transaction per conversation.
    const byConv = new Map<string, Pending[]>();
    for (const p of batch) {
      const list = byConv.get(p.m.conversation);
      if (list) list.push(p);
      else byConv.set(p.m.conversation, [p]);
    }
    const keyed: { p: Pending; key: CryptoKey }[] = [];
    const makeKeys = async (conv: string, list: Pending[]): Promise<void> => {
      try {
        const keys = await ctx.keys.createMessageKeys(conv, list.map((p) => p.m.id));
        for (const p of list) {
          const key = keys.get(p.m.id);
          if (key) keyed.push({ p, key });
          else p.reject(new ConversationNotFoundError(`conversation ${conv} has no key`));
        }
      } catch (err) {
        if ((err as { code?: unknown }).code === 'VAULT_KEY_EXISTS') {
          // Some id of the batch already has a key: it was stored before (a replay). The key
          // store rolled the batch back; find the culprit by retrying one by one.
          if (list.length === 1) list[0]!.reject(new ReplayError(`message ${list[0]!.m.id} was seen before`));
          else for (const p of list) await makeKeys(conv, [p]);
          return;
        }
        // The conversation's key is gone: it was destroyed between validation and now.
        for (const p of list) p.reject(new ConversationNotFoundError(`conversation ${conv} no longer exists`, { cause: err }));
      }
    };
    for (const [conv, list] of byConv) await makeKeys(conv, list);
    if (keyed.length === 0) return;

    // 2. Encrypt everything in parallel on the thread pool.
    const sealed = await Promise.all(
      keyed.map(async ({ p, key }) => {
        const { m } = p;
        const blob = await seal(key, packMessage(m.header, m.signature, m.body), messageAad(m.id), ctx.random);
        return { p, blob };
      }),
    );

    // 3. One transaction for all rows.
    const outcome = new Map<Pending, Committed | Error>();
    try {
      await this.#write(sealed, outcome);
    } catch (err) {
      // Nothing of the batch was stored: its keys go too, or a retry of the same message would
      // be refused as a replay (the key store refuses a second key for an id).
      await ctx.keys.destroyMessageKeys(sealed.map(({ p }) => p.m.id)).catch((e: unknown) =>
        ctx.log('messaging.orphan-keys', { count: sealed.length, error: String(e) }),
      );
      throw err;
    }
    await this.#settle(sealed, outcome);
  }

  async #write(
    sealed: { p: Pending; blob: Uint8Array }[],
    outcome: Map<Pending, Committed | Error>,
  ): Promise<void> {
    const ctx = this.#ctx;
    await ctx.db.transaction(async (tx) => {
      const ins = await tx.prepare(INSERT_SQL);
      const att = await tx.prepare(ATTACH_SQL);
      try {
        for (const { p, blob } of sealed) {
          const m = p.m;
          const params = [
            m.id, m.conversation, m.sender, m.label, m.labelRank, m.urgent ? 1 : 0, m.sentAt, m.receivedAt,
            blob, m.conversation, m.subject,
          ];
          if (m.attachments.length === 0) {
            const r = await ins.run(params);
            outcome.set(p, r.changes === 1 ? committed(m, r.lastID) : await whyNot(tx, m));
            continue;
          }
          // A message with attachments is all-or-nothing: a savepoint around it.
          try {
            const c = await ctx.db.transaction(async (sp) => {
              const r = await ins.run(params);
              if (r.changes !== 1) throw await whyNot(sp, m);
              for (const a of m.attachments) {
                const u = await att.run([m.id, a.id, m.sender, m.conversation, a.sha384, a.size]);
                if (u.changes !== 1) {
                  throw new AttachmentInvalidError(
                    `attachment ${a.id} is not a pending upload of ${m.sender} in this conversation with that digest and size`,
                  );
                }
              }
              return committed(m, r.lastID);
            });
            outcome.set(p, c);
          } catch (err) {
            outcome.set(p, err instanceof Error ? err : new Error(String(err)));
          }
        }
      } finally {
        await ins.finalize();
        await att.finalize();
      }
      if (this.#inTx) {
        const done = sealed.flatMap(({ p }) => {
          const o = outcome.get(p);
          return isCommitted(o) ? [{ m: p.m, c: o }] : [];
        });
        if (done.length) await this.#inTx(done);
      }
    });
  }

  async #settle(sealed: { p: Pending; blob: Uint8Array }[], outcome: Map<Pending, Committed | Error>): Promise<void> {
    const ctx = this.#ctx;

    // 4. Keys of refused messages are destroyed; never leave a key without its row for long.
    const refused = sealed.filter(({ p }) => !isCommitted(outcome.get(p)));
    if (refused.length) {
      await ctx.keys.destroyMessageKeys(refused.map(({ p }) => p.m.id)).catch((err: unknown) =>
        ctx.log('messaging.orphan-keys', { count: refused.length, error: String(err) }),
      );
    }
    const ok: { m: StagedMessage; c: Committed; p: Pending }[] = [];
    for (const { p } of sealed) {
      const o = outcome.get(p);
      if (isCommitted(o)) ok.push({ m: p.m, c: o, p });
      else p.reject(o);
    }
    if (ok.length) {
      try {
        await this.#after(ok);
      } catch (err) {
        ctx.log('messaging.after-commit-failed', { error: String(err) });
      }
    }
    for (const { p, c } of ok) p.resolve(c);
  }
}

function committed(m: StagedMessage, seq: number): Committed {
  return { seq, id: m.id, conversation: m.conversation, receivedAt: m.receivedAt };
}

function isCommitted(o: Committed | Error | undefined): o is Committed {
  return o !== undefined && !(o instanceof Error);
}

async function whyNot(
  tx: { get<T>(sql: string, p?: unknown[]): Promise<T | undefined> },
  m: StagedMessage,
): Promise<Error> {
  const conv = await tx.get('SELECT 1 AS x FROM msg_conversations WHERE id = ?', [m.conversation]);
  if (!conv) return new ConversationNotFoundError(`conversation ${m.conversation} no longer exists`);
  return new ReplayError(`message ${m.id} was seen before`);
}

