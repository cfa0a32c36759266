/**
 * The checkpointer signs only a tree that extends the newest checkpoint it signed (issue: "the
 * appliance re-signs a forged history"). A writer of vault.db who rewrites an entry with its leaf
 * hash, every stored node and the head (as /tmp/review-audit/rewrite.mjs did) gets no new
 * signature: AUDIT_CHECKPOINT_MISMATCH, reported once, nothing stored. Neither does one who forges
 * only the nodes a new head is read from, nor one who edits the stored checkpoint row. Its unsigned
 * columns steer nothing: an edited size or time neither stops nor starts signing. A genuine
 * append still signs. What the cheap check leaves to the full verifier is shown too.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { generateKeyPair, signDetached } from '../../../pki/index.js';
import {
  AuditLog,
  Checkpointer,
  leafHash,
  memoryNodeSource,
  rootHash,
  verifyAuditTrail,
  verifyConsistency,
  type Hash,
} from '../../../server/audit/index.js';
import { Db } from '../../../server/vault/index.js';
import { makeTestCa } from '../../helpers/pki-fixtures.js';
import { tmpDir } from '../../helpers/tmp.js';

const T0 = Date.parse('2026-03-01T08:00:00Z');
let clock = T0;
const now = () => new Date(clock);
const ca = await makeTestCa('p256', () => new Date(T0 - 86400_000));
const auditKeys = await generateKeyPair('p256');
const auditCert = await ca.issuer.issueAuditCertificate({ publicKey: auditKeys.publicKey, commonName: 'Test audit log' });
const enc = new TextEncoder();

async function setup(t: Test, entries: number) {
  clock = T0;
  const path = join(tmpDir(t), 'vault.db');
  const db = await Db.open(path);
  t.teardown(() => db.close());
  const log = await AuditLog.open(db, { now });
  const errors: unknown[] = [];
  const open = () =>
    Checkpointer.open({ db, log, origin: 'sigil/Test/audit', cert: auditCert, key: auditKeys.privateKey, chain: [ca.issuing.cert], now, intervalMs: 2000, onError: (e) => errors.push(e) });
  const cp = await open();
  for (let i = 0; i < entries; i++) await log.append([{ type: 'login.ok', actor: i % 2 ? 'alee' : 'bkim', data: { i } }]);
  return { db, log, cp, open, errors };
}

/** rewrite.mjs: entry `seq` gets new data, its leaf hash, every stored node and the head recomputed to match. */
async function rewriteConsistently(db: Db, seq: number): Promise<void> {
  const [row] = await db.all<{ data: string }>('SELECT data FROM audit_log WHERE seq = ?', [seq]);
  const data = row!.data.replace(/"actor":"[a-z]+"/, '"actor":"forger"');
  await db.run('UPDATE audit_log SET data = ?, actor = ?, leaf_hash = ? WHERE seq = ?', [data, 'forger', leafHash(enc.encode(data)), seq]);
  const leaves = (await db.all<{ leaf_hash: Uint8Array }>('SELECT leaf_hash FROM audit_log ORDER BY seq')).map((r) => new Uint8Array(r.leaf_hash));
  const src = memoryNodeSource(leaves);
  for (const n of await db.all<{ level: number; idx: number }>('SELECT level, idx FROM audit_nodes')) {
    await db.run('UPDATE audit_nodes SET hash = ? WHERE level = ? AND idx = ?', [await src(n.level, n.idx), n.level, n.idx]);
  }
  await db.run('UPDATE audit_head SET root = ? WHERE id = 1', [rootHash(leaves)]);
}

const count = async (db: Db) => (await db.get<{ n: number }>('SELECT count(*) AS n FROM audit_checkpoints'))!.n;

t.test('when entries are appended genuinely then each new checkpoint is signed and extends the previous one', async (t) => {
  const { log, cp, open, errors } = await setup(t, 5);
  const first = await cp.current();
  await log.append([{ type: 'room.entry', actor: 'officer' }]);
  clock += 5000;
  const second = await cp.tick();
  t.equal(second?.size, 6, 'the timer signs the grown log');
  await log.append([{ type: 'room.exit', actor: 'officer' }, { type: 'login.ok', actor: 'alee' }]);
  const third = await cp.current();
  t.equal(third.size, 8);
  t.ok(verifyConsistency(first.size, third.size, first.root, third.root, await log.consistencyProof(first.size, third.size)).ok);
  // After a restart the stored checkpoint is not known to this instance: its signature is checked, then it signs.
  await log.append([{ type: 'login.ok', actor: 'bkim' }]);
  const fresh = await open();
  t.equal((await fresh.current()).size, 9);
  t.same(errors, [], 'no alarm');
});

