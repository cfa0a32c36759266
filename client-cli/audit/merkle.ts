/**
 * The auditor's side of RFC 9162 §2.1: leaf and node hashes, inclusion (§2.1.3.2) and consistency
 * (§2.1.4.2) proof verification, and an incremental tree-head computation over entries.
 *
 * The client trusts nothing the appliance computed, and ARCHITECTURE.md keeps client-cli/ from
 * importing server/, so this is the verifying half of server/audit/merkle.ts and verify.ts,
 * written again for the workstation. `test/client-cli/audit/merkle.test.ts` checks both agree.
 *
 *   leaf hash = SHA-256(0x00 ‖ d)        node hash = SHA-256(0x01 ‖ left ‖ right)
 */
import { createHash } from 'node:crypto';

export type Hash = Uint8Array;
export const HASH_BYTES = 32;
export const EMPTY_ROOT: Hash = new Uint8Array(createHash('sha256').digest());

/** RFC 9162 §2.1.1 leaf hash. */
export function leafHash(data: Uint8Array): Hash {
  return new Uint8Array(createHash('sha256').update(Uint8Array.of(0)).update(data).digest());
}

/** RFC 9162 §2.1.1 interior node hash. */
export function nodeHash(left: Hash, right: Hash): Hash {
  return new Uint8Array(createHash('sha256').update(Uint8Array.of(1)).update(left).update(right).digest());
}

export function hashEq(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
}

export type ProofResult = { ok: true } | { ok: false; detail: string };

const okHashes = (...hs: unknown[]) => hs.every((h) => h instanceof Uint8Array && h.length === HASH_BYTES);

/** RFC 9162 §2.1.3.2: `leaf` is at `index` in the tree of `size` whose root is `root`. */
export function verifyInclusion(leaf: Hash, index: number, size: number, proof: readonly Hash[], root: Hash): ProofResult {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return { ok: false, detail: `index ${index} is not in a tree of size ${size}` };
  if (!okHashes(leaf, root, ...proof)) return { ok: false, detail: 'hashes must be 32 bytes' };
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return { ok: false, detail: 'proof too long' };
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, detail: 'proof too short' };
  return hashEq(r, root) ? { ok: true } : { ok: false, detail: `the proof of entry ${index} does not lead to the root of size ${size}` };
}

/** RFC 9162 §2.1.4.2: the tree (m, rootM) is a prefix of the tree (n, rootN). */
export function verifyConsistency(m: number, n: number, rootM: Hash, rootN: Hash, proof: readonly Hash[]): ProofResult {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) return { ok: false, detail: `sizes must satisfy 0 ≤ m ≤ n, got ${m}, ${n}` };
  if (!okHashes(rootM, rootN, ...proof)) return { ok: false, detail: 'hashes must be 32 bytes' };
  if (m === 0 || m === n) {
    if (proof.length !== 0) return { ok: false, detail: 'expected an empty proof' };
    return hashEq(rootM, m === 0 ? EMPTY_ROOT : rootN) ? { ok: true } : { ok: false, detail: `the roots of size ${m} differ` };
  }
  if (proof.length === 0) return { ok: false, detail: 'expected a non-empty proof' };
  const path = Number.isInteger(Math.log2(m)) ? [rootM, ...proof] : [...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return { ok: false, detail: 'proof too long' };
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, detail: 'proof too short' };
  if (!hashEq(fr, rootM)) return { ok: false, detail: `the proof does not lead to the root of size ${m}` };
  if (!hashEq(sr, rootN)) return { ok: false, detail: `the proof does not lead to the root of size ${n}` };
  return { ok: true };
}

/**
 * Tree head over leaves pushed in order, in O(log n) memory (a stack of complete subtrees merged
 * like binary addition), so any prefix's root is known as the leaves stream by.
 */
export class TreeBuilder {
  #size = 0;
  readonly #stack: { size: number; hash: Hash }[] = [];

  push(leaf: Hash): void {
    let cur = { size: 1, hash: leaf };
    while (this.#stack.length > 0 && this.#stack[this.#stack.length - 1]!.size === cur.size) {
      const left = this.#stack.pop()!;
      cur = { size: left.size * 2, hash: nodeHash(left.hash, cur.hash) };
    }
    this.#stack.push(cur);
    this.#size++;
  }

  get size(): number {
    return this.#size;
  }

  /** RFC 9162 MTH over the leaves pushed so far. */
  root(): Hash {
    if (this.#stack.length === 0) return EMPTY_ROOT;
    let acc = this.#stack[this.#stack.length - 1]!.hash;
    for (let i = this.#stack.length - 2; i >= 0; i--) acc = nodeHash(this.#stack[i]!.hash, acc);
    return acc;
  }
}
