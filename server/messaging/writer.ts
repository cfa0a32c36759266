/**
 * The batching writer: every accepted message goes through here. Messages that arrive within a
 * few milliseconds share one key-store transaction per conversation and one vault transaction,
 * which is what makes thousands of signed messages per second possible on SQLite.
 *
 * Order per batch (ARCHITECTURE.md "write order keeps crashes harmless"): the messages' DEKs
 * committed to keys.db → header, signature and body encrypted with them → one vault transaction inserting every row and finalising attachments,
 * sequence numbers assigned by SQLite inside it → keys of messages that were refused are
 * destroyed again → each request's promise resolves with its sequence number. In the appliance a
 * check worker has already made each DEK, wrapped it under the conversation key and sealed the
 * message (check-worker.ts), so the first step only stores the wrapped keys; messages that come
 * without (injected checkers in tests) get keys and are sealed here with WebCrypto.
 */
import { seal, type CryptoKey } from '../vault/index.js';
import { messageAad, packMessage, type Ctx } from './context.js';
import type { SealedMessage } from './check-protocol.js';
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
  /** Keyed hash of the signed header's digest: links the audit entry to the signature, content-free. */
  headerHash?: string;
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
  /** Already sealed off the main thread (check-worker.ts): its wrapped key and blob; the writer only stores them. */
  sealed?: SealedMessage;
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

const COLUMNS = 'id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed';
const ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?)';
/** 9 parameters a row; 100 rows stay far below SQLite's parameter limit. */
const ROWS_PER_INSERT = 100;

function rowParams(m: StagedMessage, blob: Uint8Array): unknown[] {
  return [m.id, m.conversation, m.sender, m.label, m.labelRank, m.urgent ? 1 : 0, m.sentAt, m.receivedAt, blob];
}

function chunks<T>(list: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += n) out.push(list.slice(i, i + n));
  return out;
}

const ATTACH_SQL = `UPDATE msg_files SET state = 'final', message = ?
  WHERE id = ? AND state = 'pending' AND uploader = ? AND conversation = ? AND sha384 = ? AND size = ?`;

export class BatchWriter {
  readonly #ctx: Ctx;
  readonly #after: AfterCommit;
  readonly #inTx: InTransaction | undefined;
  #queue: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** Stage 1 (keys + sealing) of the newest batch, while it runs. */
  #preparing: Promise<void> | undefined;
  /** Stage 2 (vault transaction + settling), chained so batches commit in order. */
  #tail: Promise<void> = Promise.resolve();
  /** Batches started and not yet committed (at most 2). */
  #writing = 0;
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
    if (this.#preparing || this.#writing >= 2) return; // re-checked when a stage ends
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

  /**
   * Two stages overlap: while batch N is written to vault.db, the keys of batch N+1 are made in
   * keys.db and its messages sealed. Writes stay strictly in batch order (one chain), and at
   * most one prepared batch waits for the writer, so memory stays bounded.
   */
  #start(): void {
    if (this.#preparing || this.#writing >= 2 || this.#queue.length === 0) return;
    const batch = this.#queue.splice(0, this.#ctx.config.batchMax);
    this.#writing++;
    const prepared = this.#prepare(batch);
    this.#preparing = prepared.then(
      () => undefined,
      () => undefined,
    );
    void this.#preparing.then(() => {
      this.#preparing = undefined;
      if (this.#queue.length) this.#schedule();
    });
    this.#tail = this.#tail
      .then(async () => {
        const sealed = await prepared;
        await this.#commit(sealed);
      })
      .catch((err: unknown) => {
        for (const p of batch) p.reject(err);
      })
      .finally(() => {
        for (const p of batch) this.#inFlight.delete(p.m.id);
        this.#writing--;
        if (this.#queue.length) this.#schedule();
      });
  }

