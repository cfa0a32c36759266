/**
 * Verifying an audit trail on the auditor's workstation, online or from an export: nothing the
 * appliance computed is believed, only what its audit key signed and what we recompute.
 *
 * 1. The latest checkpoint's signature and chain (audit usage, pinned CA).
 * 2. A checkpoint saved earlier: same log, not larger than today's, and (online) an RFC 9162
 *    consistency proof from it to today's — a rewritten history fails here even when the
 *    appliance re-signed it, since its key cannot make an old root a prefix of a new one.
 * 3. Every stored checkpoint's signature; two signed roots for one size are a fork; one signed
 *    before the latest that covers more than it is a rollback. Checkpoints signed after the latest
 *    (a busy appliance signs one every 2 s, and on any role's request) are not part of what is
 *    verified: see {@link verifyTrail}.
 * 4. Every entry: no gap, its own seq inside its data (moves and swaps), its leaf hash recomputed
 *    from its data (and compared with the stored one, which names an edited entry); the recomputed
 *    root at each checkpoint's size must be the signed one, which places a change in the entries
 *    that checkpoint added over the one before.
 */
import type { SavedCheckpoint } from './checkpoint.js';
import { checkCheckpoint, parseNote, savedNote, type Checkpoint, type SignedNote, type Trust } from './checkpoint.js';
import { hashEq, leafHash, TreeBuilder, verifyConsistency, type Hash } from './merkle.js';

/** One entry as served or exported. */
export interface EntryRow {
  seq: number;
  /** The leaf data (canonical JSON) exactly as stored. */
  data: string;
  /** The stored leaf hash, when the source has it. */
  leafHash?: Uint8Array;
}

/** A checkpoint as the appliance lists it: the signed note and, when given, its row id (ids grow with time; not signed). */
export interface ListedNote extends SignedNote {
  id?: number;
}

