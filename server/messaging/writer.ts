/**
 * The batching writer: every accepted message goes through here. Messages that arrive while a
 * batch is written share the next batch: one keys.db statement for their keys and one vault
 * transaction for their rows, which is what makes thousands of signed messages per second
 * possible on SQLite.
 *
 * Every message comes sealed by the checker (check-worker.ts in the appliance): a fresh DEK
 * wrapped under the conversation key, and the header, signature and body sealed under it. Order
 * per batch (ARCHITECTURE.md "write order keeps crashes harmless"): the wrapped DEKs committed to
 * keys.db (overlapping the vault's BEGIN) → one vault transaction inserting every row and
 * finalising attachments, the audit entries with them → keys of messages that were refused are
 * destroyed again → each request's promise resolves with its sequence number.
 *
 * Sequence numbers are the writer's: it is the only code that inserts messages, one batch at a
 * time, so it counts them itself (from the vault's high-water mark, `msg_sequence`, on its first
 * batch) and gives each row its clustered rowid (cluster-key.ts), and its key row the same order
 * in keys.db. A message that does not go in leaves a gap; a failed batch makes the next one read
 * the mark again.
 */
import { chunks, marks } from '../vault/index.js';
import type { Queryable } from '../vault/index.js';
import { clusterKey } from './cluster-key.js';
import { requireRoom, type Ctx } from './context.js';
import type { SealedMessage } from './check-protocol.js';
import {
  AttachmentInvalidError,
  ConversationNotFoundError,
  MessagingClosedError,
  ReplayError,
} from './errors.js';
import { errorFields } from '../log.js';

/** A verified and sealed message, ready to be stored. Its plaintext fields feed live delivery only. */
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
  /** Sealed by the checker (check-worker.ts): the wrapped message key and the blob; the writer only stores them. */
  sealed: SealedMessage;
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
  /** Given by {@link BatchWriter} when its batch starts: orders the row and its key row. */
  seq?: number;
  resolve: (c: Committed) => void;
  reject: (e: unknown) => void;
}

/**
 * Called after a batch committed (live events, audit); errors there never fail the messages.
 * `withdrawn` says whether a deletion that committed since the batch's own commit took a message
 * (event-hub.ts `recordWithdrawals`): live delivery must leave it out.
 */
export type AfterCommit = (
  batch: readonly { m: StagedMessage; c: Committed }[],
  withdrawn: (conversation: string, id: string) => boolean,
) => Promise<void>;

/**
 * Called inside the vault transaction with the messages about to commit (the audit append: it
 * becomes a savepoint of this transaction, so a message and its audit entry commit together).
 * Throwing fails the whole batch.
 */
export type InTransaction = (batch: readonly { m: StagedMessage; c: Committed }[]) => Promise<void>;

const COLUMNS = 'rid, seq, id, conversation, sender, label, label_rank, urgent, sent_at, received_at, sealed';
const ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
/** A row and its subject (the replay-guard key), for the checked insert. */
const ROW_WITH_SUBJECT = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
/** 12 parameters a row; 100 rows stay far below SQLite's parameter limit. */
const ROWS_PER_INSERT = 100;

function rowParams(m: StagedMessage, seq: number, blob: Uint8Array): unknown[] {
  return [clusterKey(m.conversation, seq), seq, m.id, m.conversation, m.sender, m.label, m.labelRank, m.urgent ? 1 : 0, m.sentAt, m.receivedAt, blob];
}

/**
 * The digest was compared by the precheck (message-checks.ts): it is sealed, so SQL cannot
 * compare it, and a completed upload's digest never changes. Here: still pending (not taken by
 * another message or a sweep), complete, and the same uploader, conversation and size.
 */
const ATTACH_SQL = `UPDATE msg_files SET state = 'final', message = ?
  WHERE id = ? AND state = 'pending' AND uploader = ? AND conversation = ? AND sha384 != '' AND size = ?`;

