/**
 * Regression (issue 8, disk full): when keys.db cannot take a message key because the disk is full,
 * the sender is told VAULT_FULL, not 404 CONVERSATION_NOT_FOUND, and nothing of the message stays.
 */
import t from 'tap';
import { harness } from './harness.js';

t.test('when the key store is full then the message is refused with VAULT_FULL and nothing is stored', async (t) => {
  const h = await harness(t);
  const a = await h.user('df-alice');
  const b = await h.user('df-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  // The writer stores a batch's wrapped keys with storeWrappedKeys (one keys.db statement).
  const keys = h.vault.keys as unknown as { storeWrappedKeys: (...args: unknown[]) => Promise<unknown> };
  const real = keys.storeWrappedKeys.bind(keys);
  keys.storeWrappedKeys = async () => {
    throw Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'VAULT_FULL' });
  };
  const msg = await h.compose(a, conv.id, 'no room');
  await t.rejects(h.messaging.send(a.principal, msg), { code: 'VAULT_FULL' });
  keys.storeWrappedKeys = real;
  t.equal((await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_messages'))!.n, 0, 'no row was written');
  const again = await h.messaging.send(a.principal, msg);
  t.equal(again.id, msg.id, 'once space returns the same message is accepted (not a replay)');
});
