/**
 * RFC 9162 §2.1 Merkle tree hashing, inclusion and consistency proofs (the same tree as RFC 6962,
 * so Certificate Transparency test vectors apply).
 *
 *   leaf hash  MTH({d}) = SHA-256(0x00 ‖ d)
 *   node hash           = SHA-256(0x01 ‖ left ‖ right)
 *   MTH(D[n]), n > 1    = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
 *   MTH({})             = SHA-256("")
 *
 * Proof generation reads hashes of *complete* subtrees through a {@link NodeSource}
 * (level l, index i = the subtree over leaves [i·2^l, (i+1)·2^l)), so a log that stores those
 * answers any proof with O(log n) reads.
 *
 * Hashing uses Node's synchronous `createHash`: the inputs are 33 or 65 bytes and a proof needs
 * a few dozen of them; a thread-pool round trip per hash would cost far more than the hash.
 */
import { createHash } from 'node:crypto';

/** A 32-byte SHA-256 hash. */
export type Hash = Uint8Array;

/** Bytes in a hash. */
export const HASH_BYTES = 32;

/** Hash of a complete subtree: level 0 is the leaf hashes. */
export type NodeSource = (level: number, index: number) => Hash | Promise<Hash>;

/** MTH of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Hash = new Uint8Array(createHash('sha256').digest());

/** RFC 9162 §2.1.1 leaf hash: SHA-256(0x00 ‖ data). */
export function leafHash(data: Uint8Array): Hash {
  return new Uint8Array(createHash('sha256').update(Uint8Array.of(0)).update(data).digest());
}

/** RFC 9162 §2.1.1 interior node hash: SHA-256(0x01 ‖ left ‖ right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  return new Uint8Array(createHash('sha256').update(Uint8Array.of(1)).update(left).update(right).digest());
}

/** Largest power of two strictly less than n (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPow2(n: number): boolean {
  // Math.log2 is exact on powers of two; `&` would truncate beyond 2^31.
  return n > 0 && Number.isInteger(Math.log2(n));
}

function checkSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${name}: expected a non-negative integer, got ${n}`);
}

/** MTH of the leaf hashes given, computed in memory (RFC 9162 §2.1.1). */
export function rootHash(leaves: readonly Hash[]): Hash {
  if (leaves.length === 0) return EMPTY_ROOT;
  // Stack of (size, hash) of complete subtrees, merged like binary addition; the remaining
  // stack folded right to left gives exactly the MTH split structure.
  const stack: { size: number; hash: Hash }[] = [];
  for (const h of leaves) {
    let cur = { size: 1, hash: h };
    while (stack.length > 0 && stack[stack.length - 1]!.size === cur.size) {
      const left = stack.pop()!;
      cur = { size: left.size * 2, hash: nodeHash(left.hash, cur.hash) };
    }
    stack.push(cur);
  }
  let acc = stack.pop()!.hash;
  while (stack.length > 0) acc = nodeHash(stack.pop()!.hash, acc);
  return acc;
}

/** A {@link NodeSource} over leaf hashes in memory (tests, small trees, exported logs). */
export function memoryNodeSource(leaves: readonly Hash[]): NodeSource {
  const memo = new Map<string, Hash>();
  const get = (level: number, index: number): Hash => {
    if (level === 0) {
      const h = leaves[index];
      if (!h) throw new RangeError(`leaf ${index} does not exist (${leaves.length} leaves)`);
      return h;
    }
    const key = `${level}:${index}`;
    let h = memo.get(key);
    if (!h) {
      h = nodeHash(get(level - 1, 2 * index), get(level - 1, 2 * index + 1));
      memo.set(key, h);
    }
    return h;
  };
  return get;
}

/**
 * MTH(D[start:end]) for a range that occurs in the RFC 9162 recursion: `start` is a multiple of
 * the smallest power of two ≥ end − start. O(log n) node reads.
 */
export async function subtreeRoot(start: number, end: number, get: NodeSource): Promise<Hash> {
  const n = end - start;
  if (n <= 0) return EMPTY_ROOT;
  if (isPow2(n)) {
    const level = Math.log2(n);
    return get(level, start / n);
  }
  const k = splitPoint(n);
  return nodeHash(await subtreeRoot(start, start + k, get), await subtreeRoot(start + k, end, get));
}

/**
 * RFC 9162 §2.1.3.1 PATH(m, D[n]): the inclusion proof of leaf `index` in the tree of `treeSize`.
 * @throws RangeError unless 0 ≤ index < treeSize.
 */
export async function inclusionProof(index: number, treeSize: number, get: NodeSource): Promise<Hash[]> {
  checkSize('treeSize', treeSize);
  checkSize('index', index);
  if (index >= treeSize) throw new RangeError(`index: expected < treeSize ${treeSize}, got ${index}`);
  const out: Hash[] = [];
  const path = async (a: number, b: number): Promise<void> => {
    if (b - a === 1) return;
    const k = splitPoint(b - a);
    if (index < a + k) {
      await path(a, a + k);
      out.push(await subtreeRoot(a + k, b, get));
    } else {
      await path(a + k, b);
      out.push(await subtreeRoot(a, a + k, get));
    }
  };
  await path(0, treeSize);
  return out;
}

