/**
 * The restore sweep at scale (server/ops/restore-sweep.ts): rows whose keys are gone leave in
 * IN-list statements, more than one list's worth at a time. A message swept from a conversation
 * that stays gets a replay-guard row; the messages of a conversation that is gone get none (the
 * conversation never comes back, so a resubmission is CONVERSATION_NOT_FOUND).
 */
import t from 'tap';
import { sweepRows } from '../../../server/ops/restore-sweep.js';
import { harness } from '../messaging/harness.js';

t.test('when 900 rows lost their keys then they are swept, guarded only where their conversation stays', async (t) => {
  const h = await harness(t);
  const a = await h.user('rs-alice');
  const b = await h.user('rs-bob');
  const direct = await h.messaging.direct(a.principal, b.login);
  const group = await h.messaging.createGroup(a.principal, { name: 'rs-group', label: 'restricted' });
  const kept = await h.compose(a, direct.id, 'kept');
  await h.messaging.send(a.principal, kept);
  const send = async (conv: string, n: number): Promise<string[]> => {
    const msgs = await Promise.all(Array.from({ length: n }, (_, i) => h.compose(a, conv, `m${i}`)));
    await Promise.all(msgs.map((m) => h.messaging.send(a.principal, m)));
    return msgs.map((m) => m.id);
  };
  const lostInDirect = await send(direct.id, 450);
  const lostWithGroup = await send(group.id, 450);
  const count = async (sql: string, p: unknown[] = []) => (await h.vault.db.get<{ n: number }>(sql, p))!.n;
  const guardsBefore = await count('SELECT COUNT(*) AS n FROM msg_replay_guard');

  // What a restore sees: the group's key and the 450 direct message keys are gone from keys.db.
  const lost = new Set(lostInDirect);
  const all = (await h.vault.db.all<{ id: string }>('SELECT id FROM msg_messages')).map((r) => r.id);
  const live = { messageKeyIds: new Set(all.filter((id) => !lost.has(id) && !lostWithGroup.includes(id))), convIds: new Set([direct.id]) };
  const swept = await sweepRows(h.vault.db, h.vault.masterKey, live, () => new Date());

  t.same(swept, { messages: 900, files: 0, conversations: 1 });
  t.same((await h.vault.db.all<{ id: string }>('SELECT id FROM msg_messages')).map((r) => r.id), [kept.id], 'only the message with its key stays');
  t.equal(await count('SELECT COUNT(*) AS n FROM msg_conversations WHERE id = ?', [group.id]), 0, 'the group is gone');
  t.equal(await count('SELECT COUNT(*) AS n FROM msg_members WHERE conversation = ?', [group.id]), 0, 'with its members');
  t.equal(await count('SELECT COUNT(*) AS n FROM msg_replay_guard') - guardsBefore, 450, 'a guard row for each message swept from the conversation that stays, none for the group');
});
