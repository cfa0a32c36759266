/**
 * The auditor's verifier in-process: its RFC 9162 code agrees with the server's (property tests),
 * and `verifyTrail` refuses every kind of bad trail with its own reason — a fork (two signed roots
 * for one size), a rollback below a saved checkpoint, another log's checkpoint, an inconsistent
 * proof, a missing tail, a malformed entry.
 */
import t from 'tap';
import fc from 'fast-check';
import { generateKeyPair } from '../../../pki/index.js';
import * as server from '../../../server/audit/index.js';
import { leafHash, TreeBuilder, verifyConsistency, verifyInclusion } from '../../../client-cli/audit/merkle.js';
import { verifyTrail, type EntryRow, type TrailSource } from '../../../client-cli/audit/verify.js';
import type { SavedCheckpoint } from '../../../client-cli/audit/checkpoint.js';
import { makeTestCa } from '../../helpers/pki-fixtures.js';

const enc = new TextEncoder();
const leaves = (n: number) => Array.from({ length: n }, (_, i) => server.leafHash(enc.encode(`entry ${i}`)));

t.test('when the server makes proofs then the client verifies them and their tree heads agree', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 70 }), fc.nat(), fc.nat(), async (n, a, b) => {
      const ls = leaves(n);
      const src = server.memoryNodeSource(ls);
      const root = server.rootHash(ls);
      const tb = new TreeBuilder();
      ls.forEach((l) => tb.push(l));
      if (Buffer.compare(Buffer.from(tb.root()), Buffer.from(root)) !== 0) return false;
      const i = a % n;
      const proof = await server.inclusionProof(i, n, src);
      if (!verifyInclusion(ls[i]!, i, n, proof, root).ok) return false;
      if (proof.length > 0) {
        const bad = proof.map((p, k) => (k === 0 ? server.nodeHash(p, p) : p));
        if (verifyInclusion(ls[i]!, i, n, bad, root).ok) return false;
      }
      const m = b % (n + 1);
      const cproof = await server.consistencyProof(m, n, src);
      const rootM = server.rootHash(ls.slice(0, m));
      if (!verifyConsistency(m, n, rootM, root, cproof).ok) return false;
      if (m > 0 && m < n && verifyConsistency(m, n, server.leafHash(enc.encode('forged')), root, cproof).ok) return false;
      return true;
    }),
    { numRuns: 150 },
  );
  t.same(leafHash(enc.encode('x')), server.leafHash(enc.encode('x')));
});

const T0 = Date.parse('2026-03-01T08:00:00Z');
const ca = await makeTestCa('p256', () => new Date(T0 - 86400_000));
const keys = await generateKeyPair('p256');
const cert = await ca.issuer.issueAuditCertificate({ publicKey: keys.publicKey, commonName: 'audit' });
const trust = { anchors: ca.trustAnchors, intermediates: [ca.issuing.cert], crls: [] };

function rows(n: number, change?: number): EntryRow[] {
  return Array.from({ length: n }, (_, seq) => {
    const data = JSON.stringify({ at: '2026-03-01T08:00:00.000Z', seq, type: seq === change ? 'forged' : 'login.ok', v: 1 });
    return { seq, data, leafHash: server.leafHash(enc.encode(data)) };
  });
}
const rootOf = (rs: EntryRow[]) => server.rootHash(rs.map((r) => r.leafHash!));

async function note(rs: EntryRow[], size: number, origin = 'sigil/T/audit', dt = 0) {
  const s = await server.signCheckpoint({ origin, size, root: rootOf(rs.slice(0, size)), time: new Date(T0 + dt), cert, key: keys.privateKey });
  return { note: s.note, signature: s.signature };
}

function source(rs: EntryRow[], latest: { note: string; signature: Uint8Array }, stored: { note: string; signature: Uint8Array }[], consistency?: TrailSource['consistency']): TrailSource {
  return {
    latest: async () => latest,
    async *checkpoints() {
      yield* stored;
    },
    async *entries(from, to) {
      for (const r of rs) if (r.seq >= from && r.seq < to) yield r;
    },
    ...(consistency ? { consistency } : {}),
  };
}