/** Where the trail comes from (the appliance over HTTPS, or an export folder). */
export interface TrailSource {
  /** The latest checkpoint, taken once: the trail is verified as of this one. */
  latest(): Promise<ListedNote>;
  /**
   * The checkpoints the appliance stored, oldest first (by id). A source may end the list with
   * the latest checkpoint itself; checkpoints listed after it are those signed later.
   */
  checkpoints(): AsyncIterable<ListedNote>;
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
  | {
      ok: true;
      origin: string;
      size: number;
      root: Hash;
      time: Date;
      /** Stored checkpoints checked. */
      checkpoints: number;
      /** Listed checkpoints signed after the latest and covering more: not checked (see verifyTrail). */
      later: number;
      since?: number;
    }
  | { ok: false; reason: TrailFailureReason; detail: string; seq?: number };

/**
 * Thrown by a source when what it reads is itself a defect of the trail (a line of an export that
 * is not an entry or not a checkpoint): {@link verifyTrail} reports it as a failed verification,
 * never as a tool error. Thrown while entries are read, it fails at the entry expected next.
 */
export class TrailDataError extends Error {
  constructor(
    readonly reason: 'malformed-entry' | 'checkpoint-invalid',
    message: string,
  ) {
    super(message);
    this.name = 'TrailDataError';
  }
}

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
const sameSigned = (a: SignedNote, b: SignedNote) => a.note === b.note && hashEq(a.signature, b.signature);

/**
 * Verifies a whole trail as of the latest checkpoint `src` gives; never throws for a bad trail
 * (transport and file-access errors do propagate).
 *
 * Checkpoints signed after that latest one are normal on a busy appliance: the stored list is
 * read after the latest was taken. One is known to be later, and is not checked, when the list
 * showed the latest checkpoint itself (same note and signature, and the same id when the source
 * gave one) before it and never again after it, its id is greater than that one's, and its note
 * claims more entries than the latest. Every other checkpoint is checked: one covering more than
 * the latest is a rollback. So a checkpoint signed before the latest (listed before it, with a
 * smaller id, or followed by a replayed copy of the latest) that covers more is still caught, and
 * so is the whole list when the latest is not in it or ids are absent.
 */
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
  const check = async (s: ListedNote, n: number): Promise<Fail | undefined> => {
    count++;
    const c = await checkCheckpoint(s, o.trust);
    if (!c.ok) return fail('checkpoint-invalid', `stored checkpoint ${n}: ${c.detail}`);
    const cp = c.checkpoint;
    if (cp.origin !== latest.origin) return fail('origin-mismatch', `stored checkpoint ${n} is of log "${cp.origin}"`);
    const b = bounds.get(cp.size);
    if (b && !hashEq(b.root, cp.root)) {
      return fail('fork', `two validly signed checkpoints give different roots for size ${cp.size}: ${b.what} and the one of ${t(cp.time)}`);
    }
    if (cp.size > latest.size) {
      return fail('rollback', `a checkpoint of ${t(cp.time)} covers ${cp.size} entries; the latest covers only ${latest.size}`, latest.size);
    }
    if (!b) bounds.set(cp.size, { root: cp.root, what: `the checkpoint of ${t(cp.time)}` });
    return undefined;
  };
  const isLatest = (s: ListedNote) => s.id !== undefined && (latestNote.id === undefined || latestNote.id === s.id) && sameSigned(s, latestNote);
  let listed = 0;
  // The id under which the list last showed the latest checkpoint itself.
  let latestId: number | undefined;
  // Listed after it with a greater id and more entries: signed later, unless the latest shows up
  // again after them (a stored copy of an older checkpoint, replayed as the newest, shares its note).
  let pending: { s: ListedNote; n: number }[] = [];
  try {
    for await (const s of src.checkpoints()) {
      const n = ++listed;
      const same = isLatest(s);
      if (!same && latestId !== undefined && s.id !== undefined && s.id > latestId && (parseNote(s.note)?.size ?? 0) > latest.size) {
        pending.push({ s, n });
        continue;
      }
      if (same) {
        for (const p of pending) {
          const f = await check(p.s, p.n);
          if (f) return f;
        }
        pending = [];
      }
      const f = await check(s, n);
      if (f) return f;
      if (same) latestId = s.id;
    }
  } catch (err) {
    if (err instanceof TrailDataError) return fail(err.reason, err.message);
    throw err;
  }
  const later = pending.length;

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
  try {
    for await (const row of src.entries(0, latest.size)) {
      const want = tree.size;
      if (row.seq !== want) {
        return row.seq > want ? fail('sequence-gap', `entry ${want} is missing (the next one served is ${row.seq})`, want) : fail('seq-mismatch', `entry ${row.seq} appears again after entry ${want - 1}`, row.seq);
      }
      const lh = leafHash(enc.encode(row.data));
      if (row.leafHash && !hashEq(lh, row.leafHash)) return fail('leaf-hash-mismatch', `entry ${want}: its data does not hash to its stored leaf hash (edited)`, want);
      let inner: unknown;
      try {
        // `null` is JSON too: it names no seq (a seq-mismatch below), it does not throw.
        inner = (JSON.parse(row.data) as { seq?: unknown } | null)?.seq;
      } catch {
        return fail('malformed-entry', `entry ${want}: its data is not JSON`, want);
      }
      if (inner !== want) return fail('seq-mismatch', `entry ${want}: its data says seq ${String(inner)} (moved or swapped)`, want);
      tree.push(lh);
      const b = checkBound();
      if (b) return b;
      if (tree.size % 1000 === 0) o.onProgress?.(tree.size, latest.size);
    }
  } catch (err) {
    // An unreadable line stands where the next entry was expected: that one fails.
    if (err instanceof TrailDataError) return fail(err.reason, `${err.message} (where entry ${tree.size} was expected)`, tree.size);
    throw err;
  }
  if (tree.size < latest.size) return fail('sequence-gap', `entries ${tree.size}..${latest.size - 1} are missing (the latest checkpoint covers ${latest.size})`, tree.size);
  return {
    ok: true,
    origin: latest.origin,
    size: latest.size,
    root: latest.root,
    time: latest.time,
    checkpoints: count,
    later,
    ...(saved ? { since: saved.size } : {}),
  };
}