export class BatchWriter {
  readonly #ctx: Ctx;
  readonly #after: AfterCommit;
  readonly #inTx: InTransaction | undefined;
  #queue: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** The batch being written, while one is. */
  #writing: Promise<void> | undefined;
  /** Ids queued or being written: a second copy in the same window is a replay. */
  readonly #inFlight = new Set<string>();
  #closed = false;
  /** The next message's seq; read from the vault by the first batch, and again after a failed one. */
  #nextSeq: number | undefined;

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
    if (this.#writing) return; // the batch in progress starts the next when it ends
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
   * One batch at a time: what queued while batch N was written leaves as batch N+1 the moment N
   * ends (those messages have waited already). There is no separate key stage to overlap: the
   * checker sealed every message, and storing the wrapped keys overlaps the vault's BEGIN.
   */
  #start(): void {
    if (this.#writing || this.#queue.length === 0) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#queue.splice(0, this.#ctx.config.batchMax);
    this.#writing = this.#commit(batch)
      .catch((err: unknown) => {
        for (const p of batch) p.reject(err);
      })
      .finally(() => {
        for (const p of batch) this.#inFlight.delete(p.m.id);
        this.#writing = undefined;
        this.#start();
      });
  }

  /** Waits until everything queued so far is written. */
  async drain(): Promise<void> {
    while (this.#queue.length || this.#writing) {
      this.#start();
      await this.#writing;
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
   * The batch's wrapped message keys committed to keys.db (one statement), each only if its
   * conversation still has a key. Resolves with what goes on to the vault transaction; the rest
   * is rejected here.
   */
  async #storeKeys(list: Pending[]): Promise<{ p: Pending; blob: Uint8Array }[]> {
    const out: { p: Pending; blob: Uint8Array }[] = [];
    const store = async (items: Pending[]): Promise<void> => {
      try {
        const live = await this.#ctx.keys.storeWrappedKeys(
          items.map(({ m, seq }) => ({ convId: m.conversation, msgId: m.id, wrapped: m.sealed.wrapped, order: seq! })),
        );
        for (const p of items) {
          if (live.has(p.m.conversation)) out.push({ p, blob: p.m.sealed.blob });
          else p.reject(new ConversationNotFoundError(`conversation ${p.m.conversation} no longer exists`));
        }
      } catch (err) {
        if ((err as { code?: unknown }).code === 'VAULT_KEY_EXISTS') {
          // Some id already has a key (a replay); nothing was stored. Find it one by one.
          if (items.length === 1) items[0]!.reject(new ReplayError(`message ${items[0]!.m.id} was seen before`));
          else for (const p of items) await store([p]);
          return;
        }
        // A full disk (VAULT_FULL) is what it is, not a missing conversation.
        for (const p of items) p.reject(err instanceof Error ? err : new Error(String(err)));
      }
    };
    if (list.length) await store(list);
    return out;
  }

  /** Keys, then one vault transaction for all rows of the batch, then settle each request. */
  async #commit(batch: Pending[]): Promise<void> {
    const ctx = this.#ctx;
    // Again here, not only at acceptance: messages queued before a deletion released the disk
    // reserve would otherwise be written into the room it released for deletions.
    requireRoom(ctx);
    await this.#giveSeqs(batch);
    // Opened before the commit: a deletion of one of these messages can commit only after it, and
    // may do so before they are published (see AfterCommit).
    const withdrawn = ctx.hub.recordWithdrawals();
    try {
      await this.#commitRecorded(batch, withdrawn.covers);
    } finally {
      withdrawn.close();
    }
  }