t.test('when an entry, its leaf hash, every node and the head are rewritten consistently then signing is refused with 409, once reported', async (t) => {
  const { db, log, cp, open, errors } = await setup(t, 40);
  const signed = await cp.current();
  await rewriteConsistently(db, 30);
  t.ok((await log.verify()).ok, 'control: the rewritten tree is consistent in itself');
  await log.append([{ type: 'login.ok', actor: 'alee' }]); // the log grows, so a new checkpoint is due
  const before = await count(db);
  await t.rejects(cp.current(), { code: 'AUDIT_CHECKPOINT_MISMATCH', status: 409, message: new RegExp(`checkpoint #${signed.id}`) });
  clock += 5000;
  t.equal(await cp.tick(), undefined, 'the timer refuses too');
  clock += 5000;
  t.equal(await cp.tick(), undefined);
  t.equal(await count(db), before, 'nothing was signed');
  t.equal(errors.length, 1, 'the alarm is reported once, not at every tick');
  t.match(errors[0], { code: 'AUDIT_CHECKPOINT_MISMATCH', message: /root at size 40 differs/ });
  // A restarted appliance (no memory of what it signed) refuses as well.
  await t.rejects((await open()).current(), { code: 'AUDIT_CHECKPOINT_MISMATCH' });
  t.equal(await count(db), before);
});

t.test('when only the nodes a new head is read from are forged then the consistency proof refuses it', async (t) => {
  // Signed at 5 (frontier: node 2:0 and leaf 4, left intact); the forger then replaces node 3:0,
  // from which the head of 8 is read, so root(5) still matches the checkpoint.
  const { db, log, cp, errors } = await setup(t, 5);
  await cp.current();
  await log.append([{ type: 'a' }, { type: 'b' }, { type: 'c' }]);
  const forged: Hash = new Uint8Array(32).fill(9);
  await db.run('UPDATE audit_nodes SET hash = ? WHERE level = 3 AND idx = 0', [forged]);
  await db.run('UPDATE audit_head SET root = ? WHERE id = 1', [forged]);
  t.same(Buffer.from((await log.root(8)).root), Buffer.from(forged), 'control: the head of 8 is now the forged node');
  await t.rejects(cp.current(), { code: 'AUDIT_CHECKPOINT_MISMATCH', message: /does not extend checkpoint/ });
  t.equal(errors.length, 1);
});

t.test('when the stored checkpoint row is edited to match a rewritten tree then its signature gives it away', async (t) => {
  const { db, log, open } = await setup(t, 12);
  const signed = await (await open()).current();
  await rewriteConsistently(db, 3);
  const forgedRoot = (await log.root(signed.size)).root;
  // The root column alone, then the note too: neither is what the audit key signed.
  await db.run('UPDATE audit_checkpoints SET root = ? WHERE id = ?', [forgedRoot, signed.id]);
  await log.append([{ type: 'x' }]);
  await t.rejects((await open()).current(), { code: 'AUDIT_CHECKPOINT_MISMATCH', message: /root at size 12 differs/ }, 'the signed note, not the column, is what counts');
  const b64 = (h: Uint8Array) => Buffer.from(h).toString('base64');
  await db.run('UPDATE audit_checkpoints SET note = replace(note, ?, ?) WHERE id = ?', [b64(signed.root), b64(forgedRoot), signed.id]);
  await t.rejects((await open()).current(), { code: 'AUDIT_CHECKPOINT_MISMATCH', message: /not signed by the audit key/ });
});

t.test('when the stored checkpoint’s size or time column is edited then signing goes on; when its note is, signing is refused loudly', async (t) => {
  // A size column of 9e15 once made every tick see "nothing new to sign", with no alarm: the
  // newest checkpoint stayed old while entries after it could be rewritten at leisure.
  const { db, log, cp, open, errors } = await setup(t, 6);
  const signed = await cp.current();
  await db.run('UPDATE audit_checkpoints SET size = 9000000000000000, at = ? WHERE id = ?', ['2999-01-01T00:00:00.000Z', signed.id]);
  await log.append([{ type: 'room.entry', actor: 'officer' }]);
  clock += 5000;
  const next = await (await open()).tick();
  t.equal(next?.size, 7, 'the timer still signs the grown log: the note’s size and time count, not the columns');
  t.equal((await (await open()).current()).size, 7);
  t.same(errors, [], 'nothing to alarm about: the history the note signed is intact');
  // The note itself claims a huge size: its signature no longer holds, and the refusal is loud.
  const last = (await db.get<{ id: number; note: string }>('SELECT id, note FROM audit_checkpoints ORDER BY id DESC LIMIT 1'))!;
  await db.run('UPDATE audit_checkpoints SET note = ? WHERE id = ?', [last.note.replace(/\n7\n/, '\n9000000000000000\n'), last.id]);
  await log.append([{ type: 'room.exit', actor: 'officer' }]);
  clock += 5000;
  const ticked = await open();
  t.equal(await ticked.tick(), undefined, 'nothing signed');
  t.match(errors, [{ code: 'AUDIT_CHECKPOINT_MISMATCH', message: /not signed by the audit key/ }], 'and the tick reported why, once');
  await t.rejects(ticked.current(), { code: 'AUDIT_CHECKPOINT_MISMATCH' }, 'an auditor asking for the checkpoint is refused too');
});

