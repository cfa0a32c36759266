/**
 * Verification of the whole stored log in `vault.db` (`AuditLog.verify`): every row through the
 * incremental `LogVerifier`, every stored subtree hash against the recomputed one, the
 * stored head and the node table's coverage against what remains, and each row's index columns
 * against its signed data. Checking exported rows alone is `verifyLog` in `verify.ts`.
 */
import type { Db } from '../vault/index.js';
import { rowToEntry, type AuditRow } from './entry.js';
import { AuditTreeDamagedError } from './errors.js';
import { subtreeRoot, type Hash } from './merkle.js';
import { readNode } from './stored-tree.js';
import { LogVerifier, type LogVerification } from './verify.js';

/** The work of `AuditLog.verify` (see there) on `db`. */
export async function verifyStoredLog(db: Db, expected?: { size: number; root: Hash }): Promise<LogVerification> {
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
    const rows = await db.all<AuditRow & IndexColumns>(
      'SELECT seq, data, leaf_hash, type, at, actor, subject FROM audit_log WHERE seq >= ? ORDER BY seq LIMIT ?',
      [from, page],
    );
    made = [];
    for (const r of rows) {
      const fail = v.push(r);
      if (fail) return fail;
      indexFailure ??= indexMismatch(r);
    }
    const stored = await db.all<{ level: number; idx: number; hash: Uint8Array }>(
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
  const head = await db.get<{ size: number; root: Uint8Array }>('SELECT size, root FROM audit_head WHERE id = 1');
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
  const cov = await db.get<{ covered: number | null }>('SELECT max((idx + 1) << level) AS covered FROM audit_nodes');
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
    stored = { size: v.size, root: await subtreeRoot(0, v.size, (level, idx) => readNode(db, level, idx)) };
  } catch (err) {
    if (err instanceof AuditTreeDamagedError) return { ok: false, reason: 'root-mismatch', detail: err.message };
    throw err;
  }
  return done(v.finish(stored));
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
