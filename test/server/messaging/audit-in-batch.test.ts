/**
 * The batch's audit entries are appended inside the writer's vault transaction without a
 * savepoint of their own (AuditLog.append `join`, Db.within). If the append fails halfway, the
 * whole batch must roll back: no message row, no audit entry, no half-written tree, and the
 * message can be sent again once the audit log works (its key was destroyed, so it is no replay).
 */
import t from 'tap';
import { harness } from './harness.js';

t.test('when the audit append fails after writing its rows then the batch rolls back whole', async (t) => {
  const h = await harness(t);
  const a = await h.user('ab-alice');
  const b = await h.user('ab-bob');
  const conv = await h.messaging.direct(a.principal, b.login);
  await h.messaging.send(a.principal, await h.compose(a, conv.id, 'before'));
  const sizeBefore = await h.audit.size();
  const count = async () => (await h.vault.db.get<{ n: number }>('SELECT COUNT(*) AS n FROM msg_messages'))!.n;
  const rowsBefore = await count();

  const real = h.audit.append.bind(h.audit);
  h.audit.append = async (events, opts) => {
    await real(events, opts); // its rows and the new head are written in the writer's transaction…
    throw new Error('audit failed after writing'); // …and then it fails
  };
  const msgs = await Promise.all([h.compose(a, conv.id, 'one'), h.compose(a, conv.id, 'two')]);
  const rs = await Promise.allSettled(msgs.map((m) => h.messaging.send(a.principal, m)));
  t.same(rs.map((r) => r.status), ['rejected', 'rejected']);
  h.audit.append = real;

  t.equal(await count(), rowsBefore, 'no message row of the batch');
  t.equal(await h.audit.size(), sizeBefore, 'no audit entry of the batch');
  t.match(await h.audit.verify(), { ok: true }, 'the audit tree verifies');
  for (const m of msgs) await h.messaging.send(a.principal, m);
  t.equal(await count(), rowsBefore + 2, 'both are accepted afterwards: their keys went with the failed batch');
  t.equal(await h.audit.size(), sizeBefore + 2);
  t.match(await h.audit.verify(), { ok: true });
});