t.test('when the stored checkpoint is re-signed over a rewritten tree by another audit key then it is refused; by the same key under a renewed certificate it is accepted', async (t) => {
  const { db, log, open } = await setup(t, 12);
  const signed = await (await open()).current();
  await rewriteConsistently(db, 3);
  const forgedRoot = (await log.root(signed.size)).root;
  const b64 = (h: Uint8Array) => Buffer.from(h).toString('base64');
  const forgedNote = signed.note.replace(b64(signed.root), b64(forgedRoot));
  // A valid signature over the forged note, by a key the issuing CA certified for audit too.
  const otherKeys = await generateKeyPair('p256');
  const otherCert = await ca.issuer.issueAuditCertificate({ publicKey: otherKeys.publicKey, commonName: 'Test audit log' });
  const at = new Date(clock);
  const forgedSig = await signDetached({ content: enc.encode(forgedNote), signerCert: otherCert, signerKey: otherKeys.privateKey, signingTime: at });
  await db.run('UPDATE audit_checkpoints SET note = ?, root = ?, signature = ? WHERE id = ?', [forgedNote, forgedRoot, forgedSig, signed.id]);
  await log.append([{ type: 'x' }]);
  await t.rejects((await open()).current(), { code: 'AUDIT_CHECKPOINT_MISMATCH', message: /not signed by the audit key \(another key\)/ });

  // The audit key's own signature under a renewed certificate for it (certs/audit-cert-renewal.ts) is accepted.
  const { db: db2, log: log2, open: open2 } = await setup(t, 5);
  const first = await (await open2()).current();
  const renewed = await ca.issuer.issueAuditCertificate({ publicKey: auditKeys.publicKey, commonName: 'Test audit log' });
  t.not(renewed.serialNumber, auditCert.serialNumber);
  await db2.run('UPDATE audit_checkpoints SET signature = ? WHERE id = ?', [
    await signDetached({ content: enc.encode(first.note), signerCert: renewed, signerKey: auditKeys.privateKey, signingTime: new Date(clock) }),
    first.id,
  ]);
  await log2.append([{ type: 'y' }]);
  clock += 5000;
  t.match(await (await open2()).current(), { size: 6 });
});

t.test('when an entry and its leaf hash are edited but the nodes are not then the new checkpoint still extends the signed root, and the full verifier names the entry', async (t) => {
  // What the O(log n) check does not do: compare entries with the nodes. The root it signs is the
  // genuine history's, so the edit cannot hide behind it; AuditTrail.verify / sigil audit verify find it.
  const { db, log, cp } = await setup(t, 16);
  const first = await cp.current();
  const [row] = await db.all<{ data: string }>('SELECT data FROM audit_log WHERE seq = 3');
  const data = row!.data.replace(/"actor":"[a-z]+"/, '"actor":"forger"');
  await db.run('UPDATE audit_log SET data = ?, leaf_hash = ? WHERE seq = 3', [data, leafHash(enc.encode(data))]);
  await log.append([{ type: 'y' }]);
  const next = await cp.current();
  t.ok(verifyConsistency(first.size, next.size, first.root, next.root, await log.consistencyProof(first.size, next.size)).ok);
  t.match(await log.verify(), { ok: false, reason: 'root-mismatch' });
});

t.test('when the stored trail is verified without the audit key (sigil-server check) then a consistent rewrite under a signed checkpoint is placed', async (t) => {
  const { db, cp } = await setup(t, 40);
  await cp.current();
  const trust = { db, issuingCert: ca.issuing.cert, rootCert: ca.root.cert, org: 'Test' };
  t.match(await verifyAuditTrail(trust), { ok: true, size: 40, checkpoints: 1 });
  await rewriteConsistently(db, 30);
  t.match(await verifyAuditTrail(trust), { ok: false, reason: 'checkpoint-mismatch', range: { from: 0, to: 39 } });
  await db.run('DELETE FROM audit_checkpoints');
  t.match(await verifyAuditTrail(trust), { ok: true, checkpoints: 0 }, 'with every stored checkpoint gone, only one kept outside can tell (README)');
});
