import t from 'tap';
import { createMessaging, keyedHashFromKeyring } from '../../../server/messaging/index.js';
import { harness } from './harness.js';

t.test('when the service starts then keys without rows are destroyed and keys with rows kept', async (t) => {
  const h = await harness(t);
  const a = await h.user('s-alice');
  const b = await h.user('s-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const kept = await h.compose(a, conv.id, 'kept');
  await h.messaging.send(a.principal, kept);
  // As if the appliance crashed after a deletion removed the rows but before it removed the keys.
  await h.vault.keys.createMessageKeys(conv.id, ['AAAAAAAAAAAAAAAAAAAAAA']);
  await h.messaging.close();
  const again = createMessaging({
    db: h.vault.db,
    keys: h.vault.keys,
    directory: { person: async (l) => h.people.get(l) },
    keyedHash: await keyedHashFromKeyring(h.vault.keyring),
    config: { sweepIntervalMs: 0 },
    log: () => undefined,
  });
  await again.start();
  t.teardown(() => again.close());
  await t.rejects(h.vault.keys.messageKey('AAAAAAAAAAAAAAAAAAAAAA'), { code: 'VAULT_KEY_NOT_FOUND' });
  const got = await again.message(b.principal, kept.id);
  t.equal(Buffer.from(got.body!, 'base64').toString(), 'kept');
});

t.test('when the service is closed then sending is refused with UNAVAILABLE', async (t) => {
  const h = await harness(t);
  const a = await h.user('s2-alice');
  const b = await h.user('s2-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  const msg = await h.compose(a, conv.id, 'late');
  await h.messaging.close();
  await t.rejects(h.messaging.send(a.principal, msg), { code: 'UNAVAILABLE' });
});
