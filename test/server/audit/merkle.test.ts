import t from 'tap';
import fc from 'fast-check';
import {
  EMPTY_ROOT,
  consistencyProof,
  inclusionProof,
  leafHash,
  memoryNodeSource,
  nodeHash,
  rootHash,
  subtreeRoot,
  verifyConsistency,
  verifyInclusion,
  type Hash,
} from '../../../server/audit/index.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

// RFC 6962 reference tree (certificate-transparency / transparency-dev/merkle testonly data).
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f']
  .map(unhex)
  .map(leafHash);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION = [
  { index: 0, size: 8, proof: ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'] },
  { index: 5, size: 8, proof: ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'] },
];
const CONSISTENCY = [
  { m: 2, n: 8, proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4'] },
  { m: 6, n: 8, proof: ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7'] },
  { m: 2, n: 5, proof: ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b'] },
];

t.test('when the RFC 6962 reference leaves are hashed then every tree head matches the published roots', async (t) => {
  t.equal(hex(EMPTY_ROOT), ROOTS[0]);
  const src = memoryNodeSource(LEAVES);
  for (let n = 0; n <= 8; n++) {
    t.equal(hex(rootHash(LEAVES.slice(0, n))), ROOTS[n], `rootHash size ${n}`);
    t.equal(hex(await subtreeRoot(0, n, src)), ROOTS[n], `subtreeRoot size ${n}`);
  }
});

t.test('when reference inclusion proofs are generated then they equal the published ones and verify', async (t) => {
  const src = memoryNodeSource(LEAVES);
  for (const v of INCLUSION) {
    t.same((await inclusionProof(v.index, v.size, src)).map(hex), v.proof);
    t.same(verifyInclusion(LEAVES[v.index]!, v.index, v.size, v.proof.map(unhex), unhex(ROOTS[v.size]!)), { ok: true });
  }
});

t.test('when reference consistency proofs are generated then they equal the published ones and verify', async (t) => {
  const src = memoryNodeSource(LEAVES);
  for (const v of CONSISTENCY) {
    t.same((await consistencyProof(v.m, v.n, src)).map(hex), v.proof, `${v.m}→${v.n}`);
    t.same(verifyConsistency(v.m, v.n, unhex(ROOTS[v.m]!), unhex(ROOTS[v.n]!), v.proof.map(unhex)), { ok: true });
  }
});

const leavesOf = (n: number): Hash[] => Array.from({ length: n }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));
const flip = (b: Uint8Array, i: number): Uint8Array => {
  const c = b.slice();
  c[i % c.length]! ^= 1 << i % 8;
  return c;
};

t.test('when any inclusion proof of a random tree is checked then it verifies, and any flipped byte or wrong index fails', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), async (n, i0, b) => {
      const leaves = leavesOf(n);
      const index = i0 % n;
      const root = rootHash(leaves);
      const proof = await inclusionProof(index, n, memoryNodeSource(leaves));
      if (proof.length > Math.ceil(Math.log2(n))) return false;
      if (!verifyInclusion(leaves[index]!, index, n, proof, root).ok) return false;
      if (verifyInclusion(flip(leaves[index]!, b), index, n, proof, root).ok) return false;
      if (verifyInclusion(leaves[index]!, index, n, proof, flip(root, b)).ok) return false;
      if (proof.length > 0) {
        const bad = proof.slice();
        const k = b % bad.length;
        bad[k] = flip(bad[k]!, b);
        if (verifyInclusion(leaves[index]!, index, n, bad, root).ok) return false;
        if (verifyInclusion(leaves[index]!, index, n, proof.slice(1), root).ok) return false;
      }
      if (n > 1 && verifyInclusion(leaves[index]!, (index + 1) % n, n, proof, root).ok) return false;
      return !verifyInclusion(leaves[index]!, index, n, [...proof, root], root).ok;
    }),
    { numRuns: 300 },
  );
});

t.test('when any consistency proof between random sizes is checked then it verifies, and any flipped byte fails', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 300 }), fc.nat(), fc.nat(), async (n, m0, b) => {
      const leaves = leavesOf(n);
      const m = 1 + (m0 % n);
      const src = memoryNodeSource(leaves);
      const rootM = rootHash(leaves.slice(0, m));
      const rootN = rootHash(leaves);
      const proof = await consistencyProof(m, n, src);
      if (!verifyConsistency(m, n, rootM, rootN, proof).ok) return false;
      if (m === n) return proof.length === 0 && !verifyConsistency(m, n, rootM, flip(rootN, b), proof).ok;
      if (verifyConsistency(m, n, flip(rootM, b), rootN, proof).ok) return false;
      if (verifyConsistency(m, n, rootM, flip(rootN, b), proof).ok) return false;
      const bad = proof.slice();
      const k = b % bad.length;
      bad[k] = flip(bad[k]!, b);
      if (verifyConsistency(m, n, rootM, rootN, bad).ok) return false;
      return !verifyConsistency(m, n, rootM, rootN, proof.slice(0, -1)).ok;
    }),
    { numRuns: 300 },
  );
});

t.test('when inputs are out of range then generation throws and verification names the reason', async (t) => {
  const src = memoryNodeSource(LEAVES);
  await t.rejects(inclusionProof(8, 8, src), RangeError);
  await t.rejects(consistencyProof(5, 3, src), RangeError);
  const r8 = unhex(ROOTS[8]!);
  t.match(verifyInclusion(LEAVES[0]!, 8, 8, [], r8), { ok: false, reason: 'bad-input' });
  t.match(verifyInclusion(new Uint8Array(31), 0, 8, [], r8), { ok: false, reason: 'bad-input' });
  t.match(verifyInclusion(LEAVES[0]!, 0, 8, [], r8), { ok: false, reason: 'bad-proof-length' });
  t.match(verifyConsistency(6, 8, unhex(ROOTS[6]!), r8, []), { ok: false, reason: 'bad-proof-length' });
  t.same(verifyConsistency(0, 8, EMPTY_ROOT, r8, []), { ok: true });
  t.match(verifyConsistency(0, 8, r8, r8, []), { ok: false, reason: 'root-mismatch' });
  t.same(verifyConsistency(4, 4, unhex(ROOTS[4]!), unhex(ROOTS[4]!), []), { ok: true });
  t.match(verifyConsistency(4, 4, unhex(ROOTS[4]!), unhex(ROOTS[5]!), []), { ok: false, reason: 'root-mismatch' });
  t.match(verifyConsistency(8, 6, r8, r8, []), { ok: false, reason: 'bad-input' });
  t.equal(hex(nodeHash(LEAVES[0]!, LEAVES[1]!)), ROOTS[2]);
});
