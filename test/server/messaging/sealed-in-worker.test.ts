/**
 * The writer's path for messages a check worker has sealed (check-pool.ts, as in the appliance):
 * only the wrapped keys are stored (Keystore.storeWrappedKeys), and replays, replays inside one
 * batch and a conversation whose key went meanwhile are refused as on the in-thread path.
 */
import t from 'tap';
import { checkPool } from '../../../server/messaging/check-pool.js';
import { harness } from './harness.js';

t.test('messages sealed in a check worker', async (t) => {
  const h = await harness(t, { workers: true });
  const m = h.messaging;
  const a = await h.user('sw-alice');
  const b = await h.user('sw-bob');
  const conv = await m.direct(a.principal, b.login);
  const keyCount = async () => (await h.vault.keys.counts()).messages;

  await t.test('when a message is sent then its key is stored and the reader gets it back', async (t) => {
    const before = await keyCount();
    const msg = await h.compose(a, conv.id, 'sealed off the main thread');
    const r = await m.send(a.principal, msg);
    t.ok(checkPool().workers > 0, 'a check worker ran');
    t.equal(await keyCount(), before + 1);
    const got = await m.message(b.principal, r.id);
    t.equal(Buffer.from(got.body!, 'base64').toString(), 'sealed off the main thread');
  });

  await t.test('when a stored message comes again, alone or in a batch with new ones, then only it is a MESSAGE_REPLAY', async (t) => {
    const old = await h.compose(a, conv.id, 'first');
    await m.send(a.principal, old);
    await t.rejects(m.send(a.principal, old), { code: 'MESSAGE_REPLAY' });
    const fresh = await Promise.all([h.compose(a, conv.id, 'n1'), h.compose(a, conv.id, 'n2')]);
    const before = await keyCount();
    const rs = await Promise.allSettled([m.send(a.principal, old), ...fresh.map((f) => m.send(a.principal, f))]);
    t.match(rs[0], { status: 'rejected', reason: { code: 'MESSAGE_REPLAY' } });
    t.same(rs.slice(1).map((r) => r.status), ['fulfilled', 'fulfilled'], 'the new ones of the batch are stored');
    t.equal(await keyCount(), before + 2, 'no key for the replay, one for each new message');
  });

  await t.test('when the conversation key goes after it was cached then CONVERSATION_NOT_FOUND and no key is stored', async (t) => {
    const c2 = await m.createGroup(a.principal, { name: 'sw-group', label: 'restricted' });
    await m.send(a.principal, await h.compose(a, c2.id, 'warm the CK cache'));
    // Gone from keys.db behind the cache, as a destroy racing this send would leave it.
    await h.vault.keys.db.run('DELETE FROM message_keys WHERE conv_id = ?', [c2.id]);
    await h.vault.keys.db.run('DELETE FROM conversation_keys WHERE conv_id = ?', [c2.id]);
    const before = await keyCount();
    await t.rejects(m.send(a.principal, await h.compose(a, c2.id, 'too late')), { code: 'CONVERSATION_NOT_FOUND' });
    t.equal(await keyCount(), before);
  });
});
