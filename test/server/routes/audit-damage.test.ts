/**
 * `/v1/audit` over a damaged or rewritten vault.db, on a real appliance over real TLS:
 * - an inclusion proof carries the entry's leaf data for the roles that may read entries (auditor,
 *   officer), never for staff, so a client recomputes the leaf hash instead of trusting ours;
 * - an entry, its leaf hash, every node and the head rewritten consistently: the appliance refuses
 *   to sign (409 AUDIT_CHECKPOINT_MISMATCH, one alarm), while a genuine append signed before and
 *   signs again once the tree is repaired;
 * - a deleted `audit_log` row: proofs that need it answer 409 AUDIT_TREE_DAMAGED naming the
 *   entry, never 500 INTERNAL.
 */
import t from 'tap';
import { leafHash, memoryNodeSource, rootHash, type AuditTrail } from '../../../server/audit/index.js';
import { auditRoutes, auditTrailOf } from '../../../server/routes/audit.js';
import { startTestAppliance } from '../../helpers/appliance.js';

const enc = new TextEncoder();
const b64 = (h: Uint8Array) => Buffer.from(h).toString('base64');

let trail: AuditTrail | undefined;
const alarms: unknown[] = [];
const ta = await startTestAppliance({
  captureLogs: true,
  extraRoutes: { '/v1/audit': (deps) => auditRoutes(deps, (trail = auditTrailOf(deps.appliance, deps.now, (e) => alarms.push(e)))) },
});
t.teardown(async () => {
  await trail?.stop();
  await ta.stop();
});
const auditor = await ta.createStaff({ login: 'aud1', clearance: 'secret', role: 'auditor' });
const staff = await ta.createStaff({ login: 'staff1', clearance: 'secret' });
const officer = ta.officer;
const as = (u: { token: string; certPem: string; keyPem: string }) => ({ token: u.token, cert: u.certPem, key: u.keyPem });
const db = ta.appliance.vault.db;
const log = ta.appliance.auditLog;
for (let i = 0; i < 40; i++) await log.append([{ type: 'login.ok', actor: i % 2 ? 'alee' : 'bkim', data: { i } }]);

t.test('when an auditor or officer asks for an inclusion proof then it carries the entry, which hashes to the leaf; staff get hashes only', async (t) => {
  const size = (await ta.request('/v1/audit/checkpoint', as(auditor))).body.checkpoint.size as number;
  const [row] = await log.rows(3, 4);
  for (const u of [auditor, officer]) {
    const r = await ta.request(`/v1/audit/proofs/inclusion?index=3&size=${size}`, as(u));
    t.equal(r.status, 200);
    t.equal(r.body.leafData, row!.data, `${u.login} gets the entry exactly as stored`);
    t.equal(r.body.leafHash, b64(leafHash(enc.encode(r.body.leafData))));
  }
  const s = await ta.request(`/v1/audit/proofs/inclusion?index=3&size=${size}`, as(staff));
  t.equal(s.status, 200);
  t.notOk('leafData' in s.body, 'staff may not read entries (/entries is 403 for them), so not here either');
  t.equal(s.body.leafHash, b64(row!.leaf_hash));
});

