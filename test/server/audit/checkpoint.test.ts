/**
 * Checkpoints: the note format (one text per statement), signatures checked with the audit usage
 * against the CA, the checkpointer's timing under a fake clock, and the server-side trail
 * verifier catching a log rebuilt under old checkpoints.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { generateKeyPair, signDetached, type Certificate, type CryptoKey } from '../../../pki/index.js';
import {
  AuditLog,
  AuditTrail,
  Checkpointer,
  EMPTY_ROOT,
  formatCheckpoint,
  parseCheckpoint,
  signCheckpoint,
  verifyCheckpoint,
  openAuditTrail,
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
const trust = { trustAnchors: ca.trustAnchors, intermediates: [ca.issuing.cert] };
const root = new Uint8Array(32).fill(7);
const enc = new TextEncoder();

async function signed(cert: Certificate = auditCert, key: CryptoKey = auditKeys.privateKey) {
  return signCheckpoint({ origin: 'sigil/Test/audit', size: 5, root, time: new Date(T0), cert, key, chain: [ca.issuing.cert] });
}

t.test('when a checkpoint is formatted then it parses back to the same statement', async (t) => {
  const note = formatCheckpoint({ origin: 'sigil/Test/audit', size: 5, root, time: new Date(T0 + 1234) });
  t.equal(note, `sigil/Test/audit\n5\n${Buffer.from(root).toString('base64')}\n2026-03-01T08:00:01Z\n`);
  const back = parseCheckpoint(note);
  t.same({ ...back, root: Buffer.from(back.root) }, { origin: 'sigil/Test/audit', size: 5, root: Buffer.from(root), time: new Date(T0 + 1000) });
});

t.test('when a note is not in the one accepted form then AUDIT_CHECKPOINT_INVALID', async (t) => {
  const good = formatCheckpoint({ origin: 'o', size: 5, root, time: new Date(T0) });
  const bad = [good + 'extra\n', good.replace('\n5\n', '\n05\n'), good.replace(/\n[A-Za-z0-9+/=]{44}\n/, '\nAAAA\n'), good.replace('2026-03-01T08:00:00Z', '2026-03-01 08:00'), good.slice(0, -1), '\n5\n' + good.split('\n').slice(2).join('\n')];
  for (const note of bad) t.throws(() => parseCheckpoint(note), { code: 'AUDIT_CHECKPOINT_INVALID' }, JSON.stringify(note));
  t.throws(() => formatCheckpoint({ origin: 'two\nlines', size: 1, root, time: new Date(T0) }), { code: 'AUDIT_CHECKPOINT_INVALID' });
  t.throws(() => formatCheckpoint({ origin: 'o', size: -1, root, time: new Date(T0) }), { code: 'AUDIT_CHECKPOINT_INVALID' });
  t.throws(() => formatCheckpoint({ origin: 'o', size: 1, root: root.slice(1), time: new Date(T0) }), { code: 'AUDIT_CHECKPOINT_INVALID' });
});

t.test('when a checkpoint signed by the audit key is verified then it holds; every change is refused with its reason', async (t) => {
  const cp = await signed();
  const ok = await verifyCheckpoint(cp.note, cp.signature, trust);
  t.ok(ok.ok, JSON.stringify(ok));
  t.match(await verifyCheckpoint(cp.note.replace('\n5\n', '\n6\n'), cp.signature, trust), { ok: false, reason: 'bad-signature' });
  t.match(await verifyCheckpoint(cp.note, new Uint8Array([1, 2, 3]), trust), { ok: false, reason: 'malformed' });
  t.match(await verifyCheckpoint('garbage', cp.signature, trust), { ok: false, reason: 'malformed' });
  t.match(await verifyCheckpoint(cp.note, cp.signature, { ...trust, origin: 'sigil/Other/audit' }), { ok: false, reason: 'origin-mismatch' });
  const foreign = await makeTestCa('p256', () => new Date(T0 - 86400_000), { organization: 'Elsewhere' });
  t.match(await verifyCheckpoint(cp.note, cp.signature, { trustAnchors: foreign.trustAnchors }), { ok: false, reason: 'untrusted' });
  // A staff signing certificate of the same CA lacks the audit EKU.
  const staff = await ca.staff('alee');
  const byStaff = await signed(staff.cert, staff.key);
  t.match(await verifyCheckpoint(byStaff.note, byStaff.signature, trust), { ok: false, reason: 'untrusted', detail: /sigilAuditSigning|audit/ });
  // The CMS signingTime must be the note's time.
  const other = await signDetached({ content: enc.encode(cp.note), signerCert: auditCert, signerKey: auditKeys.privateKey, signingTime: new Date(T0 + 60_000) });
  t.match(await verifyCheckpoint(cp.note, other, trust), { ok: false, reason: 'time-mismatch' });
});

async function setup(t: Test) {
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  const log = await AuditLog.open(db, { now });
  const cp = await Checkpointer.open({ db, log, origin: 'sigil/Test/audit', cert: auditCert, key: auditKeys.privateKey, now, intervalMs: 2000 });
  return { db, log, cp };
}

t.test('when the log grows then the checkpointer signs at most once per interval, and on demand', async (t) => {
  clock = T0;
  const { log, cp } = await setup(t);
  const first = await cp.current();
  t.equal(first.size, 0);
  t.same(Buffer.from(first.root), Buffer.from(EMPTY_ROOT));
  t.equal(await cp.tick(), undefined, 'no growth: nothing signed');
  await log.append([{ type: 'login.ok', actor: 'a' }]);
  clock += 500;
  t.equal(await cp.tick(), undefined, 'grown, but the interval has not passed');
  clock += 2000;
  const second = await cp.tick();
  t.equal(second?.size, 1);
  t.equal((await cp.current()).id, second!.id, 'on demand with no growth returns the stored one');
  await log.append([{ type: 'login.ok', actor: 'b' }]);
  const third = await cp.current();
  t.equal(third.size, 2, 'on demand signs at once, whatever the interval');
  t.same((await cp.list()).map((c) => c.size), [0, 1, 2]);
  t.equal((await cp.atSize(1))?.id, second!.id);
  const v = await verifyCheckpoint(third.note, third.signature, trust);
  t.ok(v.ok);
});

t.test('when the timer runs then checkpoints appear without being asked', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  const log = await AuditLog.open(db);
  const cp = await Checkpointer.open({ db, log, origin: 'o', cert: auditCert, key: auditKeys.privateKey, intervalMs: 1000 });
  await log.append([{ type: 'login.ok', actor: 'a' }]);
  cp.start();
  const deadline = Date.now() + 5000;
  while (!(await cp.latest()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await cp.stop();
  t.equal((await cp.latest())?.size, 1);
});

t.test('when entries were removed from the end then the checkpointer keeps serving the larger signed head', async (t) => {
  clock = T0;
  const { db, log, cp } = await setup(t);
  await log.append([{ type: 'a' }, { type: 'b' }, { type: 'c' }]);
  const signedHead = await cp.current();
  await db.run('DELETE FROM audit_log WHERE seq = 2');
  clock += 10_000;
  t.equal(await cp.tick(), undefined);
  t.equal((await cp.current()).id, signedHead.id);
});

t.test('when the log is rebuilt under its old checkpoints then the trail verifier names the range', async (t) => {
  clock = T0;
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  const trail: AuditTrail = await openAuditTrail({
    db,
    auditCert,
    auditKey: auditKeys.privateKey,
    issuingCert: ca.issuing.cert,
    rootCert: ca.root.cert,
    org: 'Test',
    now,
  });
  await trail.log.append([{ type: 'a' }, { type: 'b' }]);
  await trail.checkpointer.current();
  await trail.log.append([{ type: 'c' }, { type: 'd' }, { type: 'e' }]);
  await trail.checkpointer.current();
  t.match(await trail.verify(), { ok: true, size: 5, checkpoints: 2 });
  await db.exec("DELETE FROM audit_log; DELETE FROM audit_nodes; UPDATE audit_head SET size = 0, root = x'';");
  await trail.log.append([{ type: 'a' }, { type: 'b' }, { type: 'c' }, { type: 'x' }, { type: 'e' }]);
  t.ok((await trail.log.verify()).ok, 'the rebuilt log is consistent in itself');
  t.match(await trail.verify(), { ok: false, reason: 'checkpoint-mismatch', seq: 2, range: { from: 2, to: 4 } });
  await db.run("UPDATE audit_checkpoints SET note = replace(note, '\n2\n', '\n3\n') WHERE size = 2");
  t.match(await trail.verify(), { ok: false, reason: 'checkpoint-invalid' });
});
