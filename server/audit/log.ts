/**
 * The append-only audit log in `vault.db`: every security event is a leaf of an RFC 9162 Merkle
 * tree. The leaf data is the RFC 8785 canonical JSON of the entry (`seq`, `at`, `type`, and the
 * optional `actor`, `subject`, `data`), stored verbatim in column `data` so verification hashes
 * exactly the stored bytes.
 *
 * `seq` is the 0-based leaf index. Leaf hashes are stored with each entry, and the hash of every
 * complete subtree is stored in `audit_nodes` as soon as it completes, so a root or a proof for
 * any size costs O(log n) reads.
 *
 * Entries never contain message content: `data` is caller-supplied metadata (a message is logged
 * by a keyed hash of its header digest, see ARCHITECTURE.md).
 *
 * Signed checkpoints (the audit issue) go in `checkpoint.ts` beside this file: they sign
 * `{size, root}` as returned by {@link AuditLog.root} and are checked with
 * {@link AuditLog.consistencyProof}; this module stays unsigned.
 *
 * This file owns the `AuditLog` class: appending, reading, querying, roots and proofs. Beside it:
 * `entry.ts` (the event, its leaf data, the stored row), `stored-tree.ts` (the tables and node
 * reads), `verify-stored.ts` (verifying the whole stored log).
 */
import type { Db, DbTx } from '../vault/index.js';
import { EventSchema, entryLeafData, rowToEntry, type AuditEntry, type AuditEvent, type AuditRow } from './entry.js';
import { AuditEventInvalidError, AuditRangeError } from './errors.js';
import { consistencyProof, inclusionProof, leafHash, nodeHash, subtreeRoot, type Hash, type NodeSource } from './merkle.js';
import { MIGRATIONS, frontierNodes, frontierOf, insertChunks, readNode, sizeOf } from './stored-tree.js';
import type { LogVerification } from './verify.js';
import { verifyStoredLog } from './verify-stored.js';

// Defined in entry.ts; re-exported so importers of `log.js` keep working.
export { entryLeafData };
export type { AuditEntry, AuditEvent, AuditRow };

/** Filter of {@link AuditLog.query}. */
export interface AuditQuery {
  type?: string;
  since?: Date;
  user?: string;
  /** Only entries with a greater seq (paging). Default: from the start. */
  after?: number;
  /** At most this many (1..1000). Default 1000. */
  limit?: number;
}

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  now?: () => Date;
}

const enc = new TextEncoder();

/** The audit log. Create with {@link AuditLog.open} on `vault.db`. */
export class AuditLog {
  readonly #db: Db;
  readonly #now: () => Date;
  /**
   * The tree's frontier as this instance last wrote it, with the head it produced. An append
   * reads the stored head (one round trip) and uses these nodes only if the head is still exactly
   * that size and root; otherwise (another writer, a rolled-back transaction) it reads the
   * frontier from the tables as before.
   */
  #last: { size: number; root: Hash; nodes: Map<string, Hash> } | undefined;

  private constructor(db: Db, now: () => Date) {
    this.#db = db;
    this.#now = now;
  }

  /** Creates the tables if needed. */
  static async open(db: Db, opts: AuditLogOptions = {}): Promise<AuditLog> {
    await db.migrate(MIGRATIONS);
    return new AuditLog(db, opts.now ?? (() => new Date()));
  }

