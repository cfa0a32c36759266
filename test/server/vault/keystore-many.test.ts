/**
 * Keystore.createMessageKeysMany (the batching writer's path): keys of several conversations in
 * one keys.db transaction; a conversation without a key is reported alone; a replayed id stores
 * nothing of the batch.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Keystore, MasterKey, open, seal, type CryptoKey } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const enc = new TextEncoder();

async function setup(t: Test) {
  const path = join(tmpDir(t), 'keys.db');
  const mk = await MasterKey.fromBytes(new Uint8Array(32).fill(3));
  const ks = await Keystore.open(path, mk);
  t.teardown(() => ks.close());
  return { path, mk, ks };
}

t.test('when keys of three conversations are made in one call then each opens through its own CK after a restart', async (t) => {
  const { path, mk, ks } = await setup(t);
  for (const c of ['c1', 'c2', 'c3']) await ks.createConversationKey(c);
  const made = await ks.createMessageKeysMany([
    { convId: 'c1', msgIds: ['a1', 'a2'] },
    { convId: 'c2', msgIds: ['b1'] },
    { convId: 'c3', msgIds: Array.from({ length: 600 }, (_, i) => `z${i}`) },
  ]);
  const c3 = made.get('c3');
  t.ok(c3 instanceof Map && c3.size === 600, '600 keys (more than one INSERT chunk)');
  const sealed = await seal((made.get('c2') as Map<string, CryptoKey>).get('b1')!, enc.encode('hi'), 'body:b1');
  const cold = await Keystore.open(path, mk);
  t.teardown(() => cold.close());
  t.same(await open(await cold.messageKey('b1'), sealed, 'body:b1'), enc.encode('hi'));
  t.same(await cold.counts(), { conversations: 3, messages: 603 });
});

t.test('when one conversation has no key then only its messages fail and the others are stored', async (t) => {
  const { ks } = await setup(t);
  await ks.createConversationKey('c1');
  const made = await ks.createMessageKeysMany([
    { convId: 'c1', msgIds: ['a1'] },
    { convId: 'gone', msgIds: ['g1'] },
  ]);
  t.ok(made.get('c1') instanceof Map);
  t.match(made.get('gone'), { code: 'VAULT_KEY_NOT_FOUND' });
  t.same(await ks.counts(), { conversations: 1, messages: 1 });
});

t.test('when an id of the batch already has a key then VAULT_KEY_EXISTS and nothing of the batch is stored', async (t) => {
  const { ks } = await setup(t);
  await ks.createConversationKey('c1');
  await ks.createConversationKey('c2');
  await ks.createMessageKeys('c1', ['dup']);
  await t.rejects(ks.createMessageKeysMany([{ convId: 'c2', msgIds: ['new1'] }, { convId: 'c1', msgIds: ['dup', 'new2'] }]), { code: 'VAULT_KEY_EXISTS' });
  t.same(await ks.counts(), { conversations: 2, messages: 1 }, 'only the earlier key');
  await t.rejects(ks.createMessageKeysMany([{ convId: 'c1', msgIds: ['x'] }, { convId: 'c2', msgIds: ['x'] }]), { code: 'VAULT_KEY_EXISTS' }, 'one id twice in a batch');
});

t.test('when a conversation key goes after its CK was cached then the insert skips its messages and stores the rest', async (t) => {
  // The insert itself checks that each conversation still has a key (one statement, no SELECT
  // before it), so a CK destroyed between the cached lookup and the insert stores no orphan.
  const { ks } = await setup(t);
  for (const c of ['c1', 'c2']) await ks.createConversationKey(c);
  await ks.createMessageKeysMany([{ convId: 'c1', msgIds: ['warm'] }]); // c1's CK is now cached
  await ks.db.run('DELETE FROM message_keys WHERE conv_id = ?', ['c1']);
  await ks.db.run('DELETE FROM conversation_keys WHERE conv_id = ?', ['c1']);
  const made = await ks.createMessageKeysMany([
    { convId: 'c1', msgIds: ['a1', 'a2'] },
    { convId: 'c2', msgIds: ['b1'] },
  ]);
  t.match(made.get('c1'), { code: 'VAULT_KEY_NOT_FOUND' });
  t.ok(made.get('c2') instanceof Map && (made.get('c2') as Map<string, CryptoKey>).has('b1'));
  t.same(await ks.counts(), { conversations: 1, messages: 1 }, 'only b1 is stored');
});
