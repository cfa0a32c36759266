import t, { type Test } from 'tap';
import { join } from 'node:path';
import sqlite3 from 'sqlite3';
import {
  AuditLog,
  leafHash,
  rootHash,
  verifyConsistency,
  verifyInclusion,
  verifyLog,
  type AuditEvent,
} from '../../../server/audit/index.js';
import { Db } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const T0 = Date.parse('2026-03-01T08:00:00Z');

async function setup(t: Test, n = 0) {
  const path = join(tmpDir(t), 'vault.db');
  const db = await Db.open(path);
  t.teardown(() => db.close());
  let tick = 0;
  const log = await AuditLog.open(db, { now: () => new Date(T0 + 1000 * tick++) });
  if (n > 0) await log.append(events(n));
  return { path, db, log };
}

function events(n: number, from = 0): AuditEvent[] {
  const types = ['login.ok', 'login.failed', 'cert.issued', 'message.accepted', 'deletion', 'room.entry'];
  return Array.from({ length: n }, (_, k) => ({
    type: types[(from + k) % types.length]!,
    actor: `user${(from + k) % 5}`,
    subject: `subject:${from + k}`,
    data: { n: from + k, z: 'last', a: ['first'] },
  }));
}

/** Raw SQL on the file on disk, as an attacker with file access would do it (no Db wrapper). */
async function raw(path: string, sql: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const db = new sqlite3.Database(path, (err) => {
      if (err) return reject(err);
      db.exec(sql, (e) => db.close(() => (e ? reject(e) : resolve())));
    });
  });
}

t.test('when events are appended then seqs are contiguous and each leaf is the hash of the canonical JSON stored', async (t) => {
  const { log } = await setup(t);
  const out = await log.append([{ type: 'login.ok', actor: 'alice', subject: 'user:alice', data: { z: 1, a: 2 } }, { type: 'crl.published' }]);
  t.same(out.map((o) => o.seq), [0, 1]);
  const [e0, e1] = await log.entries(0, 2);
  t.equal(e0!.leafData, '{"actor":"alice","at":"2026-03-01T08:00:00.000Z","data":{"a":2,"z":1},"seq":0,"subject":"user:alice","type":"login.ok","v":1}');
  t.same(e0!.leafHash, leafHash(new TextEncoder().encode(e0!.leafData)));
  t.same(out[0]!.leafHash, e0!.leafHash);
  t.same({ type: e1!.type, actor: e1!.actor, data: e1!.data }, { type: 'crl.published', actor: undefined, data: undefined });
  t.equal(await log.size(), 2);
  const more = await log.append([{ type: 'room.exit', at: new Date('2026-03-02T00:00:00Z') }]);
  t.equal(more[0]!.seq, 2);
  t.equal((await log.entries(2, 3))[0]!.at, '2026-03-02T00:00:00.000Z');
});

t.test('when the log grows then every root equals the RFC 9162 root of its leaves and complete subtrees are cached', async (t) => {
  const { db, log } = await setup(t);
  const leaves: Uint8Array[] = [];
  for (let size = 0; size < 70; ) {
    const batch = 1 + (size % 7);
    for (const r of await log.append(events(batch, size))) leaves.push(r.leafHash);
    size += batch;
    t.same((await log.root()).root, rootHash(leaves), `size ${size}`);
    const n = leaves.length;
    const popcount = n.toString(2).replace(/0/g, '').length;
    t.same(await db.get('SELECT count(*) AS c FROM audit_nodes'), { c: n - popcount }, 'one stored node per complete subtree');
  }
  for (const s of [0, 1, 5, 16, 33]) t.same((await log.root(s)).root, rootHash(leaves.slice(0, s)));
});

t.test('when batches of uneven sizes cross many powers of two then the head stays the RFC 9162 root (frontier read in one query)', async (t) => {
  const { log } = await setup(t);
  const leaves: Uint8Array[] = [];
  let seed = 7;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  for (const batch of [1, 1, 2, 60, 3, 64, 127, 1, 129, 5, 256, 33]) {
    for (const r of await log.append(events(batch, leaves.length))) leaves.push(r.leafHash);
    t.same((await log.root()).root, rootHash(leaves), `size ${leaves.length}`);
  }
  for (let i = 0; i < 20; i++) {
    for (const r of await log.append(events(1 + rand(40), leaves.length))) leaves.push(r.leafHash);
  }
  t.same((await log.root()).root, rootHash(leaves), `size ${leaves.length} after random batches`);
});

t.test('when two logs on one database take turns, or an append rolls back, then each next append still builds on the stored tree', async (t) => {
  const { db, log } = await setup(t);
  const other = await AuditLog.open(db);
  const leaves: Uint8Array[] = [];
  const push = async (l: AuditLog, n: number) => {
    for (const r of await l.append(events(n, leaves.length))) leaves.push(r.leafHash);
  };
  await push(log, 3);
  await push(other, 5); // log's remembered frontier is now stale
  await push(log, 2);
  t.same((await log.root()).root, rootHash(leaves), `size ${leaves.length} after alternating writers`);
  // An append whose transaction rolls back leaves the remembered frontier ahead of the table.
  await t.rejects(
    db.transaction(async () => {
      await log.append(events(4, leaves.length));
      throw new Error('caller fails after the append');
    }),
    /caller fails/,
  );
  await push(log, 3);
  t.same((await log.root()).root, rootHash(leaves), `size ${leaves.length} after a rolled-back append`);
  t.same(await verifyLog(await log.rows(0, leaves.length)), { ok: true, size: leaves.length, root: rootHash(leaves) }, 'and the rows verify');
});

