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
 */
import { z } from 'zod';
import { CanonicalJsonError, canonicalJson } from '../../pki/index.js';
import { chunks, marks, type Db, type DbTx, type Queryable } from '../vault/index.js';
import { AuditEventInvalidError, AuditRangeError, AuditTreeDamagedError } from './errors.js';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  nodeHash,
  subtreeRoot,
  type Hash,
  type NodeSource,
} from './merkle.js';
import { LogVerifier, type LogVerification } from './verify.js';

const MIGRATIONS = [
  {
    id: 'audit-1',
    sql: `
      CREATE TABLE audit_log (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        type TEXT NOT NULL,
        actor TEXT,
        subject TEXT,
        data TEXT NOT NULL,
        leaf_hash BLOB NOT NULL
      ) STRICT;
      CREATE INDEX audit_log_type ON audit_log (type, seq);
      CREATE INDEX audit_log_actor ON audit_log (actor, seq);
      CREATE TABLE audit_nodes (
        level INTEGER NOT NULL,
        idx INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (level, idx)
      ) STRICT, WITHOUT ROWID;`,
  },
  {
    // The latest tree head, rewritten by every append: a cut tail that completes no subtree is
    // still visible (size), and the checkpoint issue signs what is here.
    id: 'audit-2',
    sql: `CREATE TABLE audit_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        size INTEGER NOT NULL,
        root BLOB NOT NULL
      ) STRICT;
      INSERT INTO audit_head (id, size, root)
        SELECT 1, count(*), x'' FROM audit_log;`,
  },
];

/** An event to append. `type` is free-form (`login.ok`, `message.accepted`, …): the set is open. */
export interface AuditEvent {
  type: string;
  /** Who did it (a login, `system`). */
  actor?: string;
  /** What it was done to (`user:alice`, `conversation:…`, a certificate serial). */
  subject?: string;
  /** Metadata, JSON-serialisable; never message content. */
  data?: Record<string, unknown>;
  /** When; default the log's clock. */
  at?: Date;
}

const EventSchema = z.object({
  type: z.string().min(1).max(64).regex(/^[a-z][a-z0-9_.-]*$/, 'lowercase dotted name, e.g. login.ok'),
  actor: z.string().min(1).max(256).optional(),
  subject: z.string().min(1).max(512).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
  at: z.date().refine((d) => !Number.isNaN(d.getTime()), 'valid date').optional(),
});

/** A stored entry. */
export interface AuditEntry {
  seq: number;
  at: string;
  type: string;
  actor?: string;
  subject?: string;
  data?: Record<string, unknown>;
  /** The canonical JSON leaf data exactly as stored and hashed. */
  leafData: string;
  leafHash: Hash;
}

/** A stored row as read raw, the input of `verifyLog`. */
export interface AuditRow {
  seq: number;
  data: string;
  leaf_hash: Uint8Array;
}

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

