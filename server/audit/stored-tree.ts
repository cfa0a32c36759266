/**
 * The stored Merkle tree in `vault.db`: its tables (`audit_log` with each entry's leaf hash,
 * `audit_nodes` with every complete subtree's hash, `audit_head` with the latest tree head), and
 * the reads and writes the log builds on: a node by position, the frontier an append extends, the
 * tree size, and chunked multi-row inserts.
 */
import { chunks, marks, type DbTx, type Queryable } from '../vault/index.js';
import { AuditTreeDamagedError } from './errors.js';
import type { Hash } from './merkle.js';

/** The audit tables, migrated by `AuditLog.open`. */
export const MIGRATIONS = [
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

/** Inserts rows with multi-row VALUES lists, well under SQLite's bound-parameter limit. */
export async function insertChunks(tx: DbTx, target: string, width: number, rows: unknown[][]): Promise<void> {
  const tuple = `(${marks(width)})`;
  for (const chunk of chunks(rows, Math.floor(4000 / width))) {
    await tx.run(`INSERT INTO ${target} VALUES ${marks(chunk.length, tuple)}`, chunk.flat());
  }
}

/** The tree size: one past the highest stored seq (0 when empty). */
export async function sizeOf(q: Queryable | DbTx): Promise<number> {
  const r = await q.get<{ n: number | null }>('SELECT max(seq) AS n FROM audit_log');
  return r?.n === null || r?.n === undefined ? 0 : r.n + 1;
}

/**
 * The roots of the perfect subtrees a tree of `size` leaves is made of, left to right (its
 * "frontier": one per set bit of `size`), by `level:idx`. Appending reads only these.
 */
export function frontierOf(size: number): [level: number, idx: number][] {
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

/** The stored hashes of {@link frontierOf}(`size`), read in one query (and the lone leaf, if any). */
export async function frontierNodes(q: Queryable, size: number): Promise<Map<string, Hash>> {
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

/**
 * The stored hash of node (`level`, `idx`); level 0 is a leaf hash.
 *
 * @throws AuditTreeDamagedError naming the missing entry or node.
 */
export async function readNode(q: Queryable, level: number, idx: number): Promise<Hash> {
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