t.test('when an entry, its leaf hash, every node and the head are rewritten consistently then the appliance refuses to sign with 409, and signs again once repaired', async (t) => {
  const first = await ta.request('/v1/audit/checkpoint', as(staff));
  t.equal(first.status, 200);
  // A genuine append is signed.
  t.equal((await ta.request('/v1/audit/room-access', { ...as(officer), body: { pass: 'P-1', person: 'A B', direction: 'entry' } })).status, 201);
  const genuine = await ta.request('/v1/audit/checkpoint', as(staff));
  t.equal(genuine.status, 200);
  t.equal(genuine.body.checkpoint.size, first.body.checkpoint.size + 1, 'a genuine append still signs');

  // rewrite.mjs, on the appliance's vault.db: entry 5's actor changed, leaf hash, nodes, head recomputed.
  const [orig] = await db.all<{ data: string; actor: string; leaf_hash: Uint8Array }>('SELECT data, actor, leaf_hash FROM audit_log WHERE seq = 5');
  const forged = orig!.data.replace(/"actor":"[a-z]+"/, '"actor":"someone-else"');
  t.not(forged, orig!.data);
  const rebuildNodes = async () => {
    const leaves = (await db.all<{ leaf_hash: Uint8Array }>('SELECT leaf_hash FROM audit_log ORDER BY seq')).map((r) => new Uint8Array(r.leaf_hash));
    const src = memoryNodeSource(leaves);
    for (const n of await db.all<{ level: number; idx: number }>('SELECT level, idx FROM audit_nodes')) {
      await db.run('UPDATE audit_nodes SET hash = ? WHERE level = ? AND idx = ?', [await src(n.level, n.idx), n.level, n.idx]);
    }
    await db.run('UPDATE audit_head SET size = ?, root = ? WHERE id = 1', [leaves.length, rootHash(leaves)]);
  };
  await db.run('UPDATE audit_log SET data = ?, actor = ?, leaf_hash = ? WHERE seq = 5', [forged, 'someone-else', leafHash(enc.encode(forged))]);
  await rebuildNodes();
  t.ok((await log.verify()).ok, 'control: the forged tree is consistent in itself');
  await log.append([{ type: 'login.ok', actor: 'alee' }]); // the log grows: a checkpoint is due
  const stored = (await db.get<{ n: number }>('SELECT count(*) AS n FROM audit_checkpoints'))!.n;

  const refused = await ta.request('/v1/audit/checkpoint', as(staff));
  t.equal(refused.status, 409);
  t.equal(refused.body.error.code, 'AUDIT_CHECKPOINT_MISMATCH');
  t.match(refused.body.error.message, new RegExp(`checkpoint #${genuine.body.checkpoint.id}`));
  t.notMatch(JSON.stringify(refused.body), /at .*\.ts:\d+/, 'no stack');
  const proof = await ta.request('/v1/audit/proofs/inclusion?index=0', as(auditor));
  t.equal(proof.status, 409, 'a proof against a checkpoint that would have to be signed is refused too');
  t.equal((await db.get<{ n: number }>('SELECT count(*) AS n FROM audit_checkpoints'))!.n, stored, 'nothing signed');
  t.equal((await ta.request('/v1/audit/checkpoint', as(auditor))).status, 409);
  t.equal(alarms.length, 1, 'one alarm for the appliance log');
  t.match(alarms[0], { code: 'AUDIT_CHECKPOINT_MISMATCH' });
  t.notOk(ta.logs.some((l) => l.includes('internal error')), 'not an internal error');

  // Repaired (the genuine entry back, the tree rebuilt from it): signing resumes.
  await db.run('UPDATE audit_log SET data = ?, actor = ?, leaf_hash = ? WHERE seq = 5', [orig!.data, orig!.actor, orig!.leaf_hash]);
  await rebuildNodes();
  const again = await ta.request('/v1/audit/checkpoint', as(staff));
  t.equal(again.status, 200, JSON.stringify(again.body));
  t.equal(again.body.checkpoint.size, await log.size());
});

t.test('when an audit_log row is deleted then proofs that need it answer 409 AUDIT_TREE_DAMAGED naming the entry, never 500', async (t) => {
  const size = (await ta.request('/v1/audit/checkpoint', as(staff))).body.checkpoint.size as number;
  t.ok(size > 22);
  await db.run('DELETE FROM audit_log WHERE seq = 20');
  for (const path of [
    `/v1/audit/proofs/inclusion?index=21&size=${size}`,
    '/v1/audit/proofs/inclusion?index=21',
    `/v1/audit/proofs/inclusion?index=20&size=${size}`,
    `/v1/audit/proofs/consistency?from=21&to=${size}`,
    '/v1/audit/proofs/consistency?from=21',
  ]) {
    const r = await ta.request(path, as(staff));
    t.equal(r.status, 409, path);
    t.equal(r.body.error?.code, 'AUDIT_TREE_DAMAGED', path);
    t.match(r.body.error?.message, /audit entry 20 is missing/, path);
  }
  t.notOk(ta.logs.some((l) => l.includes('internal error')), 'no internal error (and no stack) in the log');
});
