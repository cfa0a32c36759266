/**
 * Deleted ids must never be accepted again, but only messages still inside the clock-skew window
 * can be replayed at all, so only those get a guard row (issue 8: destroying a 100k group was 50 s
 * of guard inserts).
 */
import t from 'tap';
import { harness } from './harness.js';

t.test('replay guard of deletions', async (t) => {
  const h = await harness(t);
  const m = h.messaging;
  const a = await h.user('rg-alice');
  const b = await h.user('rg-bob');
  const guards = async () => (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_replay_guard'))!.n;

  await t.test('when a conversation with fresh messages is deleted then each gets a guard row (single-message replay: groups-deletion.test.ts)', async (t) => {
    const conv = await m.direct(a.principal, b.login);
    const msgs = [];
    for (let i = 0; i < 3; i++) {
      const msg = await h.compose(a, conv.id, `fresh ${i}`);
      await m.send(a.principal, msg);
      msgs.push(msg);
    }
    const before = await guards();
    await m.deleteConversation(a.principal, conv.id, await h.deleteRequest(a, `conversation:${conv.id}`));
    t.equal((await guards()) - before, 3, 'one guard row per replayable message');
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