  /** Waits until everything queued so far is written. */
  async drain(): Promise<void> {
    while (this.#queue.length || this.#preparing || this.#writing > 0) {
      this.#start();
      await Promise.all([this.#preparing, this.#tail]);
    }
  }

  /** Refuses new messages and finishes the queued ones. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.drain();
  }

  /**
   * Stage 1: the batch's message keys committed to keys.db and its messages sealed. Messages a
   * check worker sealed already only have their wrapped keys stored; the others get keys and
   * are sealed here. Returns what goes on to the vault transaction; the rest is rejected.
   */
  async #prepare(batch: Pending[]): Promise<{ p: Pending; blob: Uint8Array }[]> {
    const pre = this.#ctx.keys.storeWrappedKeys ? batch.filter((p) => p.m.sealed) : [];
    const rest = pre.length ? batch.filter((p) => !p.m.sealed) : batch;
    const [stored, made] = await Promise.all([
      this.#storeSealed(pre),
      this.#keyAndSeal(rest).catch((err: unknown) => {
        for (const p of rest) p.reject(err);
        return [];
      }),
    ]);
    return stored.length && made.length ? [...stored, ...made] : stored.length ? stored : made;
  }

  /** Stores the wrapped keys of messages sealed by a check worker: one keys.db statement. */
  async #storeSealed(list: Pending[]): Promise<{ p: Pending; blob: Uint8Array }[]> {
    const out: { p: Pending; blob: Uint8Array }[] = [];
    const store = async (items: Pending[]): Promise<void> => {
      try {
        const live = await this.#ctx.keys.storeWrappedKeys!(
          items.map(({ m }) => ({ convId: m.conversation, msgId: m.id, wrapped: m.sealed!.wrapped })),
        );
        for (const p of items) {
          if (live.has(p.m.conversation)) out.push({ p, blob: p.m.sealed!.blob });
          else p.reject(new ConversationNotFoundError(`conversation ${p.m.conversation} no longer exists`));
        }
      } catch (err) {
        if ((err as { code?: unknown }).code === 'VAULT_KEY_EXISTS') {
          // Some id already has a key (a replay); nothing was stored. Find it one by one.
          if (items.length === 1) items[0]!.reject(new ReplayError(`message ${items[0]!.m.id} was seen before`));
          else for (const p of items) await store([p]);
          return;
        }
        for (const p of items) p.reject(err instanceof Error ? err : new Error(String(err)));
      }
    };
    if (list.length) await store(list);
    return out;
  }

  /** Keys made and messages sealed on this thread (WebCrypto): messages no check worker sealed. */
  async #keyAndSeal(batch: Pending[]): Promise<{ p: Pending; blob: Uint8Array }[]> {
    if (batch.length === 0) return [];
    const ctx = this.#ctx;
    // 1. Keys first: one keys.db transaction for the whole batch (per conversation only to find a replay).
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
        if ((err as { code?: unknown }).code === 'VAULT_KEY_NOT_FOUND') {
          for (const p of list) p.reject(new ConversationNotFoundError(`conversation ${conv} no longer exists`, { cause: err }));
          return;
        }
        // Anything else (a full disk: VAULT_FULL) is what it is, not a missing conversation
        // (issue 8, disk full: it answered 404 CONVERSATION_NOT_FOUND).
        for (const p of list) p.reject(err instanceof Error ? err : new Error(String(err)));
      }
    };
    const many = ctx.keys.createMessageKeysMany?.bind(ctx.keys);
    let done = false;
    if (many) {
      // One keys.db transaction for the whole batch; on a replay (some id has a key) nothing was
      // stored, and the per-conversation path below finds the culprit.
      try {
        const made = await many([...byConv].map(([convId, list]) => ({ convId, msgIds: list.map((p) => p.m.id) })));
        for (const [conv, list] of byConv) {
          const keys = made.get(conv);
          for (const p of list) {
            const key = keys instanceof Map ? keys.get(p.m.id) : undefined;
            if (key) keyed.push({ p, key });
            else p.reject(new ConversationNotFoundError(`conversation ${conv} no longer exists`, keys instanceof Error ? { cause: keys } : undefined));
          }
        }
        done = true;
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'VAULT_KEY_EXISTS') {
          for (const list of byConv.values()) for (const p of list) p.reject(err instanceof Error ? err : new Error(String(err)));
          return [];
        }
      }
    }
    if (!done) for (const [conv, list] of byConv) await makeKeys(conv, list);
    if (keyed.length === 0) return [];

    // 2. Encrypt everything in parallel on the thread pool.
    try {
      return await Promise.all(
        keyed.map(async ({ p, key }) => {
          const { m } = p;
          const blob = await seal(key, packMessage(m.header, m.signature, m.body), messageAad(m.id), ctx.random);
          return { p, blob };
        }),
      );
    } catch (err) {
      await ctx.keys.destroyMessageKeys(keyed.map(({ p }) => p.m.id)).catch(() => undefined);
      throw err;
    }
  }

  /** 3. One vault transaction for all rows of a prepared batch, then settle each request. */
  async #commit(sealed: { p: Pending; blob: Uint8Array }[]): Promise<void> {
    if (sealed.length === 0) return;
    const ctx = this.#ctx;
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
      // Which conversations still exist and which ids are guarded (deleted): one query per batch
      // (each statement is a thread-pool round trip while the write lock is held).
      const convIds = [...new Set(sealed.map(({ p }) => p.m.conversation))];
      const subjects = sealed.map(({ p }) => p.m.subject);
      const live = new Set<string>();
      const guarded = new Set<string>();
      for (let i = 0; i < Math.max(convIds.length, subjects.length); i += 400) {
        const convPart = convIds.slice(i, i + 400);
        const subjPart = subjects.slice(i, i + 400);
        const rows = await tx.all<{ k: string; v: string }>(
          `SELECT 'c' AS k, id AS v FROM msg_conversations WHERE id IN (${convPart.map(() => '?').join(',') || 'NULL'})
           UNION ALL
           SELECT 'g' AS k, id_hash AS v FROM msg_replay_guard WHERE id_hash IN (${subjPart.map(() => '?').join(',') || 'NULL'})`,
          [...convPart, ...subjPart],
        );
        for (const r of rows) (r.k === 'c' ? live : guarded).add(r.v);
      }
      const plain: { p: Pending; blob: Uint8Array }[] = [];
      const withFiles: { p: Pending; blob: Uint8Array }[] = [];
      for (const s of sealed) {
        const m = s.p.m;
        if (!live.has(m.conversation)) outcome.set(s.p, new ConversationNotFoundError(`conversation ${m.conversation} no longer exists`));
        else if (guarded.has(m.subject)) outcome.set(s.p, new ReplayError(`message ${m.id} was seen before`));
        else (m.attachments.length ? withFiles : plain).push(s);
      }
      // Messages without attachments: multi-row inserts, seq read back with RETURNING. A row
      // skipped by ON CONFLICT is an id stored before: a replay.
      for (const part of chunks(plain, ROWS_PER_INSERT)) {
        const returned = await tx.all<{ id: string; seq: number }>(
          `INSERT INTO msg_messages (${COLUMNS}) VALUES ${part.map(() => ROW).join(',')}
           ON CONFLICT (id) DO NOTHING RETURNING id, seq`,
          part.flatMap(({ p, blob }) => rowParams(p.m, blob)),
        );
        const seqs = new Map(returned.map((r) => [r.id, r.seq]));
        for (const { p } of part) {
          const seq = seqs.get(p.m.id);
          outcome.set(p, seq !== undefined ? committed(p.m, seq) : new ReplayError(`message ${p.m.id} was seen before`));
        }
      }
      // A message with attachments is all-or-nothing: a savepoint around it.
      for (const { p, blob } of withFiles) {
        const m = p.m;
        try {
          const c = await ctx.db.transaction(async (sp) => {
            const [row] = await sp.all<{ seq: number }>(
              `INSERT INTO msg_messages (${COLUMNS}) VALUES ${ROW} ON CONFLICT (id) DO NOTHING RETURNING seq`,
              rowParams(m, blob),
            );
            if (!row) throw new ReplayError(`message ${m.id} was seen before`);
            for (const a of m.attachments) {
              const u = await sp.run(ATTACH_SQL, [m.id, a.id, m.sender, m.conversation, a.sha384, a.size]);
              if (u.changes !== 1) {
                throw new AttachmentInvalidError(
                  `attachment ${a.id} is not a pending upload of ${m.sender} in this conversation with that digest and size`,
                );
              }
            }
            return committed(m, row.seq);
          });
          outcome.set(p, c);
        } catch (err) {
          outcome.set(p, err instanceof Error ? err : new Error(String(err)));
        }
      }
      if (this.#inTx) {
        const done = sealed.flatMap(({ p }) => {
          const o = outcome.get(p);
          return isCommitted(o) ? [{ m: p.m, c: o }] : [];
        });
        // In seq order, so audit entries follow the message order.
        done.sort((x, y) => x.c.seq - y.c.seq);
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