async function saved(rs: EntryRow[], size: number, origin?: string): Promise<SavedCheckpoint> {
  const n = await note(rs, size, origin);
  return { version: 1, origin: origin ?? 'sigil/T/audit', size, root: '', time: '', note: n.note, signature: Buffer.from(n.signature).toString('base64'), savedAt: '' };
}

t.test('when a good trail is verified then it holds, with and without a saved checkpoint', async (t) => {
  const rs = rows(9);
  const latest = await note(rs, 9);
  const proof = async (m: number, n: number) => server.consistencyProof(m, n, server.memoryNodeSource(rs.map((r) => r.leafHash!)));
  t.match(await verifyTrail(source(rs, latest, [await note(rs, 4), latest], proof), { trust }), { ok: true, size: 9, checkpoints: 2 });
  t.match(await verifyTrail(source(rs, latest, [], proof), { trust, saved: await saved(rs, 4) }), { ok: true, since: 4 });
});

t.test('when two validly signed checkpoints disagree on a size then fork', async (t) => {
  const rs = rows(9);
  const forged = rows(9, 2);
  const latest = await note(rs, 9);
  t.match(await verifyTrail(source(rs, latest, [await note(rs, 5), await note(forged, 5, undefined, 1000)]), { trust }), { ok: false, reason: 'fork' });
});

t.test('when the log is shorter than a saved checkpoint then rollback', async (t) => {
  const rs = rows(9);
  t.match(await verifyTrail(source(rs.slice(0, 6), await note(rs, 6), []), { trust, saved: await saved(rs, 9) }), { ok: false, reason: 'rollback', seq: 6 });
});

t.test('when a checkpoint is of another log then origin-mismatch', async (t) => {
  const rs = rows(4);
  t.match(await verifyTrail(source(rs, await note(rs, 4), []), { trust, saved: await saved(rs, 2, 'sigil/Other/audit') }), { ok: false, reason: 'origin-mismatch' });
});

t.test('when the consistency proof is wrong or missing then inconsistent', async (t) => {
  const rs = rows(9);
  const forged = rows(9, 1);
  const latest = await note(forged, 9);
  const proof = async (m: number, n: number) => server.consistencyProof(m, n, server.memoryNodeSource(forged.map((r) => r.leafHash!)));
  t.match(await verifyTrail(source(forged, latest, [], proof), { trust, saved: await saved(rs, 5) }), { ok: false, reason: 'inconsistent' });
  const none = async () => {
    throw new Error('AUDIT_TREE_DAMAGED');
  };
  t.match(await verifyTrail(source(forged, latest, [], none), { trust, saved: await saved(rs, 5) }), { ok: false, reason: 'inconsistent', detail: /no consistency proof/ });
  // Offline (no proofs): the recomputed root at the saved size catches it.
  t.match(await verifyTrail(source(forged, latest, []), { trust, saved: await saved(rs, 5) }), { ok: false, reason: 'inconsistent', seq: 0 });
});

t.test('when entries are missing at the end or malformed then the entry is named', async (t) => {
  const rs = rows(6);
  t.match(await verifyTrail(source(rs.slice(0, 4), await note(rs, 6), []), { trust }), { ok: false, reason: 'sequence-gap', seq: 4 });
  const bad = rows(6);
  bad[3] = { seq: 3, data: 'not json', leafHash: server.leafHash(enc.encode('not json')) };
  t.match(await verifyTrail(source(bad, await note(bad, 6), []), { trust }), { ok: false, reason: 'malformed-entry', seq: 3 });
  // JSON that is no object (a crafted export): a refusal naming the entry, not a TypeError.
  for (const data of ['null', '7', '"x"', '[]']) {
    const odd = rows(6);
    odd[2] = { seq: 2, data, leafHash: server.leafHash(enc.encode(data)) };
    t.match(await verifyTrail(source(odd, await note(odd, 6), []), { trust }), { ok: false, reason: 'seq-mismatch', seq: 2 }, data);
  }
  const foreignCa = await makeTestCa('p256', () => new Date(T0 - 86400_000), { organization: 'Elsewhere' });
  t.match(await verifyTrail(source(rs, await note(rs, 6), []), { trust: { ...trust, anchors: foreignCa.trustAnchors, intermediates: [] } }), {
    ok: false,
    reason: 'checkpoint-invalid',
  });
});

