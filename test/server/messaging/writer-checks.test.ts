/**
 * The writer's insert checks in the same statement that a message's conversation still exists and
 * that its id is not guarded (writer.ts), and asks why only about the rows that did not go in. A
 * conversation that disappears between a message's check and its write refuses that message alone,
 * with CONVERSATION_NOT_FOUND, and leaves no row and no key of it; the rest of the batch commits.
 */
import t from 'tap';
import { harness } from './harness.js';

t.test('when a conversation goes between the check and the write then only its message is refused, without row or key', async (t) => {
  const h = await harness(t);
  const a = await h.user('wc-alice');
  const b = await h.user('wc-bob');
  const c = await h.user('wc-carol');
  const gone = await h.messaging.direct(a.principal, b.login);
  const stays = await h.messaging.direct(a.principal, c.login);
  const count = async (conv: string) =>
    (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_messages WHERE conversation = ?', [conv]))!.n;
  const keysBefore = await h.vault.keys.counts();

  // The writer stores a batch's keys first and opens its vault transaction beside that: removing
  // the conversation's rows before the keys are stored puts the removal between check and write.
  const keys = h.vault.keys as unknown as { storeWrappedKeys: (...args: unknown[]) => Promise<unknown> };
  const real = keys.storeWrappedKeys.bind(keys);
  keys.storeWrappedKeys = async (...args: unknown[]) => {
    keys.storeWrappedKeys = real;
    await h.vault.db.run('DELETE FROM msg_conversations WHERE id = ?', [gone.id]); // members go with it (cascade)
    return real(...args);
  };
  const [toGone, toStays] = await Promise.all([h.compose(a, gone.id, 'lost'), h.compose(a, stays.id, 'kept')]);
  const [r1, r2] = await Promise.allSettled([h.messaging.send(a.principal, toGone), h.messaging.send(a.principal, toStays)]);
  t.match(r1, { status: 'rejected', reason: { code: 'CONVERSATION_NOT_FOUND' } }, 'the message to the vanished conversation');
  t.match(r2, { status: 'fulfilled' }, 'its batch neighbour');
  t.equal(await count(gone.id), 0, 'no row of the refused message');
  t.equal(await count(stays.id), 1);
  t.equal((await h.vault.keys.counts()).messages, keysBefore.messages + 1, 'one message key: the refused one was destroyed');
});

t.test('when a stored message is sent again in a batch with a new one then the copy is MESSAGE_REPLAY and the new one commits', async (t) => {
  const h = await harness(t);
  const a = await h.user('wr-alice');
  const b = await h.user('wr-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const first = await h.compose(a, conv.id, 'once');
  await h.messaging.send(a.principal, first);
  const [again, fresh] = await Promise.allSettled([
    h.messaging.send(a.principal, first),
    h.messaging.send(a.principal, await h.compose(a, conv.id, 'new')),
  ]);
  t.match(again, { status: 'rejected', reason: { code: 'MESSAGE_REPLAY' } });
  t.match(fresh, { status: 'fulfilled' });
  t.equal((await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_messages WHERE conversation = ?', [conv.id]))!.n, 2);
});
