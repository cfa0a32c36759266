/**
 * Deleted ids must never be accepted again, but only messages still inside the clock-skew window
 * can be replayed at all, so only those get a guard row (issue 8: destroying a 100k group was 50 s
 * of guard inserts), and only when their conversation survives: a destroyed conversation refuses
 * every resubmission by being gone.
 */
import t from 'tap';
import { harness } from './harness.js';

t.test('replay guard of deletions', async (t) => {
  const h = await harness(t);
  const m = h.messaging;
  const a = await h.user('rg-alice');
  const b = await h.user('rg-bob');
  const guards = async () => (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_replay_guard'))!.n;

  await t.test('when a conversation with fresh messages is destroyed then no guard row is written and every resubmission is refused', async (t) => {
    // The conversation is the guard: each message signs it, and its id is gone for good (issue 8:
    // a keyed hash and a guard row per message made destroying a 100k group take seconds).
    const conv = await m.direct(a.principal, b.login);
    const g = await m.createGroup(a.principal, { name: 'rg-group', label: 'restricted' });
    await m.addMember(a.principal, g.name, { login: b.login });
    const msgs = [];
    for (const c of [conv.id, conv.id, g.id, g.id]) {
      const msg = await h.compose(a, c, `fresh in ${c}`);
      await m.send(a.principal, msg);
      msgs.push(msg);
    }
    const before = await guards();
    await m.deleteConversation(a.principal, conv.id, await h.deleteRequest(a, `conversation:${conv.id}`));
    await m.deleteGroup(a.principal, g.name, await h.deleteRequest(a, `conversation:${g.id}`));
    t.equal(await guards(), before, 'no guard row for a destroyed conversation');
    for (const msg of msgs) await t.rejects(m.send(a.principal, msg), { code: 'CONVERSATION_NOT_FOUND' }, 'resubmission refused');
    t.same(await h.vault.db.all('SELECT id FROM msg_messages WHERE conversation IN (?, ?)', [conv.id, g.id]), [], 'nothing came back');
    t.same(await h.vault.keys.counts(), { conversations: 0, messages: 0 }, 'and no key was made for it');
  });

  await t.test('when a user correspondence with fresh group messages is destroyed then those ids are guarded (MESSAGE_REPLAY)', async (t) => {
    const carl = await h.user('rg-carl');
    const g = await m.createGroup(b.principal, { name: 'rg-stays', label: 'restricted' });
    await m.addMember(b.principal, g.name, { login: carl.login });
    const officer = await h.user('rg-officer', 'secret', 'officer');
    const msg = await h.compose(carl, g.id, 'fresh, in a group that stays');
    await m.send(carl.principal, msg);
    const before = await guards();
    await m.deleteUserCorrespondence(officer.principal, carl.login, await h.deleteRequest(officer, `user:${carl.login}`));
    t.equal((await guards()) - before, 1, 'one guard row: the group still exists');
    await t.rejects(m.send(carl.principal, msg), { code: 'MESSAGE_REPLAY' });
  });

  await t.test('when messages older than the skew window are deleted then no guard row is written and a resubmission fails the skew check', async (t) => {
    const conv = await m.direct(a.principal, (await h.user('rg-carol')).login);
    const old = await h.compose(a, conv.id, 'old news');
    await m.send(a.principal, old);
    h.clock.now = new Date(h.clock.now.getTime() + 2 * m.config.clockSkewMs);
    t.teardown(() => void (h.clock.now = new Date()));
    const before = await guards();
    await m.deleteConversation(a.principal, conv.id, await h.deleteRequest(a, `conversation:${conv.id}`));
    t.equal(await guards(), before, 'nothing to guard: it can no longer pass the skew check');
    await t.rejects(m.send(a.principal, old), { code: 'MESSAGE_CLOCK_SKEW' });
  });
});