  /**
   * Appends events in one transaction (a savepoint if the caller is inside one of this Db's
   * transactions, so the events commit or roll back with the caller's writes). With `join`, inside
   * the caller's transaction without a savepoint (Db.within): for a caller that fails its whole
   * transaction when the append throws (the batching writer), two round trips fewer.
   *
   * @throws AuditEventInvalidError if an event fails the schema (nothing is appended).
   */
  async append(events: readonly AuditEvent[], opts: { join?: boolean } = {}): Promise<{ seq: number; leafHash: Hash }[]> {
    const parsed = events.map((e, i) => {
      const r = EventSchema.safeParse(e);
      if (!r.success) {
        const issue = r.error.issues[0];
        throw new AuditEventInvalidError(`event ${i}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, {
          cause: r.error,
        });
      }
      return r.data;
    });
    if (parsed.length === 0) return [];
    const body = async (tx: DbTx): Promise<{ seq: number; leafHash: Hash }[]> => {
      // Nodes made in this batch, so completing a subtree does not re-read what we just made;
      // the left siblings that predate the batch are the old tree's frontier (at most log n
      // nodes): kept from this instance's previous append when the stored head proves them
      // current, else read in one query up front rather than one round trip each.
      const stored = await tx.get<{ size: number; root: Uint8Array }>('SELECT size, root FROM audit_head WHERE id = 1');
      const last = this.#last;
      this.#last = undefined; // until this append's head is known
      let size: number;
      let fresh: Map<string, Hash>;
      if (last && stored && stored.size === last.size && Buffer.from(stored.root).equals(last.root)) {
        size = last.size;
        fresh = new Map(last.nodes);
      } else {
        size = await sizeOf(tx);
        fresh = await frontierNodes(tx, size);
      }
      const node = async (level: number, idx: number): Promise<Hash> => fresh.get(`${level}:${idx}`) ?? readNode(tx, level, idx);
      const leafRows: unknown[][] = [];
      const nodeRows: unknown[][] = [];
      const out: { seq: number; leafHash: Hash }[] = [];
      for (const ev of parsed) {
        const seq = size++;
        const at = (ev.at ?? this.#now()).toISOString();
        const data = entryLeafData(seq, at, ev);
        const lh = leafHash(enc.encode(data));
        leafRows.push([seq, at, ev.type, ev.actor ?? null, ev.subject ?? null, data, lh]);
        fresh.set(`0:${seq}`, lh);
        // Leaf seq completes the subtree at level l iff (seq + 1) is a multiple of 2^l.
        let h = lh;
        for (let level = 1, idx = seq; (seq + 1) % 2 ** level === 0; level++) {
          h = nodeHash(await node(level - 1, idx - 1), h);
          idx = Math.floor(idx / 2);
          nodeRows.push([level, idx, h]);
          fresh.set(`${level}:${idx}`, h);
        }
        out.push({ seq, leafHash: lh });
      }
      // Multi-row INSERTs: one statement per chunk instead of one round trip per row.
      await insertChunks(tx, 'audit_log (seq, at, type, actor, subject, data, leaf_hash)', 7, leafRows);
      await insertChunks(tx, 'audit_nodes (level, idx, hash)', 3, nodeRows);
      const head = await subtreeRoot(0, size, (level, idx) => node(level, idx));
      await tx.run('UPDATE audit_head SET size = ?, root = ? WHERE id = 1', [size, head]);
      const nodes = new Map<string, Hash>();
      for (const [level, idx] of frontierOf(size)) {
        const h = fresh.get(`${level}:${idx}`);
        if (h) nodes.set(`${level}:${idx}`, h);
      }
      this.#last = { size, root: head, nodes };
      return out;
    };
    // join: part of the caller's transaction, no savepoint (its failure fails that transaction).
    return opts.join ? this.#db.within(body) : this.#db.transaction(body);
  }

  /** Number of entries (the current tree size). */
  size(): Promise<number> {
    return sizeOf(this.#db);
  }

  /** Entries with `from ≤ seq < to`, in order (at most 10,000 per call). */
  async entries(from: number, to: number): Promise<AuditEntry[]> {
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 0 || to < from) {
      throw new AuditRangeError(`entries: expected 0 ≤ from ≤ to, got from=${from}, to=${to}`);
    }
    if (to - from > 10_000) throw new AuditRangeError(`entries: at most 10,000 per call, asked ${to - from}`);
    const rows = await this.#db.all<AuditRow>('SELECT seq, data, leaf_hash FROM audit_log WHERE seq >= ? AND seq < ? ORDER BY seq', [
      from,
      to,
    ]);
    return rows.map(rowToEntry);
  }

  /** Raw rows (`seq`, `data`, `leaf_hash`) for export and {@link verifyLog}. */
  rows(from: number, to: number): Promise<AuditRow[]> {
    return this.#db.all<AuditRow>('SELECT seq, data, leaf_hash FROM audit_log WHERE seq >= ? AND seq < ? ORDER BY seq', [from, to]);
  }

  /**
   * A filtered view for auditors: entries with `seq > after`, oldest first, at most `limit`
   * (≤ 1000). `type` matches the type itself and its dotted children (`login` → `login.ok`,
   * `login.failed`); `since` compares the entry time; `user` matches actor or subject (`alee`,
   * `user:alee`).
   */
  async query(f: AuditQuery = {}): Promise<AuditEntry[]> {
    const where = ['seq > ?'];
    const params: unknown[] = [f.after ?? -1];
    if (f.type !== undefined) {
      where.push("(type = ? OR type LIKE ? ESCAPE '\\')");
      params.push(f.type, `${f.type.replace(/[\\%_]/g, (c) => `\\${c}`)}.%`);
    }
    if (f.since !== undefined) {
      where.push('at >= ?');
      params.push(f.since.toISOString());
    }
    if (f.user !== undefined) {
      where.push('(actor = ? OR subject = ? OR subject = ?)');
      params.push(f.user, f.user, `user:${f.user}`);
    }
    const limit = Math.max(1, Math.min(f.limit ?? 1000, 1000));
    const rows = await this.#db.all<AuditRow>(`SELECT seq, data, leaf_hash FROM audit_log WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, [
      ...params,
      limit,
    ]);
    return rows.map(rowToEntry);
  }

  #source(): NodeSource {
    return (level, idx) => readNode(this.#db, level, idx);
  }

  async #checkSize(size: number, what: string): Promise<void> {
    const n = await this.size();
    if (!Number.isSafeInteger(size) || size < 0 || size > n) {
      throw new AuditRangeError(`${what}: size ${size} is outside the log (0..${n})`);
    }
  }

  /** The tree head for `size` (default: now): RFC 9162 MTH over the first `size` entries. */
  async root(size?: number): Promise<{ size: number; root: Hash }> {
    const n = size ?? (await this.size());
    await this.#checkSize(n, 'root');
    return { size: n, root: await subtreeRoot(0, n, this.#source()) };
  }

  /** RFC 9162 §2.1.3 inclusion proof of entry `seq` in the tree of `size`. */
  async inclusionProof(seq: number, size: number): Promise<Hash[]> {
    await this.#checkSize(size, 'inclusionProof');
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= size) {
      throw new AuditRangeError(`inclusionProof: seq ${seq} is not in a tree of size ${size}`);
    }
    return inclusionProof(seq, size, this.#source());
  }

  /**
   * Verifies the whole stored log: every entry's leaf hash recomputed from its stored data, no
   * gap, no moved entry, and the recomputed tree head equal to the one the stored tree gives
   * (or to `expected`, e.g. a signed checkpoint). Reads in pages of 4,096 rows (verify-stored.ts).
   */
  verify(expected?: { size: number; root: Hash }): Promise<LogVerification> {
    return verifyStoredLog(this.#db, expected);
  }

  /** RFC 9162 §2.1.4 consistency proof from size `m` to size `n`. */
  async consistencyProof(m: number, n: number): Promise<Hash[]> {
    await this.#checkSize(n, 'consistencyProof');
    if (!Number.isSafeInteger(m) || m < 0 || m > n) {
      throw new AuditRangeError(`consistencyProof: expected 0 ≤ m ≤ n, got m=${m}, n=${n}`);
    }
    return consistencyProof(m, n, this.#source());
  }
}
