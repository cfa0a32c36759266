import t, { type Test } from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Keystore, MasterKey, open, seal } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const mkOf = (b: number) => MasterKey.fromBytes(new Uint8Array(32).fill(b));
const enc = new TextEncoder();

async function setup(t: Test) {
  const dir = tmpDir(t);
  const path = join(dir, 'keys.db');
  const mk = await mkOf(1);
  const ks = await Keystore.open(path, mk);
  t.teardown(() => ks.close());
  return { dir, path, mk, ks };
}

t.test('when message keys are created then a fresh keystore unwraps the same keys through the CK', async (t) => {
  const { path, mk, ks } = await setup(t);
  await ks.createConversationKey('c1');
  const started = performance.now();
  const ids = Array.from({ length: 1000 }, (_, i) => `m${i}`);
  const keys = await ks.createMessageKeys('c1', ids);
  t.comment(`1,000 message keys in ${(performance.now() - started).toFixed(0)} ms`);
  t.equal(keys.size, 1000);
  const sealed = await seal(keys.get('m999')!, enc.encode('hello'), 'body:m999');
  const cold = await Keystore.open(path, mk);
  t.teardown(() => cold.close());
  t.same(await open(await cold.messageKey('m999'), sealed, 'body:m999'), enc.encode('hello'));
  t.same(await cold.counts(), { conversations: 1, messages: 1000 });
  t.equal(await cold.hasConversationKey('c1'), true);
  t.equal(await cold.hasConversationKey('c2'), false);
});

t.test('when a conversation key is created twice then VAULT_KEY_EXISTS', async (t) => {
  const { ks } = await setup(t);
  await ks.createConversationKey('c1');
  await t.rejects(ks.createConversationKey('c1'), { code: 'VAULT_KEY_EXISTS' });
});

t.test('when message keys are asked for an unknown conversation then VAULT_KEY_NOT_FOUND', async (t) => {
  const { ks } = await setup(t);
  await t.rejects(ks.createMessageKeys('nope', ['m1']), { code: 'VAULT_KEY_NOT_FOUND' });
  await t.rejects(ks.messageKey('m1'), { code: 'VAULT_KEY_NOT_FOUND' });
});

t.test('when a batch repeats an existing message id then VAULT_KEY_EXISTS and none of the batch is stored', async (t) => {
  const { ks } = await setup(t);
  await ks.createConversationKey('c1');
  await ks.createMessageKeys('c1', ['m1']);
  await t.rejects(ks.createMessageKeys('c1', ['m2', 'm1', 'm3']), { code: 'VAULT_KEY_EXISTS' });
  await t.rejects(ks.createMessageKeys('c1', ['m4', 'm4']), { code: 'VAULT_KEY_EXISTS' });
  t.same(await ks.counts(), { conversations: 1, messages: 1 });
});

t.test('when a wrapped DEK is moved to another message id then it does not unwrap (AAD dek:<msgId>)', async (t) => {
  const { ks } = await setup(t);
  await ks.createConversationKey('c1');
  await ks.createMessageKeys('c1', ['m1']);
  await ks.db.run("INSERT INTO message_keys (msg_id, conv_id, wrapped) SELECT 'm2', conv_id, wrapped FROM message_keys WHERE msg_id = 'm1'");
  await t.rejects(ks.messageKey('m2'), { code: 'VAULT_DECRYPT_FAILED' });
});

t.test('when message keys are destroyed then they are gone even from the cache, neighbours stay, the WAL is empty', async (t) => {
  const { path, ks } = await setup(t);
  await ks.createConversationKey('c1');
  const keys = await ks.createMessageKeys('c1', ['m1', 'm2', 'm3']);
  const sealed = await seal(keys.get('m2')!, enc.encode('x'), 'a');
  await ks.messageKey('m1'); // cached
  t.equal(await ks.destroyMessageKeys(['m1', 'm3', 'never']), 2);
  await t.rejects(ks.messageKey('m1'), { code: 'VAULT_KEY_NOT_FOUND' });
  await t.rejects(ks.messageKey('m3'), { code: 'VAULT_KEY_NOT_FOUND' });
  t.same(await open(await ks.messageKey('m2'), sealed, 'a'), enc.encode('x'));
  t.equal(statSync(`${path}-wal`).size, 0);
});

t.test('when a conversation is destroyed then its CK and every DEK under it are gone', async (t) => {
  const { ks } = await setup(t);
  await ks.createConversationKey('c1');
  await ks.createConversationKey('c2');
  await ks.createMessageKeys('c1', ['a1', 'a2']);
  await ks.createMessageKeys('c2', ['b1']);
  await ks.messageKey('a1');
  t.same(await ks.destroyConversation('c1'), { messageKeys: 2, conversationKey: true });
  await t.rejects(ks.messageKey('a1'), { code: 'VAULT_KEY_NOT_FOUND' });
  await t.rejects(ks.createMessageKeys('c1', ['a3']), { code: 'VAULT_KEY_NOT_FOUND' });
  t.same(await ks.counts(), { conversations: 1, messages: 1 });
  t.same(await ks.destroyConversation('c1'), { messageKeys: 0, conversationKey: false }, 'idempotent');
});

t.test('when orphans are swept then only keys without rows are destroyed', async (t) => {
  const { ks } = await setup(t);
  await ks.createConversationKey('c1');
  await ks.createMessageKeys('c1', ['m1', 'm2', 'm3']);
  t.same(await ks.sweepOrphans(['m2']), ['m1', 'm3']);
  t.same(await ks.counts(), { conversations: 1, messages: 1 });
});

t.test('when rewrapAll runs then only the new master key opens the CKs, and DEKs are unchanged', async (t) => {
  const { path, ks } = await setup(t);
  await ks.createConversationKey('c1');
  const keys = await ks.createMessageKeys('c1', ['m1']);
  const sealed = await seal(keys.get('m1')!, enc.encode('kept'), 'a');
  const next = await mkOf(2);
  t.equal(await ks.rewrapAll(next), 1);
  const viaNew = await Keystore.open(path, next);
  t.teardown(() => viaNew.close());
  t.same(await open(await viaNew.messageKey('m1'), sealed, 'a'), enc.encode('kept'));
  const viaOld = await Keystore.open(path, await mkOf(1));
  t.teardown(() => viaOld.close());
  await t.rejects(viaOld.messageKey('m1'), { code: 'VAULT_DECRYPT_FAILED' });
});
