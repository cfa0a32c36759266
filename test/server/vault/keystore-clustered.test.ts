/**
 * keys.db's message keys clustered by conversation (migration keystore-2): keyed
 * (conv_id, ord, msg_id) WITHOUT ROWID, so a conversation's keys share pages however conversations
 * interleave, and an older keys.db keeps every key through the migration.
 */
import t from 'tap';
import { join } from 'node:path';
import { Db, Keystore, MasterKey, open, seal } from '../../../server/vault/index.js';
import { KEYSTORE_MIGRATIONS } from '../../../server/vault/keystore.js';
import { tmpDir } from '../../helpers/tmp.js';

const enc = new TextEncoder();

t.test('when keys of two conversations arrive interleaved then each conversation\'s keys are together, in order', async (t) => {
  const ks = await Keystore.open(join(tmpDir(t), 'keys.db'), await MasterKey.fromBytes(new Uint8Array(32).fill(1)));
  t.teardown(() => ks.close());
  await ks.createConversationKey('cA');
  await ks.createConversationKey('cB');
  const made = await ks.createMessageKeys('cA', ['a0']);
  const wrapped = (await ks.db.get<{ wrapped: Uint8Array }>("SELECT wrapped FROM message_keys WHERE msg_id = 'a0'"))!.wrapped;
  await ks.db.run("DELETE FROM message_keys WHERE msg_id = 'a0'");
  // Stored as the writer stores them: interleaved, each with its message's seq.
  const rows = Array.from({ length: 20 }, (_, i) => ({ convId: i % 2 ? 'cB' : 'cA', msgId: `${i % 2 ? 'b' : 'a'}${i}`, wrapped, order: 100 + i }));
  rows[0] = { ...rows[0]!, msgId: 'a0' };
  t.same([...(await ks.storeWrappedKeys(rows))].sort(), ['cA', 'cB']);
  const stored = await ks.db.all<{ conv_id: string; ord: number }>('SELECT conv_id, ord FROM message_keys');
  t.same(
    stored.map((r) => `${r.conv_id}:${r.ord}`),
    [...rows].sort((x, y) => x.convId.localeCompare(y.convId) || x.order - y.order).map((r) => `${r.convId}:${r.order}`),
    'table order is conversation, then seq',
  );
  const sealed = await seal(made.get('a0')!, enc.encode('hi'), 'x');
  t.same(await open(await ks.messageKey('a0'), sealed, 'x'), enc.encode('hi'), 'a key stored with an order still opens');
  const plan = await ks.db.all<{ detail: string }>("EXPLAIN QUERY PLAN SELECT wrapped FROM message_keys WHERE msg_id = 'a0'");
  t.match(plan.map((p) => p.detail).join(' '), /USING INDEX sqlite_autoindex_message_keys/, 'a key by id goes through its unique index');
  const byConv = await ks.db.all<{ detail: string }>("EXPLAIN QUERY PLAN DELETE FROM message_keys WHERE conv_id = 'cA'");
  t.match(byConv.map((p) => p.detail).join(' '), /USING PRIMARY KEY \(conv_id=\?\)/, 'a conversation\'s keys are one range of the table');
});

t.test('when a keys.db of the rowid layout is opened then every key carries over and still opens', async (t) => {
  const dir = tmpDir(t);
  const mk = await MasterKey.fromBytes(new Uint8Array(32).fill(2));
  // Real wrapped keys, made by a current keystore.
  const src = await Keystore.open(join(dir, 'src.db'), mk);
  await src.createConversationKey('c1');
  const keys = await src.createMessageKeys('c1', ['m1', 'm2', 'file:f1']);
  const ck = await src.db.all<{ conv_id: string; wrapped: Uint8Array; created_at: string }>('SELECT * FROM conversation_keys');
  const dek = await src.db.all<{ msg_id: string; conv_id: string; wrapped: Uint8Array }>('SELECT msg_id, conv_id, wrapped FROM message_keys');
  await src.close();

  const path = join(dir, 'keys.db');
  const old = await Db.open(path);
  await old.migrate(KEYSTORE_MIGRATIONS.slice(0, 1));
  t.same((await old.all<{ name: string }>("SELECT name FROM pragma_table_info('message_keys')")).map((c) => c.name), ['msg_id', 'conv_id', 'wrapped'], 'the old layout');
  for (const r of ck) await old.run('INSERT INTO conversation_keys (conv_id, wrapped, created_at) VALUES (?, ?, ?)', [r.conv_id, r.wrapped, r.created_at]);
  for (const r of dek) await old.run('INSERT INTO message_keys (msg_id, conv_id, wrapped) VALUES (?, ?, ?)', [r.msg_id, r.conv_id, r.wrapped]);
  await old.close();

  const ks = await Keystore.open(path, mk);
  t.teardown(() => ks.close());
  t.same((await ks.db.all<{ name: string }>("SELECT name FROM pragma_table_info('message_keys')")).map((c) => c.name), ['conv_id', 'ord', 'msg_id', 'wrapped'], 'the clustered layout');
  t.same(await ks.counts(), { conversations: 1, messages: 3 });
  for (const id of ['m1', 'm2', 'file:f1']) {
    const sealed = await seal(keys.get(id)!, enc.encode(id), id);
    t.same(await open(await ks.messageKey(id), sealed, id), enc.encode(id), `${id} opens after the migration`);
  }
  await t.rejects(ks.storeWrappedKeys([{ convId: 'c1', msgId: 'm1', wrapped: dek[0]!.wrapped, order: 9 }]), { code: 'VAULT_KEY_EXISTS' }, 'an id is still unique');
});

t.test('when keys are located and placed then only keys of order 0 move, and every key still opens', async (t) => {
  const ks = await Keystore.open(join(tmpDir(t), 'keys.db'), await MasterKey.fromBytes(new Uint8Array(32).fill(3)));
  t.teardown(() => ks.close());
  await ks.createConversationKey('cA');
  const made = await ks.createMessageKeys('cA', ['m1', 'm2', 'm3', 'file:f1']); // created keys have order 0
  await ks.db.run("UPDATE message_keys SET ord = 9 WHERE msg_id = 'm3'");
  t.same(
    [...(await ks.locate(['m1', 'm3', 'nope', 'm1']))].sort(),
    [['m1', { msgId: 'm1', convId: 'cA', ord: 0 }], ['m3', { msgId: 'm3', convId: 'cA', ord: 9 }]],
    'ids without a key are absent; a repeated id is answered once',
  );
  t.equal(
    await ks.placeKeys([
      { msgId: 'm1', convId: 'cA', ord: 4 },
      { msgId: 'm2', convId: 'cA', ord: 5 },
      { msgId: 'm3', convId: 'cA', ord: 6 },
      { msgId: 'gone', convId: 'cA', ord: 7 },
    ]),
    2,
    'm1 and m2 placed; m3 had an order; gone has no key',
  );
  t.same(
    (await ks.keyPlaces()).map((p) => `${p.msgId}:${p.ord}`),
    ['file:f1:0', 'm1:4', 'm2:5', 'm3:9'],
    'places in (conversation, order) order',
  );
  for (const id of ['m1', 'm2', 'm3', 'file:f1']) {
    const sealed = await seal(made.get(id)!, enc.encode(id), id);
    t.same(await open(await ks.messageKey(id), sealed, id), enc.encode(id), `${id} opens after placing`);
  }
});
