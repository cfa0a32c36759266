/**
 * Live fan-out with nobody connected costs nothing: no members query (it runs in the writer's
 * serial chain) and no views. Whoever connects afterwards gets what is sent from then on.
 */
import t from 'tap';
import type { Db } from '../../../server/vault/index.js';
import { harness } from './harness.js';

t.test('when nobody is connected then publishing skips the members query, and a member who connects gets the next message', async (t) => {
  const h = await harness(t);
  const alice = await h.user('p-alice');
  const bob = await h.user('p-bob');
  const ab = await h.messaging.direct(alice.principal, bob.login);

  // Every query messaging runs on vault.db, as SQL text.
  const db = h.vault.db as Db & { all: Db['all'] };
  const all = db.all.bind(db);
  const queries: string[] = [];
  db.all = ((sql: string, params?: unknown[]) => {
    queries.push(sql);
    return all(sql, params as never);
  }) as Db['all'];
  t.teardown(() => void (db.all = all));
  const fanOut = (): number => queries.filter((q) => /FROM msg_members WHERE conversation IN/.test(q)).length;

  await h.messaging.send(alice.principal, await h.compose(alice, ab.id, 'to nobody listening'));
  t.equal(fanOut(), 0, 'no members query while nobody is connected');

  const sub = h.messaging.subscribe(bob.principal);
  t.teardown(() => sub.close());
  const next = sub.next();
  const sent = await h.messaging.send(alice.principal, await h.compose(alice, ab.id, 'to bob, connected'));
  t.equal(fanOut(), 1, 'one members query once someone is connected');
  const ev = await next;
  t.equal(ev?.kind, 'message');
  t.equal(ev?.kind === 'message' ? ev.seq : undefined, sent.seq, 'bob got the message sent after he connected');
});