t.test('when proofs are asked of the log then every inclusion and consistency proof verifies against its roots', async (t) => {
  const { log } = await setup(t, 45);
  const all = await log.entries(0, 45);
  for (const size of [1, 2, 3, 7, 8, 9, 31, 32, 45]) {
    const { root } = await log.root(size);
    for (let seq = 0; seq < size; seq++) {
      const proof = await log.inclusionProof(seq, size);
      t.same(verifyInclusion(all[seq]!.leafHash, seq, size, proof, root), { ok: true });
    }
    for (const m of [0, 1, 4, 5, size]) {
      if (m > size) continue;
      const proof = await log.consistencyProof(m, size);
      t.same(verifyConsistency(m, size, (await log.root(m)).root, root, proof), { ok: true }, `${m}→${size}`);
    }
  }
});

t.test('when concurrent appends race then the seqs stay contiguous and the log verifies', async (t) => {
  const { log } = await setup(t);
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => log.append(events(3, i * 3))));
  const seqs = results.flat().map((r) => r.seq).sort((a, b) => a - b);
  t.same(seqs, Array.from({ length: 36 }, (_, i) => i));
  t.match(await log.verify(), { ok: true, size: 36 });
});

t.test('when append runs inside a caller transaction that rolls back then its entries roll back too', async (t) => {
  const { db, log } = await setup(t, 2);
  await t.rejects(
    db.transaction(async () => {
      await log.append([{ type: 'account.created', subject: 'user:bob' }]);
      throw new Error('account insert failed');
    }),
  );
  t.equal(await log.size(), 2);
  t.match(await log.verify(), { ok: true, size: 2 });
});

t.test('when an event is malformed then AUDIT_EVENT_INVALID and nothing is appended', async (t) => {
  const { log } = await setup(t, 1);
  await t.rejects(log.append([{ type: 'login.ok' }, { type: '' }]), { code: 'AUDIT_EVENT_INVALID', message: /event 1: type/ });
  await t.rejects(log.append([{ type: 'Login OK' }]), { code: 'AUDIT_EVENT_INVALID' });
  await t.rejects(log.append([{ type: 'x', at: new Date('nope') }]), { code: 'AUDIT_EVENT_INVALID' });
  await t.rejects(log.append([{ type: 'x', data: [1, 2] as unknown as Record<string, unknown> }]), { code: 'AUDIT_EVENT_INVALID' });
  t.equal(await log.size(), 1);
});

t.test('when a seq or size is outside the log then AUDIT_RANGE', async (t) => {
  const { log } = await setup(t, 3);
  await t.rejects(log.inclusionProof(3, 3), { code: 'AUDIT_RANGE' });
  await t.rejects(log.inclusionProof(0, 4), { code: 'AUDIT_RANGE' });
  await t.rejects(log.consistencyProof(2, 1), { code: 'AUDIT_RANGE' });
  await t.rejects(log.root(4), { code: 'AUDIT_RANGE' });
  await t.rejects(log.entries(2, 1), { code: 'AUDIT_RANGE' });
});

t.test('when a stored subtree hash is missing then AUDIT_TREE_DAMAGED', async (t) => {
  const { db, log } = await setup(t, 8);
  await db.run('DELETE FROM audit_nodes WHERE level = 2 AND idx = 0');
  await t.rejects(log.inclusionProof(7, 8), { code: 'AUDIT_TREE_DAMAGED' });
  t.match(await log.verify(), { ok: false, reason: 'root-mismatch' });
});

t.test('when the log file is untouched then it verifies offline from its rows alone', async (t) => {
  const { log } = await setup(t, 20);
  const head = await log.root();
  t.same(verifyLog(await log.rows(0, 20), head), { ok: true, size: 20, root: head.root });
  t.same(await log.verify(head), { ok: true, size: 20, root: head.root });
});

/** Runs `tamper` on the closed file, reopens, and returns the verification. */
async function tampered(t: Test, n: number, tamper: (path: string) => Promise<void>) {
  const { path, db, log } = await setup(t, n);
  const head = await log.root();
  await db.close();
  await tamper(path);
  const db2 = await Db.open(path);
  t.teardown(() => db2.close());
  const log2 = await AuditLog.open(db2);
  return { head, log: log2, stored: await log2.verify(), vsCheckpoint: await log2.verify(head) };
}

t.test('when one byte of an entry is changed on disk then verification fails naming that entry', async (t) => {
  const r = await tampered(t, 12, (p) => raw(p, "UPDATE audit_log SET data = replace(data, 'user0', 'user9') WHERE seq = 5"));
  t.match(r.stored, { ok: false, reason: 'leaf-hash-mismatch', seq: 5 });
  t.match(verifyLog(await r.log.rows(0, 12)), { ok: false, reason: 'leaf-hash-mismatch', seq: 5 });
});

