/**
 * Verifying an audit trail on the auditor's workstation, online or from an export: nothing the
 * appliance computed is believed, only what its audit key signed and what we recompute.
 *
 * 1. The latest checkpoint's signature and chain (audit usage, pinned CA).
 * 2. A checkpoint saved earlier: same log, not larger than today's, and (online) an RFC 9162
 *    consistency proof from it to today's — a rewritten history fails here even when the
 *    appliance re-signed it, since its key cannot make an old root a prefix of a new one.
 * 3. Every stored checkpoint's signature; two signed roots for one size are a fork.
 * 4. Every entry: no gap, its own seq inside its data (moves and swaps), its leaf hash recomputed
 *    from its data (and compared with the stored one, which names an edited entry); the recomputed
 *    root at each checkpoint's size must be the signed one, which places a change in the entries
 *    that checkpoint added over the one before.
 */
import type { SavedCheckpoint } from './checkpoint.js';
import { checkCheckpoint, savedNote, type Checkpoint, type SignedNote, type Trust } from './checkpoint.js';
import { hashEq, leafHash, TreeBuilder, verifyConsistency, type Hash } from './merkle.js';

/** One entry as served or exported. */
export interface EntryRow {
  seq: number;
  /** The leaf data (canonical JSON) exactly as stored. */
  data: string;
  /** The stored leaf hash, when the source has it. */
  leafHash?: Uint8Array;
}

/** Where the trail comes from (the appliance over HTTPS, or an export folder). */
export interface TrailSource {
  latest(): Promise<SignedNote>;
  /** Every checkpoint the appliance stored, oldest first. */
  checkpoints(): AsyncIterable<SignedNote>;
  /** Entries with from ≤ seq < to, in seq order (a missing entry is simply absent). */
  entries(from: number, to: number): AsyncIterable<EntryRow>;
  /** RFC 9162 consistency proof from size m to n (online only). */
  consistency?(m: number, n: number): Promise<Hash[]>;
}

export type TrailFailureReason =
  | 'checkpoint-invalid'
  | 'origin-mismatch'
  | 'rollback'
  | 'inconsistent'
  | 'fork'
  | 'sequence-gap'
  | 'seq-mismatch'
  | 'leaf-hash-mismatch'
  | 'malformed-entry'
  | 'checkpoint-mismatch';

export type TrailVerification =
  | { ok: true; origin: string; size: number; root: Hash; time: Date; checkpoints: number; since?: number }
  | { ok: false; reason: TrailFailureReason; detail: string; seq?: number };

/** What to verify against. */
export interface VerifyOptions {
  trust: Trust;
  /** A checkpoint saved earlier (`--since`): today's log must extend it. */
  saved?: SavedCheckpoint;
  /** Called every 1000 entries (progress). */
  onProgress?: (done: number, total: number) => void;
}

type Fail = Extract<TrailVerification, { ok: false }>;
const fail = (reason: TrailFailureReason, detail: string, seq?: number): Fail => ({ ok: false, reason, detail, ...(seq !== undefined ? { seq } : {}) });
const t = (d: Date) => d.toISOString();

