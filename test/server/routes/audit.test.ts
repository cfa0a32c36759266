/**
 * `/v1/audit` over real TLS against a real appliance: checkpoints verify with our verifier and
 * with `openssl cms -verify -purpose any`, entries recompute to the signed root, proofs verify,
 * roles are enforced, room access is recorded, and every audit error code reaches the client.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  leafHash,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  verifyLog,
  type AuditTrail,
} from '../../../server/audit/index.js';
import { auditRoutes, auditTrailOf } from '../../../server/routes/audit.js';
import { startTestAppliance } from '../../helpers/appliance.js';
import { tmpDir } from '../../helpers/tmp.js';

const run = promisify(execFile);
const b = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

let trail: AuditTrail | undefined;
const ta = await startTestAppliance({
  extraRoutes: {
    '/v1/audit': (deps) => auditRoutes(deps, (trail = auditTrailOf(deps.appliance, deps.now))),
  },
});
t.teardown(async () => {
  await trail?.stop();
  await ta.stop();
});
const auditor = await ta.createStaff({ login: 'aud1', clearance: 'secret', role: 'auditor' });
const staff = await ta.createStaff({ login: 'staff1', clearance: 'secret' });
const officer = ta.officer;
const as = (u: { token: string; certPem: string; keyPem: string }) => ({ token: u.token, cert: u.certPem, key: u.keyPem });

t.test('when staff fetch the checkpoint then it verifies with the audit chain and with openssl -purpose any', async (t) => {
  const r = await ta.request('/v1/audit/checkpoint', as(staff));
  t.equal(r.status, 200);
  const cp = r.body.checkpoint;
  t.equal(cp.size, await ta.appliance.auditLog.size());
  const v = await verifyCheckpoint(cp.note, b(cp.signature), { trustAnchors: [ta.appliance.rootCert], intermediates: [ta.appliance.issuingCert] });
  t.ok(v.ok, JSON.stringify(v));
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'note.txt'), cp.note);
  writeFileSync(join(dir, 'sig.der'), b(cp.signature));
  writeFileSync(join(dir, 'chain.pem'), r.body.chain);
  const ok = await run('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'sig.der', '-content', 'note.txt', '-CAfile', 'chain.pem', '-purpose', 'any', '-out', '/dev/null'], { cwd: dir });
  t.match(ok.stderr, /Verification successful/);
  writeFileSync(join(dir, 'note.txt'), cp.note.replace(/\n\d+\n/, `\n${cp.size + 1}\n`));
  const bad = await run('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'sig.der', '-content', 'note.txt', '-CAfile', 'chain.pem', '-purpose', 'any', '-out', '/dev/null'], { cwd: dir }).catch((e: { code: number }) => e);
  t.not((bad as { code?: number }).code ?? 0, 0, 'openssl refuses a changed tree size');
});

t.test('when an auditor downloads the entries then they recompute to the signed root', async (t) => {
  const cp = (await ta.request('/v1/audit/checkpoint', as(auditor))).body.checkpoint;
  const r = await ta.request(`/v1/audit/entries?from=0&to=${cp.size}`, as(auditor));
  t.equal(r.status, 200);
  const rows = r.body.entries.map((e: { seq: number; data: string; leafHash: string }) => ({ seq: e.seq, data: e.data, leaf_hash: b(e.leafHash) }));
  const v = verifyLog(rows, { size: cp.size, root: b(cp.root) });
  t.ok(v.ok, JSON.stringify(v));
  for (const e of r.body.entries) t.notMatch(e.data, /password"\s*:\s*"[^"]/, 'no password value in any entry');
});

t.test('when staff ask for entries or events then they are refused', async (t) => {
  t.equal((await ta.request('/v1/audit/entries?from=0', as(staff))).status, 403);
  t.equal((await ta.request('/v1/audit/events', as(staff))).status, 403);
  t.equal((await ta.request('/v1/audit/checkpoints', as(staff))).status, 403);
  t.equal((await ta.request('/v1/audit/checkpoint', { cert: staff.certPem, key: staff.keyPem })).status, 401);
});

t.test('when an officer records room access then it is a log entry proven by inclusion and consistency proofs', async (t) => {
  const before = (await ta.request('/v1/audit/checkpoint', as(officer))).body.checkpoint;
  const r = await ta.request('/v1/audit/room-access', { ...as(officer), body: { pass: 'P-0042', person: 'Ivan Petrov', direction: 'entry' } });
  t.equal(r.status, 201, JSON.stringify(r.body));
  t.equal(r.body.direction, 'entry');
  const exit = await ta.request('/v1/audit/room-access', { ...as(officer), body: { pass: 'P-0042', person: 'Ivan Petrov', direction: 'exit', at: new Date().toISOString() } });
  t.equal(exit.status, 201);
  const after = (await ta.request('/v1/audit/checkpoint', as(staff))).body.checkpoint;
  t.equal(after.size, before.size + 2);
  const inc = await ta.request(`/v1/audit/proofs/inclusion?index=${r.body.seq}&size=${after.size}`, as(staff));
  t.equal(inc.status, 200);
  t.equal(inc.body.checkpoint.size, after.size, 'the proof names the checkpoint it is against');
  t.ok(verifyInclusion(b(inc.body.leafHash), r.body.seq, after.size, inc.body.proof.map(b), b(after.root)).ok);
  const ev = await ta.request(`/v1/audit/entries?from=${r.body.seq}&to=${r.body.seq + 1}`, as(auditor));
  t.same(leafHash(new TextEncoder().encode(ev.body.entries[0].data)), b(inc.body.leafHash));
  const con = await ta.request(`/v1/audit/proofs/consistency?from=${before.size}&to=${after.size}`, as(staff));
  t.ok(verifyConsistency(before.size, after.size, b(before.root), b(after.root), con.body.proof.map(b)).ok);
  const events = await ta.request('/v1/audit/events?type=room', as(auditor));
  t.same(events.body.events.map((e: { type: string }) => e.type), ['room.entry', 'room.exit']);
  t.equal(events.body.events[0].data.person, 'Ivan Petrov');
  const mine = await ta.request(`/v1/audit/events?user=${auditor.login}`, as(auditor));
  t.ok(mine.body.events.length > 0);
  t.ok(mine.body.events.every((e: { actor?: string; subject?: string }) => e.actor === auditor.login || e.subject === auditor.login || e.subject === `user:${auditor.login}`));
  const since = await ta.request(`/v1/audit/events?since=${encodeURIComponent(new Date(Date.now() + 3600_000).toISOString())}`, as(auditor));
  t.same(since.body.events, []);
});

t.test('when someone other than an officer records room access then it is forbidden', async (t) => {
  const r = await ta.request('/v1/audit/room-access', { ...as(auditor), body: { pass: 'P-1', person: 'X', direction: 'entry' } });
  t.equal(r.status, 403);
});

t.test('when a room access time is in the future then AUDIT_ROOM_ACCESS_INVALID', async (t) => {
  const at = new Date(Date.now() + 3600_000).toISOString();
  const r = await ta.request('/v1/audit/room-access', { ...as(officer), body: { pass: 'P-1', person: 'X', direction: 'entry', at } });
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'AUDIT_ROOM_ACCESS_INVALID');
  const bad = await ta.request('/v1/audit/room-access', { ...as(officer), body: { pass: 'P-1', person: 'X', direction: 'sideways' } });
  t.equal(bad.body.error.code, 'BAD_REQUEST');
});

t.test('when a proof asks beyond the log then AUDIT_RANGE, and bad numbers are BAD_REQUEST', async (t) => {
  const size = await ta.appliance.auditLog.size();
  const r = await ta.request(`/v1/audit/proofs/inclusion?index=${size + 5}&size=${size}`, as(staff));
  t.equal(r.status, 400);
  t.equal(r.body.error.code, 'AUDIT_RANGE');
  const c = await ta.request(`/v1/audit/proofs/consistency?from=1&to=${size + 10}`, as(staff));
  t.equal(c.body.error.code, 'AUDIT_RANGE');
  const e = await ta.request('/v1/audit/entries?from=-1', as(auditor));
  t.equal(e.body.error.code, 'BAD_REQUEST');
  const ty = await ta.request('/v1/audit/events?type=DROP%20TABLE', as(auditor));
  t.equal(ty.body.error.code, 'BAD_REQUEST');
});

t.test('when the log grows then the timer signs a checkpoint and the server-side verifier accepts the trail', async (t) => {
  trail!.start();
  const n = (await trail!.checkpointer.latest())!.id;
  await ta.request('/v1/audit/room-access', { ...as(officer), body: { pass: 'P-7', person: 'Anna', direction: 'entry' } });
  const deadline = Date.now() + 8000;
  while ((await trail!.checkpointer.latest())!.id === n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  const latest = (await trail!.checkpointer.latest())!;
  t.ok(latest.id > n, 'a new checkpoint was signed by the timer');
  t.equal(latest.size, await ta.appliance.auditLog.size());
  const list = await ta.request('/v1/audit/checkpoints', as(auditor));
  t.ok(list.body.checkpoints.length >= 3);
  const v = await trail!.verify();
  t.ok(v.ok, JSON.stringify(v));
});
