/**
 * A deletion's tombstone entry holds what an auditor needs to check the deleter's signature from
 * the trail alone: with the target they know (a message id from an export, a group id), the
 * entry's `statementAt`, `reason` and `statementSignature` rebuild the signed `sigil-delete`
 * statement byte for byte (server/audit/README.md, "Checking a deletion's signature"), and it
 * verifies with the deleter's certificate. The statement's time is not the tombstone's, and the
 * target itself never appears in the entry.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyDetached } from '../../../pki/index.js';
import { canonicalDeleteStatement } from '../../../server/messaging/index.js';
import type { AuditEntry } from '../../../server/audit/index.js';
import { harness } from '../messaging/harness.js';
import { tmpDir } from '../../helpers/tmp.js';

const enc = new TextEncoder();

/** The auditor's rebuild: only the entry and the target they already know. */
function rebuildStatement(entry: AuditEntry, target: string): string {
  const data = entry.data as { statementAt?: unknown; reason?: unknown };
  if (typeof data.statementAt !== 'string') throw new Error(`tombstone ${entry.seq} has no statementAt`);
  return canonicalDeleteStatement({ at: data.statementAt, purpose: 'sigil-delete', reason: String(data.reason), target });
}

const lastTombstone = async (h: Awaited<ReturnType<typeof harness>>) =>
  (await h.audit.entries(0, await h.audit.size())).filter((e) => e.type === 'deletion').at(-1)!;

t.test('when a message is deleted then its tombstone rebuilds the signed statement, which verifies with the deleter certificate', async (t) => {
  const h = await harness(t);
  const { a, conv } = await h.direct('ts-alice', 'ts-bob');
  const msg = await h.compose(a, conv.id, 'the content stays out of the trail');
  await h.messaging.send(a.principal, msg);
  await h.messaging.flush();
  const signedAt = new Date(Date.parse('2026-05-04T10:11:12.345Z'));
  h.clock.now = signedAt;
  const req = await h.deleteRequest(a, `message:${msg.id}`, 'sent to the wrong person');
  h.clock.now = new Date(signedAt.getTime() + 1_234); // the request reaches the appliance a moment later
  await h.messaging.deleteMessage(a.principal, msg.id, req);

  const tomb = await lastTombstone(h);
  t.equal(tomb.actor, a.login);
  t.equal(tomb.data?.statementAt, signedAt.toISOString(), "the statement's own time is stored");
  t.not(tomb.at, tomb.data?.statementAt, "and it is not the tombstone's time");
  t.notMatch(tomb.leafData, new RegExp(msg.id), 'the target stays a keyed hash: no message id in clear');

  const statement = rebuildStatement(tomb, `message:${msg.id}`);
  t.equal(statement, req.statement, 'rebuilt byte for byte');
  const sig = new Uint8Array(Buffer.from(String(tomb.data?.statementSignature), 'base64'));
  const v = await verifyDetached(sig, enc.encode(statement), { expectedSigner: a.cert });
  t.ok(v.ok, `the signature verifies with ${a.login}'s certificate${v.ok ? '' : `: ${v.reason}: ${v.detail}`}`);
  // The README's OpenSSL check, on files an auditor would have.
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'statement.json'), statement);
  writeFileSync(join(dir, 'sig.der'), sig);
  writeFileSync(join(dir, 'deleter.pem'), a.cert.pem);
  writeFileSync(join(dir, 'chain.pem'), h.ca.chain.map((c) => c.pem).join(''));
  const ossl = spawnSync(
    'openssl',
    ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'sig.der', '-content', 'statement.json', '-certfile', 'deleter.pem', '-CAfile', 'chain.pem', '-purpose', 'any', '-out', '/dev/null'],
    { cwd: dir, encoding: 'utf8' },
  );
  t.equal(ossl.status, 0, ossl.stderr);
  t.match(ossl.stderr, /Verification successful/);
  // Built with the tombstone's time instead (all the trail offered before), it does not.
  const withTombTime = canonicalDeleteStatement({ at: tomb.at, purpose: 'sigil-delete', reason: 'sent to the wrong person', target: `message:${msg.id}` });
  t.notOk((await verifyDetached(sig, enc.encode(withTombTime), { expectedSigner: a.cert })).ok);
  // Another target does not verify: the signature pins what was deleted.
  const other = rebuildStatement(tomb, 'message:AAAAAAAAAAAAAAAAAAAAAA');
  t.notOk((await verifyDetached(sig, enc.encode(other), { expectedSigner: a.cert })).ok);
});

t.test('when a group is destroyed then its tombstone rebuilds the signed statement too', async (t) => {
  const h = await harness(t);
  const owner = await h.user('ts-owner');
  const g = await h.messaging.createGroup(owner.principal, { name: 'ts-group', label: 'restricted' });
  await h.messaging.send(owner.principal, await h.compose(owner, g.id, 'one'));
  await h.messaging.flush();
  const req = await h.deleteRequest(owner, `conversation:${g.id}`, 'project closed');
  h.clock.now = new Date(h.clock.now.getTime() + 900);
  await h.messaging.deleteGroup(owner.principal, g.name, req);
  const tomb = await lastTombstone(h);
  const statement = rebuildStatement(tomb, `conversation:${g.id}`);
  t.equal(statement, req.statement);
  const sig = new Uint8Array(Buffer.from(String(tomb.data?.statementSignature), 'base64'));
  t.ok((await verifyDetached(sig, enc.encode(statement), { expectedSigner: owner.cert })).ok);
});