  async #commitRecorded(batch: Pending[], withdrawn: (conversation: string, id: string) => boolean): Promise<void> {
    const ctx = this.#ctx;
    // Keys are committed before the rows they open: the vault transaction waits for them after
    // its BEGIN, so the two round trips overlap.
    const keyed = this.#storeKeys(batch);
    const outcome = new Map<Pending, Committed | Error>();
    let stored: { p: Pending; blob: Uint8Array }[];
    try {
      stored = await this.#write(keyed, outcome);
    } catch (err) {
      this.#nextSeq = undefined; // the vault is the truth about which seqs are taken
      // Nothing of the batch was stored in the vault: its keys go too, or a retry of the same
      // message would be refused as a replay (the key store refuses a second key for an id).
      const orphaned = await keyed.catch(() => []);
      if (orphaned.length) {
        await ctx.keys.destroyMessageKeys(orphaned.map(({ p }) => p.m.id)).catch((e: unknown) =>
          ctx.log('messaging.orphan-keys', { count: orphaned.length, ...errorFields(e) }),
        );
      }
      throw err;
    }
    await this.#settle(stored, outcome, withdrawn);
  }

  /**
   * Gives the batch its seqs, in queue order, before anything is stored: the key rows in keys.db
   * are clustered by them as the message rows are (cluster-key.ts). The first batch, and the one
   * after a failed batch, reads the vault's high-water mark: the writer is the only code that
   * inserts messages, and no deletion lowers the mark, so reading it outside a transaction is safe.
   */
  async #giveSeqs(batch: Pending[]): Promise<void> {
    let next = this.#nextSeq ?? (await highWater(this.#ctx.db)) + 1;
    for (const p of batch) p.seq = next++;
    this.#nextSeq = next;
  }

  /** The vault transaction: waits for the batch's keys, then stores every row that has one. */
  async #write(
    keyed: Promise<{ p: Pending; blob: Uint8Array }[]>,
    outcome: Map<Pending, Committed | Error>,
  ): Promise<{ p: Pending; blob: Uint8Array }[]> {
    const ctx = this.#ctx;
    let sealed: { p: Pending; blob: Uint8Array }[] = [];
    await ctx.db.transaction(async (tx) => {
      sealed = await keyed;
      if (sealed.length === 0) return;
      // Why a row did not go in: its conversation is gone, its sender no longer a member, or its id is
      // guarded (deleted). (An id
      // stored before never gets here: the key store refused its key.) One query, asked only about
      // the rows that did not go in — or up front for messages with attachments, which get a
      // savepoint each.
      const classify = async (list: { p: Pending }[]): Promise<Map<Pending, Error>> => {
        const convIds = [...new Set(list.map(({ p }) => p.m.conversation))];
        const subjects = list.map(({ p }) => p.m.subject);
        const pairs = [...new Map(list.map(({ p }) => [memberKey(p.m.conversation, p.m.sender), [p.m.conversation, p.m.sender]] as const)).values()];
        const live = new Set<string>();
        const guarded = new Set<string>();
        const members = new Set<string>();
        for (let i = 0; i < Math.max(convIds.length, subjects.length, pairs.length); i += 200) {
          const convPart = convIds.slice(i, i + 200);
          const subjPart = subjects.slice(i, i + 200);
          const pairPart = pairs.slice(i, i + 200);
          const rows = await tx.all<{ k: string; v: string }>(
            `SELECT 'c' AS k, id AS v FROM msg_conversations WHERE id IN (${marks(convPart.length) || 'NULL'})
             UNION ALL
             SELECT 'g' AS k, id_hash AS v FROM msg_replay_guard WHERE id_hash IN (${marks(subjPart.length) || 'NULL'})
             UNION ALL
             SELECT 'm' AS k, conversation || ' ' || login AS v FROM msg_members
               WHERE (conversation, login) IN (${pairPart.length ? `VALUES ${marks(pairPart.length, '(?, ?)')}` : 'SELECT NULL, NULL'})`,
            [...convPart, ...subjPart, ...pairPart.flat()],
          );
          for (const r of rows) (r.k === 'c' ? live : r.k === 'g' ? guarded : members).add(r.v);
        }
        const why = new Map<Pending, Error>();
        for (const { p } of list) {
          const m = p.m;
          if (!live.has(m.conversation)) why.set(p, new ConversationNotFoundError(`conversation ${m.conversation} no longer exists`));
          // Removed while the message was checked: refused as every later send of theirs is.
          else if (!members.has(memberKey(m.conversation, m.sender))) {
            why.set(p, new ConversationNotFoundError(`${m.sender} is no longer a member of conversation ${m.conversation}`));
          } else if (guarded.has(m.subject)) why.set(p, new ReplayError(`message ${m.id} was seen before`));
        }
        return why;
      };
      const plain = sealed.filter(({ p }) => p.m.attachments.length === 0);
      const withFiles: { p: Pending; blob: Uint8Array }[] = [];
      const filed = sealed.filter(({ p }) => p.m.attachments.length > 0);
      if (filed.length) {
        const why = await classify(filed);
        for (const s of filed) {
          const e = why.get(s.p);
          if (e) outcome.set(s.p, e);
          else withFiles.push(s);
        }
      }
      // Messages without attachments: multi-row inserts that check in the same statement that the
      // conversation exists, the sender is still a member (membership was checked before the
      // signature, and a removal that answered while it was checked must hold: a removed member's
      // message never enters the group after it), and the id is not guarded (one round trip fewer per batch than asking
      // first: the writer's transaction is the serial part of the message path), seq read back
      // with RETURNING.
      for (const part of chunks(plain, ROWS_PER_INSERT)) {
        const returned = await tx.all<{ id: string; seq: number }>(
          `WITH v (${COLUMNS}, subject) AS (VALUES ${part.map(() => ROW_WITH_SUBJECT).join(',')})
           INSERT INTO msg_messages (${COLUMNS})
           SELECT ${COLUMNS} FROM v
           WHERE EXISTS (SELECT 1 FROM msg_conversations c WHERE c.id = v.conversation)
             AND EXISTS (SELECT 1 FROM msg_members mm WHERE mm.conversation = v.conversation AND mm.login = v.sender)
             AND NOT EXISTS (SELECT 1 FROM msg_replay_guard g WHERE g.id_hash = v.subject)
           RETURNING id, seq`,
          part.flatMap(({ p, blob }) => [...rowParams(p.m, p.seq!, blob), p.m.subject]),
        );
        const seqs = new Map(returned.map((r) => [r.id, r.seq]));
        const missing = part.filter(({ p }) => !seqs.has(p.m.id));
        const why = missing.length ? await classify(missing) : new Map<Pending, Error>();
        for (const { p } of part) {
          const seq = seqs.get(p.m.id);
          // Not inserted and neither gone nor guarded: cannot happen (an id stored before was refused
          // by the key store already: keys.db's id is unique, vault.db has no id index), so a replay.
          outcome.set(p, seq !== undefined ? committed(p.m, seq) : (why.get(p) ?? new ReplayError(`message ${p.m.id} was seen before`)));
        }
      }
      // A message with attachments is all-or-nothing: a savepoint around it.
      for (const { p, blob } of withFiles) {
        const m = p.m;
        try {
          const c = await ctx.db.transaction(async (sp) => {
            const [row] = await sp.all<{ seq: number }>(
              `INSERT INTO msg_messages (${COLUMNS}) VALUES ${ROW} RETURNING seq`,
              rowParams(m, p.seq!, blob),
            );
            if (!row) throw new Error(`message ${m.id}: the insert returned no row`);
            for (const a of m.attachments) {
              const u = await sp.run(ATTACH_SQL, [m.id, a.id, m.sender, m.conversation, a.size]);
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
    return sealed;
  }

  async #settle(
    sealed: { p: Pending; blob: Uint8Array }[],
    outcome: Map<Pending, Committed | Error>,
    withdrawn: (conversation: string, id: string) => boolean,
  ): Promise<void> {
    const ctx = this.#ctx;

    // 4. Keys of refused messages are destroyed; never leave a key without its row for long.
    const refused = sealed.filter(({ p }) => !isCommitted(outcome.get(p)));
    if (refused.length) {
      await ctx.keys.destroyMessageKeys(refused.map(({ p }) => p.m.id)).catch((err: unknown) =>
        ctx.log('messaging.orphan-keys', { count: refused.length, ...errorFields(err) }),
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
        await this.#after(ok, withdrawn);
      } catch (err) {
        ctx.log('messaging.after-commit-failed', errorFields(err));
      }
    }
    for (const { p, c } of ok) p.resolve(c);
  }
}

/** The highest seq the vault ever gave (kept by a trigger on insert, so deletions never lower it). */
export async function highWater(db: Queryable): Promise<number> {
  const row = await db.get<{ hi: number }>('SELECT hi FROM msg_sequence');
  if (!row) throw new Error('msg_sequence has no row: the messaging migrations did not run');
  return row.hi;
}

/** A (conversation, login) pair as one string: ids and logins hold no space. */
function memberKey(conversation: string, login: string): string {
  return `${conversation} ${login}`;
}

function committed(m: StagedMessage, seq: number): Committed {
  return { seq, id: m.id, conversation: m.conversation, receivedAt: m.receivedAt };
}

function isCommitted(o: Committed | Error | undefined): o is Committed {
  return o !== undefined && !(o instanceof Error);
}