/** Verifies a whole trail; never throws for a bad trail (transport errors do propagate). */
export async function verifyTrail(src: TrailSource, o: VerifyOptions): Promise<TrailVerification> {
  const latestNote = await src.latest();
  const latestCheck = await checkCheckpoint(latestNote, o.trust);
  if (!latestCheck.ok) return fail('checkpoint-invalid', `latest checkpoint: ${latestCheck.detail}`);
  const latest = latestCheck.checkpoint;

  // Boundaries: sizes at which the recomputed root must equal a signed one.
  const bounds = new Map<number, { root: Hash; what: string }>();
  bounds.set(latest.size, { root: latest.root, what: `the latest checkpoint (${t(latest.time)})` });

  let saved: Checkpoint | undefined;
  if (o.saved) {
    const sc = await checkCheckpoint(savedNote(o.saved), o.trust);
    if (!sc.ok) return fail('checkpoint-invalid', `saved checkpoint: ${sc.detail}`);
    saved = sc.checkpoint;
    if (saved.origin !== latest.origin) return fail('origin-mismatch', `the saved checkpoint is of log "${saved.origin}", the appliance serves "${latest.origin}"`);
    if (saved.size > latest.size) {
      return fail('rollback', `the saved checkpoint of ${t(saved.time)} covers ${saved.size} entries; the appliance now signs only ${latest.size}`, latest.size);
    }
    if (src.consistency) {
      let proof: Hash[];
      try {
        proof = await src.consistency(saved.size, latest.size);
      } catch (err) {
        return fail('inconsistent', `the appliance gave no consistency proof from size ${saved.size} to ${latest.size}: ${(err as Error).message}`);
      }
      const c = verifyConsistency(saved.size, latest.size, saved.root, latest.root, proof);
      if (!c.ok) {
        return fail(
          'inconsistent',
          `today's log (size ${latest.size}) is not an extension of the checkpoint saved at ${t(saved.time)} (size ${saved.size}): ${c.detail}; history before entry ${saved.size} was rewritten`,
        );
      }
    }
    const same = bounds.get(saved.size);
    if (same && !hashEq(same.root, saved.root)) return fail('inconsistent', `the saved checkpoint and the latest one sign different roots for size ${saved.size}`);
    if (!same) bounds.set(saved.size, { root: saved.root, what: `the saved checkpoint (${t(saved.time)})` });
  }

  let count = 0;
  for await (const s of src.checkpoints()) {
    count++;
    const c = await checkCheckpoint(s, o.trust);
    if (!c.ok) return fail('checkpoint-invalid', `stored checkpoint ${count}: ${c.detail}`);
    const cp = c.checkpoint;
    if (cp.origin !== latest.origin) return fail('origin-mismatch', `stored checkpoint ${count} is of log "${cp.origin}"`);
    const b = bounds.get(cp.size);
    if (b && !hashEq(b.root, cp.root)) {
      return fail('fork', `two validly signed checkpoints give different roots for size ${cp.size}: ${b.what} and the one of ${t(cp.time)}`);
    }
    if (cp.size > latest.size) {
      return fail('rollback', `a checkpoint of ${t(cp.time)} covers ${cp.size} entries; the latest covers only ${latest.size}`, latest.size);
    }
    if (!b) bounds.set(cp.size, { root: cp.root, what: `the checkpoint of ${t(cp.time)}` });
  }

  const tree = new TreeBuilder();
  const enc = new TextEncoder();
  let lastBound = 0;
  const checkBound = (): Fail | undefined => {
    const b = bounds.get(tree.size);
    if (!b) return undefined;
    if (!hashEq(tree.root(), b.root)) {
      const from = Math.min(lastBound, tree.size - 1);
      const reason = saved && tree.size === saved.size ? 'inconsistent' : 'checkpoint-mismatch';
      return fail(reason, `the entries do not hash to the root signed by ${b.what} for size ${tree.size}: one of entries ${from}..${tree.size - 1} was changed after it was signed`, from);
    }
    lastBound = tree.size;
    return undefined;
  };
  const atZero = checkBound();
  if (atZero) return atZero;
  for await (const row of src.entries(0, latest.size)) {
    const want = tree.size;
    if (row.seq !== want) {
      return row.seq > want ? fail('sequence-gap', `entry ${want} is missing (the next one served is ${row.seq})`, want) : fail('seq-mismatch', `entry ${row.seq} appears again after entry ${want - 1}`, row.seq);
    }
    const lh = leafHash(enc.encode(row.data));
    if (row.leafHash && !hashEq(lh, row.leafHash)) return fail('leaf-hash-mismatch', `entry ${want}: its data does not hash to its stored leaf hash (edited)`, want);
    let inner: unknown;
    try {
      inner = (JSON.parse(row.data) as { seq?: unknown }).seq;
    } catch {
      return fail('malformed-entry', `entry ${want}: its data is not JSON`, want);
    }
    if (inner !== want) return fail('seq-mismatch', `entry ${want}: its data says seq ${String(inner)} (moved or swapped)`, want);
    tree.push(lh);
    const b = checkBound();
    if (b) return b;
    if (tree.size % 1000 === 0) o.onProgress?.(tree.size, latest.size);
  }
  if (tree.size < latest.size) return fail('sequence-gap', `entries ${tree.size}..${latest.size - 1} are missing (the latest checkpoint covers ${latest.size})`, tree.size);
  return {
    ok: true,
    origin: latest.origin,
    size: latest.size,
    root: latest.root,
    time: latest.time,
    checkpoints: count,
    ...(saved ? { since: saved.size } : {}),
  };
}