// Review "rollback on a busy appliance": the CLI takes the latest checkpoint first and lists the
// stored ones afterwards, so the list may end with checkpoints signed after that latest one.
type Listed = { note: string; signature: Uint8Array; id?: number };
const withId = (n: { note: string; signature: Uint8Array }, id?: number): Listed => (id === undefined ? { ...n } : { ...n, id });

t.test('when checkpoints signed after the latest one are listed after it then they are not a rollback', async (t) => {
  const rs = rows(12);
  const latest = withId(await note(rs, 9, undefined, 2000), 3);
  const stored = [withId(await note(rs, 4), 1), withId(await note(rs, 6, undefined, 1000), 2), latest, withId(await note(rs, 12, undefined, 3000), 4)];
  t.match(await verifyTrail(source(rs, latest, stored), { trust }), { ok: true, size: 9, checkpoints: 3, later: 1 });
  // An export written before the fix: its latest (checkpoint.txt) carries no id; the list shows which one it is.
  t.match(await verifyTrail(source(rs, withId(latest), stored), { trust }), { ok: true, size: 9, checkpoints: 3, later: 1 });
});

t.test('when a larger checkpoint was signed before the latest one then rollback, whatever the list order says', async (t) => {
  const rs = rows(12);
  const latest = withId(await note(rs, 9, undefined, 2000), 3);
  const bigger = await note(rs, 12, undefined, 1000);
  // Listed before the latest (the appliance signed 12 entries, then presents 9).
  t.match(await verifyTrail(source(rs, latest, [withId(bigger, 2), latest]), { trust }), { ok: false, reason: 'rollback', seq: 9 });
  // Listed after the latest but with a smaller id: not provably later.
  t.match(await verifyTrail(source(rs, latest, [latest, withId(bigger, 2)]), { trust }), { ok: false, reason: 'rollback' });
  // The latest is not in the list at all, or the list has no ids: nothing is provably later.
  t.match(await verifyTrail(source(rs, latest, [withId(await note(rs, 4), 1), withId(bigger, 4)]), { trust }), { ok: false, reason: 'rollback' });
  t.match(await verifyTrail(source(rs, withId(latest), [withId(latest), withId(bigger)]), { trust }), { ok: false, reason: 'rollback' });
  // The same note under another id than the latest's is not the latest.
  t.match(await verifyTrail(source(rs, latest, [withId(latest, 7), withId(bigger, 8)]), { trust }), { ok: false, reason: 'rollback' });
  // An older checkpoint stored again as the newest (a replay): its first copy is not the latest.
  const older = await note(rs, 9);
  t.match(await verifyTrail(source(rs, withId(older), [withId(older, 1), withId(bigger, 2), withId(older, 3)]), { trust }), { ok: false, reason: 'rollback' });
  t.match(await verifyTrail(source(rs, withId(older, 3), [withId(older, 1), withId(bigger, 2), withId(older, 3)]), { trust }), { ok: false, reason: 'rollback' });
});

t.test('when a checkpoint listed after the latest one covers no more than it then it is still checked', async (t) => {
  const rs = rows(12);
  const forged = rows(12, 2);
  const latest = withId(await note(rs, 9, undefined, 2000), 3);
  t.match(await verifyTrail(source(rs, latest, [latest, withId(await note(forged, 5, undefined, 3000), 4)]), { trust }), { ok: false, reason: 'checkpoint-mismatch' });
  t.match(await verifyTrail(source(rs, latest, [withId(await note(rs, 5), 1), latest, withId(await note(forged, 5, undefined, 3000), 4)]), { trust }), {
    ok: false,
    reason: 'fork',
  });
});