/**
 * RFC 9162 §2.1.4.1 PROOF(m, D[n]): the consistency proof between the tree of size m and n.
 * Empty when m = 0 or m = n.
 * @throws RangeError unless 0 ≤ m ≤ n.
 */
export async function consistencyProof(m: number, n: number, get: NodeSource): Promise<Hash[]> {
  checkSize('m', m);
  checkSize('n', n);
  if (m > n) throw new RangeError(`m: expected ≤ n ${n}, got ${m}`);
  if (m === 0 || m === n) return [];
  const out: Hash[] = [];
  // SUBPROOF(m, D[a:b], flag) with m counted from a.
  const sub = async (mm: number, a: number, b: number, flag: boolean): Promise<void> => {
    if (mm === b - a) {
      if (!flag) out.push(await subtreeRoot(a, b, get));
      return;
    }
    const k = splitPoint(b - a);
    if (mm <= k) {
      await sub(mm, a, a + k, flag);
      out.push(await subtreeRoot(a + k, b, get));
    } else {
      await sub(mm - k, a + k, b, false);
      out.push(await subtreeRoot(a, a + k, get));
    }
  };
  await sub(m, 0, n, true);
  return out;
}

/** Outcome of a proof verification. */
export type ProofResult =
  | { ok: true }
  | { ok: false; reason: 'bad-input' | 'bad-proof-length' | 'root-mismatch'; detail: string };

function eq(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

const bad = (reason: 'bad-input' | 'bad-proof-length' | 'root-mismatch', detail: string): ProofResult => ({
  ok: false,
  reason,
  detail,
});

function hashesOk(...hs: unknown[]): boolean {
  return hs.every((h) => h instanceof Uint8Array && h.length === HASH_BYTES);
}

/**
 * RFC 9162 §2.1.3.2: verifies that `leaf` (a leaf hash) is at `index` in the tree of
 * `treeSize` whose root is `root`.
 */
export function verifyInclusion(leaf: Hash, index: number, treeSize: number, proof: readonly Hash[], root: Hash): ProofResult {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(treeSize) || index < 0 || index >= treeSize) {
    return bad('bad-input', `index ${index} is not inside a tree of size ${treeSize}`);
  }
  if (!Array.isArray(proof) || !hashesOk(leaf, root, ...proof)) {
    return bad('bad-input', `leaf, root and proof elements must be ${HASH_BYTES}-byte hashes`);
  }
  let fn = index;
  let sn = treeSize - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return bad('bad-proof-length', `proof longer than the path of leaf ${index} in size ${treeSize}`);
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return bad('bad-proof-length', `proof shorter than the path of leaf ${index} in size ${treeSize}`);
  if (!eq(r, root)) return bad('root-mismatch', `the proof of leaf ${index} does not lead to the root of size ${treeSize}`);
  return { ok: true };
}

/**
 * RFC 9162 §2.1.4.2: verifies that the tree of size `m` with root `rootM` is a prefix of the
 * tree of size `n` with root `rootN`. For m = n the proof must be empty and the roots equal;
 * for m = 0 the proof must be empty and `rootM` the empty-tree hash.
 */
export function verifyConsistency(m: number, n: number, rootM: Hash, rootN: Hash, proof: readonly Hash[]): ProofResult {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) {
    return bad('bad-input', `sizes must satisfy 0 ≤ m ≤ n, got m=${m}, n=${n}`);
  }
  if (!Array.isArray(proof) || !hashesOk(rootM, rootN, ...proof)) {
    return bad('bad-input', `roots and proof elements must be ${HASH_BYTES}-byte hashes`);
  }
  if (m === 0 || m === n) {
    if (proof.length !== 0) return bad('bad-proof-length', `expected an empty proof for m=${m}, n=${n}, got ${proof.length}`);
    const want = m === 0 ? EMPTY_ROOT : rootN;
    return eq(rootM, want) ? { ok: true } : bad('root-mismatch', m === 0 ? 'rootM is not the empty-tree hash' : 'equal sizes with different roots');
  }
  if (proof.length === 0) return bad('bad-proof-length', `expected a non-empty proof for m=${m}, n=${n}`);
  const path = isPow2(m) ? [rootM, ...proof] : [...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) return bad('bad-proof-length', `proof longer than needed for m=${m}, n=${n}`);
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
  if (sn !== 0) return bad('bad-proof-length', `proof shorter than needed for m=${m}, n=${n}`);
  if (!eq(fr, rootM)) return bad('root-mismatch', `the proof does not lead to the root of size ${m}`);
  if (!eq(sr, rootN)) return bad('root-mismatch', `the proof does not lead to the root of size ${n}`);
  return { ok: true };
}
