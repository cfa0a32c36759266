/**
 * Keystore.destroyKeysAfter (issue 8, deletion volume): the key store deletes while the rows'
 * vault transaction still runs, but commits only after it — never before the rows are gone, and
 * not at all if they are not.
 */
import t, { type Test } from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Db, Keystore, MasterKey, open, seal } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

const enc = new TextEncoder();

async function setup(t: Test) {
  const path = join(tmpDir(t), 'keys.db');
  const ks = await Keystore.open(path, await MasterKey.fromBytes(new Uint8Array(32).fill(7)));
  t.teardown(() => ks.close());
  await ks.createConversationKey('c1');
  await ks.createConversationKey('c2');
  const k1 = await ks.createMessageKeys('c1', ['a1', 'a2', 'file:f1']);
  const k2 = await ks.createMessageKeys('c2', ['b1', 'b2']);
  // A second connection sees only what keys.db committed.
  const peer = await Db.open(path, { busyTimeoutMs: 0 });
  t.teardown(() => peer.close());
  const committed = async () => (await peer.all<{ msg_id: string }>('SELECT msg_id FROM message_keys ORDER BY msg_id')).map((r) => r.msg_id);
  /** True while the key store's write transaction is open (another writer is refused). */
  const isLocked = () =>
    peer.exec('BEGIN IMMEDIATE').then(
      async () => (await peer.exec('ROLLBACK'), false),
      (err: { code?: string }) => err.code === 'VAULT_LOCKED',
    );
  /** Resolves once the key store's write transaction is open, and a little longer. */
  const locked = async () => {
    for (let i = 0; i < 500; i++) {
      if (await isLocked()) return sleep(50);
      await sleep(10);
    }
    throw new Error('the key store never opened its transaction');
  };
  return { path, ks, k1, k2, committed, locked, isLocked };
}

function deferred() {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

t.test('when the rows commit then the keys go, and not one commit earlier', async (t) => {
  const { path, ks, k2, committed, locked, isLocked } = await setup(t);
  const sealed = await seal(k2.get('b1')!, enc.encode('neighbour'), 'x');
  await ks.messageKey('a1'); // cached: must not outlive the destroy
  const rows = deferred();
  const destroying = ks.destroyKeysAfter({ conversationIds: ['c1'], messageIds: ['b2', 'never'] }, rows.promise);
  await locked();
  t.same(await committed(), ['a1', 'a2', 'b1', 'b2', 'file:f1'], 'nothing committed while the rows are not gone');
  t.ok(await isLocked(), 'the key store holds its transaction open until then');
  const pendingRead = t.rejects(ks.messageKey('a2'), { code: 'VAULT_KEY_NOT_FOUND' }, 'a read issued meanwhile waits, then finds nothing');
  rows.resolve();
  t.same(await destroying, { messageKeys: 4, conversationKeys: 1 });
  await pendingRead;
  t.same(await committed(), ['b1'], 'the conversation and the named key are gone');
  for (const id of ['a1', 'a2', 'file:f1', 'b2']) await t.rejects(ks.messageKey(id), { code: 'VAULT_KEY_NOT_FOUND' }, `${id} gone, cache too`);
  t.equal(await ks.hasConversationKey('c1'), false);
  await t.rejects(ks.createMessageKeys('c1', ['a3']), { code: 'VAULT_KEY_NOT_FOUND' });
  t.same(await open(await ks.messageKey('b1'), sealed, 'x'), enc.encode('neighbour'), 'the neighbour opens');
  t.equal(statSync(`${path}-wal`).size, 0, 'WAL truncated');
});

t.test('when the rows fail then nothing is destroyed, their error is thrown and the key store is free', async (t) => {
  const { ks, committed, locked } = await setup(t);
  const rows = deferred();
  const destroying = ks.destroyKeysAfter({ conversationIds: ['c1', 'c2'] }, rows.promise);
  await locked();
  const boom = new Error('vault transaction rolled back');
  rows.reject(boom);
  await t.rejects(destroying, boom);
  t.same(await committed(), ['a1', 'a2', 'b1', 'b2', 'file:f1'], 'every key still there');
  t.ok(await ks.messageKey('a1'), 'and still unwraps');
  t.same(await ks.counts(), { conversations: 2, messages: 5 });
  await ks.createMessageKeys('c1', ['a3']);
  t.same(await ks.counts(), { conversations: 2, messages: 6 }, 'writes go through again');
});

t.test('when the rows already failed before the key store started then nothing is destroyed', async (t) => {
  const { ks, committed } = await setup(t);
  const gone = Promise.reject(new Error('never began'));
  await t.rejects(ks.destroyKeysAfter({ messageIds: ['a1'] }, gone), { message: 'never began' });
  t.same(await committed(), ['a1', 'a2', 'b1', 'b2', 'file:f1']);
});

t.test('when more ids than one IN list holds are destroyed then every one goes', async (t) => {
  const { ks } = await setup(t);
  const ids = Array.from({ length: 1234 }, (_, i) => `m${i}`);
  await ks.createMessageKeys('c2', ids);
  const convs = Array.from({ length: 600 }, (_, i) => `x${i}`);
  for (const c of convs) await ks.createConversationKey(c);
  const r = await ks.destroyKeysAfter({ messageIds: ids, conversationIds: ['c1', ...convs] }, Promise.resolve());
  t.same(r, { messageKeys: 1234 + 3, conversationKeys: 601 });
  t.same(await ks.counts(), { conversations: 1, messages: 2 });
});

t.test('when orphan conversations are swept then only CKs (and DEKs) without a conversation row go', async (t) => {
  const { path, ks, committed } = await setup(t);
  t.same(await ks.sweepOrphanConversations(new Set(['c2', 'not-a-key'])), ['c1']);
  t.equal(await ks.hasConversationKey('c1'), false);
  t.equal(await ks.hasConversationKey('c2'), true);
  t.same(await committed(), ['b1', 'b2'], "the orphan's DEKs went with it");
  t.same(await ks.sweepOrphanConversations(['c2']), [], 'nothing left to sweep');
  t.equal(statSync(`${path}-wal`).size, 0, 'WAL truncated');
});