/** Builds the leaf data of an entry: RFC 8785 canonical JSON with `v: 1`. */
export function entryLeafData(seq: number, at: string, ev: Omit<AuditEvent, 'at'>): string {
  // Keys inserted in their canonical (sorted) order, so canonicalJson takes its fast path whenever
  // `data` lists its keys sorted too (messaging's entries do).
  const obj: Record<string, unknown> = {};
  if (ev.actor !== undefined) obj.actor = ev.actor;
  obj.at = at;
  if (ev.data !== undefined) obj.data = ev.data;
  obj.seq = seq;
  if (ev.subject !== undefined) obj.subject = ev.subject;
  obj.type = ev.type;
  obj.v = 1;
  try {
    return canonicalJson(obj);
  } catch (e) {
    if (e instanceof CanonicalJsonError) throw new AuditEventInvalidError(`entry cannot be serialised as canonical JSON: ${e.message}`, { cause: e });
    throw e;
  }
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
   * (or to `expected`, e.g. a signed checkpoint). Reads in pages of 5,000.
   */
  async verify(expected?: { size: number; root: Hash }): Promise<LogVerification> {
    // Every stored complete-subtree hash is compared with the recomputed one, page by page, so
    // a damaged or forged node is found even where no root or proof happens to read it.
    let made: { level: number; idx: number; hash: Hash }[] = [];
    const v = new LogVerifier((level, idx, hash) => made.push({ level, idx, hash }));
    // Reported only once the tree itself verified: a rewritten entry also leaves its columns
    // behind, and is better named by what the tree says.
    let indexFailure: LogVerification | undefined;
    const done = (r: LogVerification): LogVerification => (r.ok && indexFailure ? indexFailure : r);
    const page = 4096;
    for (;;) {
      const from = v.size;
      const rows = await this.#db.all<AuditRow & IndexColumns>(
        'SELECT seq, data, leaf_hash, type, at, actor, subject FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?',
        [from, page],
      );
      made = [];
      for (const r of rows) {
        const fail = v.push(r);
        if (fail) return fail;
        indexFailure ??= indexMismatch(r);
      }
      const stored = await this.#db.all<{ level: number; idx: number; hash: Uint8Array }>(
        'SELECT level, idx, hash FROM audit_nodes WHERE ((idx + 1) << level) > ? AND ((idx + 1) << level) <= ?',
        [from, v.size],
      );
      const byKey = new Map(stored.map((n) => [`${n.level}:${n.idx}`, n.hash]));
      for (const m of made) {
        const h = byKey.get(`${m.level}:${m.idx}`);
        if (!h || Buffer.compare(Buffer.from(h), Buffer.from(m.hash)) !== 0) {
          const first = m.idx * 2 ** m.level;
          return {
            ok: false,
            reason: 'root-mismatch',
            seq: first,
            detail: `stored tree node (level ${m.level}, index ${m.idx}) over entries ${first}..${first + 2 ** m.level - 1} is ${h ? 'different from the recomputed one' : 'missing'}`,
          };
        }
      }
      if (rows.length < page) break;
    }
    if (expected) return done(v.finish(expected));
    const head = await this.#db.get<{ size: number; root: Uint8Array }>('SELECT size, root FROM audit_head WHERE id = 1');
    if (head && head.size !== v.size) {
      return {
        ok: false,
        reason: head.size > v.size ? 'sequence-gap' : 'size-mismatch',
        seq: head.size > v.size ? v.size : undefined,
        detail: `the stored tree head says ${head.size} entries, ${v.size} are stored`,
      };
    }
    if (head && head.root.length === 32 && Buffer.compare(Buffer.from(head.root), Buffer.from(v.root())) !== 0) {
      return { ok: false, reason: 'root-mismatch', detail: `the stored tree head's root differs from the recomputed one at size ${v.size}` };
    }
    // A deleted tail leaves the stored tree covering entries that are no longer there.
    const cov = await this.#db.get<{ covered: number | null }>('SELECT max((idx + 1) << level) AS covered FROM audit_nodes');
    if (cov?.covered != null && cov.covered > v.size) {
      return {
        ok: false,
        reason: 'sequence-gap',
        seq: v.size,
        detail: `the stored tree covers ${cov.covered} entries but only ${v.size} remain: entry ${v.size} onwards was removed`,
      };
    }
    let stored: { size: number; root: Hash };
    try {
      stored = { size: v.size, root: await subtreeRoot(0, v.size, this.#source()) };
    } catch (err) {
      if (err instanceof AuditTreeDamagedError) return { ok: false, reason: 'root-mismatch', detail: err.message };
      throw err;
    }
    return done(v.finish(stored));
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

/** Inserts rows with multi-row VALUES lists, well under SQLite's bound-parameter limit. */
async function insertChunks(tx: DbTx, target: string, width: number, rows: unknown[][]): Promise<void> {
  const tuple = `(${marks(width)})`;
  for (const chunk of chunks(rows, Math.floor(4000 / width))) {
    await tx.run(`INSERT INTO ${target} VALUES ${marks(chunk.length, tuple)}`, chunk.flat());
  }
}

async function sizeOf(q: Queryable | DbTx): Promise<number> {
  const r = await q.get<{ n: number | null }>('SELECT max(seq) AS n FROM audit_log');
  return r?.n === null || r?.n === undefined ? 0 : r.n + 1;
}

/**
 * The roots of the perfect subtrees a tree of `size` leaves is made of, left to right (its
 * "frontier": one per set bit of `size`), by `level:idx`. Appending reads only these.
 */
function frontierOf(size: number): [level: number, idx: number][] {
  const out: [number, number][] = [];
  for (let start = 0, rest = size; rest > 0; ) {
    const level = Math.floor(Math.log2(rest));
    const width = 2 ** level;
    out.push([level, start / width]);
    start += width;
    rest -= width;
  }
  return out;
}

async function frontierNodes(q: Queryable, size: number): Promise<Map<string, Hash>> {
  const out = new Map<string, Hash>();
  const nodes: [number, number][] = [];
  let leaf: number | undefined;
  for (const [level, idx] of frontierOf(size)) {
    if (level === 0) leaf = idx;
    else nodes.push([level, idx]);
  }
  if (nodes.length > 0) {
    const rows = await q.all<{ level: number; idx: number; h: Uint8Array }>(
      `SELECT level, idx, hash AS h FROM audit_nodes WHERE ${nodes.map(() => '(level = ? AND idx = ?)').join(' OR ')}`,
      nodes.flat(),
    );
    for (const r of rows) out.set(`${r.level}:${r.idx}`, new Uint8Array(r.h));
  }
  if (leaf !== undefined) out.set(`0:${leaf}`, await readNode(q, 0, leaf));
  return out;
}

async function readNode(q: Queryable, level: number, idx: number): Promise<Hash> {
  const row =
    level === 0
      ? await q.get<{ h: Uint8Array }>('SELECT leaf_hash AS h FROM audit_log WHERE seq = ?', [idx])
      : await q.get<{ h: Uint8Array }>('SELECT hash AS h FROM audit_nodes WHERE level = ? AND idx = ?', [level, idx]);
  if (!row) {
    if (level === 0) throw new AuditTreeDamagedError(`audit entry ${idx} is missing from the stored log (its audit_log row is gone)`);
    const first = idx * 2 ** level;
    throw new AuditTreeDamagedError(`audit tree node (level ${level}, index ${idx}) over entries ${first}..${first + 2 ** level - 1} is missing`);
  }
  return new Uint8Array(row.h);
}

/** The columns `query` filters by: copies of the signed data's fields, kept for the index. */
interface IndexColumns {
  type: string;
  at: string;
  actor: string | null;
  subject: string | null;
}

/**
 * The failure when a row's index columns differ from its signed data (already checked against its
 * leaf hash): the hash covers only the data, so an edited column would hide the entry from a
 * filtered view (`sigil audit events --type/--user/--since`, the room register) or show it under
 * another, while the tree still verified.
 */
function indexMismatch(r: AuditRow & IndexColumns): LogVerification | undefined {
  const e = rowToEntry(r);
  const differs: string[] = [];
  if (r.type !== e.type) differs.push('type');
  if (r.at !== e.at) differs.push('time');
  if ((r.actor ?? undefined) !== e.actor) differs.push('actor');
  if ((r.subject ?? undefined) !== e.subject) differs.push('subject');
  if (differs.length === 0) return undefined;
  return {
    ok: false,
    reason: 'index-mismatch',
    seq: r.seq,
    detail: `entry ${r.seq}: its stored ${differs.join(', ')} differ from what its signed data says (edited to hide it from, or misplace it in, filtered views)`,
  };
}

function rowToEntry(r: AuditRow): AuditEntry {
  const obj = JSON.parse(r.data) as { at: string; type: string; actor?: string; subject?: string; data?: Record<string, unknown> };
  const e: AuditEntry = { seq: r.seq, at: obj.at, type: obj.type, leafData: r.data, leafHash: new Uint8Array(r.leaf_hash) };
  if (obj.actor !== undefined) e.actor = obj.actor;
  if (obj.subject !== undefined) e.subject = obj.subject;
  if (obj.data !== undefined) e.data = obj.data;
  return e;
}
