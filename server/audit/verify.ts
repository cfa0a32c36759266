/**
 * Offline verification of an exported or stored audit log: recomputes every leaf hash from the
 * stored leaf data and the tree head from those, and names the first entry that does not hold.
 * Detects an edited entry (leaf-hash-mismatch), a deleted entry (sequence-gap), swapped or moved
 * entries (seq-mismatch: each entry's canonical JSON carries its own seq), and, given a trusted
 * tree head (a signed checkpoint, or the stored tree), a rewritten history (root-mismatch).
 */
import { readCanonicalJson } from '../../pki/index.js';
import { EMPTY_ROOT, leafHash, nodeHash, type Hash } from './merkle.js';
import type { AuditRow } from './entry.js';

const enc = new TextEncoder();

/** Why a log did not verify. */
export type LogFailureReason =
  | 'sequence-gap'
  | 'leaf-hash-mismatch'
  | 'malformed-entry'
  | 'not-canonical'
  | 'seq-mismatch'
  | 'root-mismatch'
  | 'size-mismatch'
  /** The stored columns that filters search by (type, time, actor, subject) differ from the signed data. */
  | 'index-mismatch';

/** Result of {@link verifyLog}. `seq` names the first failing entry when one can be named. */
export type LogVerification =
  | { ok: true; size: number; root: Hash }
  | { ok: false; reason: LogFailureReason; detail: string; seq?: number };

function hex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

function eq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

/**
 * Incremental verifier: feed rows in order with {@link push}, then {@link finish}. Memory is
 * O(log n) (a stack of complete-subtree hashes), so a long log can be verified page by page.
 */
export class LogVerifier {
  #next = 0;
  readonly #stack: { size: number; hash: Hash }[] = [];
  readonly #onNode: ((level: number, index: number, hash: Hash) => void) | undefined;

  /** @param onNode - called with every complete subtree hash recomputed (to compare with a stored tree). */
  constructor(onNode?: (level: number, index: number, hash: Hash) => void) {
    this.#onNode = onNode;
  }

  /** Checks one row; returns a failure, or undefined if the row holds. */
  push(row: AuditRow): Extract<LogVerification, { ok: false }> | undefined {
    const want = this.#next;
    if (row.seq !== want) {
      return row.seq > want
        ? { ok: false, reason: 'sequence-gap', seq: want, detail: `entry ${want} is missing (next stored entry is ${row.seq})` }
        : { ok: false, reason: 'seq-mismatch', seq: row.seq, detail: `entry ${row.seq} appears again after entry ${want - 1}` };
    }
    const lh = leafHash(enc.encode(row.data));
    if (!eq(lh, row.leaf_hash)) {
      return {
        ok: false,
        reason: 'leaf-hash-mismatch',
        seq: want,
        detail: `entry ${want}: stored data hashes to ${hex(lh)}, stored leaf hash is ${hex(row.leaf_hash)}`,
      };
    }
    const read = readCanonicalJson(row.data);
    if (!read.ok) {
      return read.reason === 'not-json'
        ? { ok: false, reason: 'malformed-entry', seq: want, detail: `entry ${want}: leaf data is not JSON` }
        : { ok: false, reason: 'not-canonical', seq: want, detail: `entry ${want}: leaf data is not RFC 8785 canonical JSON` };
    }
    const inner = (read.value as { seq?: unknown } | null)?.seq;
    if (inner !== want) {
      return {
        ok: false,
        reason: 'seq-mismatch',
        seq: want,
        detail: `entry ${want}: its leaf data says seq ${String(inner)} (moved or swapped)`,
      };
    }
    let cur = { size: 1, hash: lh };
    while (this.#stack.length > 0 && this.#stack[this.#stack.length - 1]!.size === cur.size) {
      const left = this.#stack.pop()!;
      cur = { size: left.size * 2, hash: nodeHash(left.hash, cur.hash) };
      this.#onNode?.(Math.log2(cur.size), (want + 1) / cur.size - 1, cur.hash);
    }
    this.#stack.push(cur);
    this.#next++;
    return undefined;
  }

  /** The number of rows accepted so far. */
  get size(): number {
    return this.#next;
  }

  /** The tree head over the rows accepted so far. */
  root(): Hash {
    if (this.#stack.length === 0) return EMPTY_ROOT;
    let acc = this.#stack[this.#stack.length - 1]!.hash;
    for (let i = this.#stack.length - 2; i >= 0; i--) acc = nodeHash(this.#stack[i]!.hash, acc);
    return acc;
  }

  /** Compares with a trusted tree head, if given. */
  finish(expected?: { size: number; root: Hash }): LogVerification {
    const root = this.root();
    if (expected) {
      if (expected.size !== this.#next) {
        return {
          ok: false,
          reason: expected.size > this.#next ? 'sequence-gap' : 'size-mismatch',
          seq: expected.size > this.#next ? this.#next : undefined,
          detail: `expected ${expected.size} entries, found ${this.#next}`,
        };
      }
      if (!eq(root, expected.root)) {
        return {
          ok: false,
          reason: 'root-mismatch',
          detail: `recomputed tree head ${hex(root)} differs from the trusted ${hex(expected.root)} at size ${this.#next}`,
        };
      }
    }
    return { ok: true, size: this.#next, root };
  }
}

/**
 * Verifies rows `0..n-1` of a log (in order). With `expected` (a trusted `{size, root}`), also
 * checks the recomputed tree head against it.
 */
export function verifyLog(rows: Iterable<AuditRow>, expected?: { size: number; root: Hash }): LogVerification {
  const v = new LogVerifier();
  for (const r of rows) {
    const fail = v.push(r);
    if (fail) return fail;
  }
  return v.finish(expected);
}