t.test('when an entry’s index columns are edited then its data still hashes, and verification names the entry', async (t) => {
  // The leaf hash covers the data only; the columns are what filters search. Edited, they hid an
  // entry from `sigil audit events --type/--user` (or showed it under another) while the tree verified.
  for (const [sql, what] of [
    ["UPDATE audit_log SET type = 'x' WHERE seq = 5", /stored type differ/],
    ['UPDATE audit_log SET actor = NULL, subject = NULL WHERE seq = 5', /stored actor, subject differ/],
    ["UPDATE audit_log SET at = '1999-01-01T00:00:00.000Z' WHERE seq = 5", /stored time differ/],
  ] as const) {
    const r = await tampered(t, 12, (p) => raw(p, sql));
    t.match(r.stored, { ok: false, reason: 'index-mismatch', seq: 5, detail: what }, sql);
    t.match(r.vsCheckpoint, { ok: false, reason: 'index-mismatch', seq: 5 });
    t.equal((await r.log.query({ type: 'x' })).length, sql.includes("type = 'x'") ? 1 : 0, 'control: the filter does go by the column');
  }
});

t.test('when an entry row is deleted then verification fails naming the missing entry', async (t) => {
  const r = await tampered(t, 12, (p) => raw(p, 'DELETE FROM audit_log WHERE seq = 7'));
  t.match(r.stored, { ok: false, reason: 'sequence-gap', seq: 7 });
});

t.test('when the last entries are deleted then the stored tree or the checkpoint gives it away', async (t) => {
  const r = await tampered(t, 8, (p) => raw(p, 'DELETE FROM audit_log WHERE seq >= 6'));
  t.match(r.stored, { ok: false, reason: 'sequence-gap', seq: 6 });
  t.match(r.vsCheckpoint, { ok: false, reason: 'sequence-gap', seq: 6 });
});

t.test('when the last entry is deleted where it completes no subtree then the stored head gives it away', async (t) => {
  const r = await tampered(t, 5, (p) => raw(p, 'DELETE FROM audit_log WHERE seq = 4'));
  t.match(r.stored, { ok: false, reason: 'sequence-gap', seq: 4 });
});

t.test('when two entry rows are swapped then verification fails naming the first', async (t) => {
  const r = await tampered(t, 12, (p) =>
    raw(
      p,
      `CREATE TEMP TABLE s AS SELECT seq, data, leaf_hash FROM audit_log WHERE seq IN (3, 6);
       UPDATE audit_log SET data = (SELECT data FROM s WHERE seq = 9 - audit_log.seq),
                            leaf_hash = (SELECT leaf_hash FROM s WHERE seq = 9 - audit_log.seq)
       WHERE seq IN (3, 6);`,
    ),
  );
  t.match(r.stored, { ok: false, reason: 'seq-mismatch', seq: 3 });
});

t.test('when an entry and its leaf hash are rewritten consistently then the tree head no longer matches', async (t) => {
  const data = '{"at":"2026-03-01T08:00:00.000Z","seq":2,"type":"login.ok","v":1}';
  const lh = Buffer.from(leafHash(new TextEncoder().encode(data))).toString('hex');
  const r = await tampered(t, 12, (p) => raw(p, `UPDATE audit_log SET data = '${data}', leaf_hash = x'${lh}' WHERE seq = 2`));
  t.match(r.stored, { ok: false, reason: 'root-mismatch' });
  t.match(r.vsCheckpoint, { ok: false, reason: 'root-mismatch' });
});

t.test('when leaf data is valid JSON but not canonical then verification says so', async (t) => {
  const data = '{"v":1,"seq":0,"at":"2026-03-01T08:00:00.000Z","type":"login.ok"}';
  const lh = Buffer.from(leafHash(new TextEncoder().encode(data))).toString('hex');
  const r = await tampered(t, 2, (p) => raw(p, `UPDATE audit_log SET data = '${data}', leaf_hash = x'${lh}' WHERE seq = 0`));
  t.match(r.stored, { ok: false, reason: 'not-canonical', seq: 0 });
});

t.test('when leaf data is JSON but no object, or holds a number JSON cannot keep, then verification refuses it by name', async (t) => {
  // Before: `null` threw a TypeError reading its seq, and 1e999 made canonicalize throw.
  for (const [data, reason] of [
    ['null', 'seq-mismatch'],
    ['[0]', 'seq-mismatch'],
    ['{"at":"2026-03-01T08:00:00.000Z","n":1e999,"seq":0,"type":"login.ok","v":1}', 'not-canonical'],
  ] as const) {
    const lh = Buffer.from(leafHash(new TextEncoder().encode(data))).toString('hex');
    const r = await tampered(t, 2, (p) => raw(p, `UPDATE audit_log SET data = '${data}', leaf_hash = x'${lh}' WHERE seq = 0`));
    t.match(r.stored, { ok: false, reason, seq: 0 }, data);
  }
});
