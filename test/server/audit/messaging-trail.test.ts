/**
 * The audit trail over real messaging: an accepted message is an entry (keyed hash, no content)
 * whose receipt index is proven included in a signed checkpoint; a deletion is a tombstone entry
 * naming who, why and a keyed hash of what; the whole trail verifies afterwards.
 */
import t from 'tap';
import { verifyCheckpoint, verifyInclusion } from '../../../server/audit/index.js';
import { auditTrailOf } from '../../../server/routes/audit.js';
import { keyedHashFromKeyring } from '../../../server/messaging/index.js';
import { headerAuditHash } from '../../../server/messaging/messages.js';
import { httpHarness } from '../messaging/http-harness.js';

t.test('messages and deletions in the audit trail', async (t) => {
  const h = await httpHarness(t);
  const trail = auditTrailOf(h.app.appliance, h.app.deps.now);
  t.teardown(() => trail.stop());
  const alice = await h.app.createStaff({ login: 'm-alice', clearance: 'secret' });
  const bob = await h.app.createStaff({ login: 'm-bob', clearance: 'secret' });
  const A = h.as(alice);
  const conv = (await A('/v1/conversations/direct', { body: { peer: bob.login } })).body as { id: string };
  const secretText = 'Operation Northwind moves at dawn';
  const msg = await h.compose(alice, conv.id, secretText, { label: 'secret' });
  const sent = await A('/v1/messages', { body: { header: msg.header, signature: msg.signature, body: msg.body } });
  t.equal(sent.status, 201, JSON.stringify(sent.body));

  await t.test('when a message is accepted then its receipt index is proven in a signed checkpoint', async (t) => {
    const index = sent.body.audit?.index as number;
    t.type(index, 'number', 'the receipt carries the audit index');
    const cp = await trail.checkpointer.current();
    t.ok((await verifyCheckpoint(cp.note, cp.signature, trail.trust)).ok);
    const [entry] = await trail.log.entries(index, index + 1);
    t.equal(entry?.type, 'message.accepted');
    t.equal(entry?.actor, alice.login);
    t.notMatch(entry!.leafData, /Northwind/);
    t.notMatch(entry!.leafData, new RegExp(msg.id), 'not even the message id in clear');
    // The entry names the signed header by a keyed hash of its digest: provable, content-free.
    const keyed = await keyedHashFromKeyring(h.app.appliance.vault.keyring);
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-384', new TextEncoder().encode(msg.header)));
    t.equal(JSON.parse(entry!.leafData).data.header, await headerAuditHash({ keyedHash: keyed }, digest), 'keyed hash of the header digest');
    const proof = await trail.log.inclusionProof(index, cp.size);
    t.ok(verifyInclusion(entry!.leafHash, index, cp.size, proof, cp.root).ok);
  });

  await t.test('when the message is deleted then a content-free tombstone is logged and the trail verifies', async (t) => {
    const del = await A(`/v1/messages/${msg.id}`, { method: 'DELETE', body: await h.deleteBody(alice, `message:${msg.id}`, 'sent to the wrong person') });
    t.equal(del.status, 200, JSON.stringify(del.body));
    const size = await trail.log.size();
    const [tomb] = (await trail.log.query({ type: 'deletion' })).slice(-1);
    t.ok(tomb && tomb.seq < size);
    t.equal(tomb!.actor, alice.login);
    t.match(tomb!.data, { reason: 'sent to the wrong person', count: 1 });
    t.notMatch(tomb!.leafData, /Northwind/);
    t.notMatch(tomb!.leafData, new RegExp(msg.id));
    t.ok(tomb!.subject && tomb!.subject.length >= 32, 'the target is a keyed hash');
    await trail.checkpointer.current();
    const v = await trail.verify();
    t.match(v, { ok: true });
    // Nothing in the whole log mentions the content.
    const all = await trail.log.entries(0, size);
    t.notOk(all.some((e) => e.leafData.includes('Northwind')));
  });
});
