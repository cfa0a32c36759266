/**
 * What a congested reader's queue may still hold: a deletion withdraws the queued copies of what
 * it destroys before its `deleted` event is queued (irreversible means irreversible), and a queue
 * is bounded by bytes as well as by count.
 */
import t from 'tap';
import { EventHub, type LiveEvent } from '../../../server/messaging/event-hub.js';
import { sink } from './sink-harness.js';


/** A reader attached to `sink`, already congested: its next events wait in the queue (after `r:prime`). */
function congested(hub: EventHub, login: string) {
  const sub = hub.subscribe(login, 2);
  const s = sink(0);
  sub.attach(s);
  hub.publishReceipt(login, { conversation: 'prime' });
  return { sub, s };
}
const members = (...logins: string[]) => new Map(logins.map((l) => [l, false]));
const audience = (conversation: string, ...logins: string[]) => ({ conversation, labelRank: 1, urgent: false, members: members(...logins) });
/** A message view as the service publishes it (API.md `message`). */
const view = (seq: number, id: string, conversation: string, body = `body of ${id}`) => ({ seq, id, conversation, body });
/** What reached a sink: `m:<id>` for messages, `d:<conversation>[:ids]`, `r:<conversation>`. */
const seen = (evs: LiveEvent[]): string[] =>
  evs.map((e) =>
    e.kind === 'message'
      ? `m:${(e.data as { id: string }).id}`
      : e.kind === 'deleted'
        ? `d:${e.data.conversation}${e.data.ids ? `:${e.data.ids.join(',')}` : ''}`
        : `r:${(e.data as { conversation: string }).conversation}`,
  );

t.test('when a queued message is deleted then the congested reader gets the deletion, never the message', async (t) => {
  const hub = new EventHub(16);
  const sub = hub.subscribe('bob', 2);
  const s = sink(1);
  sub.attach(s);
  hub.publishMessage(1, view(1, 'm1', 'c1'), audience('c1', 'bob')); // delivered, now congested
  hub.publishMessage(2, view(2, 'm2', 'c1', 'SECRET'), audience('c1', 'bob'));
  hub.publishMessage(3, view(3, 'm3', 'c1'), audience('c1', 'bob'));
  hub.publishMessage(4, view(4, 'm4', 'c2', 'SECRET'), audience('c2', 'bob'));
  t.equal(sub.queued, 3);
  hub.publishDeleted(['bob'], { conversation: 'c1', ids: ['m2'] });
  hub.publishDeleted(['bob'], { conversation: 'c1', ids: ['m4'] }); // m4 is c2's: untouched
  t.equal(sub.queued, 4, 'm2 out, two deleted events in');
  s.drain(100);
  sub.resume();
  t.same(seen(s.got), ['m:m1', 'm:m3', 'm:m4', 'd:c1:m2', 'd:c1:m4'], 'the rest in order, nothing lost');
  t.equal(sub.queuedBytes, 0);
});

t.test('when a conversation is destroyed then every queued event of it goes, the deletion stays', async (t) => {
  const hub = new EventHub(16);
  const { sub, s } = congested(hub, 'bob');
  hub.publishMessage(1, view(1, 'm1', 'c1'), audience('c1', 'bob'));
  hub.publishReceipt('bob', { conversation: 'c1', login: 'alice', kind: 'read', upTo: 1 });
  hub.publishMessage(2, view(2, 'm2', 'c2'), audience('c2', 'bob'));
  hub.publishDeleted(['bob'], { conversation: 'c1', ids: ['m0'] }); // an earlier deletion's event
  hub.publishMessage(3, view(3, 'm3', 'c1'), audience('c1', 'bob'));
  hub.publishReceipt('bob', { conversation: 'c2', login: 'alice', kind: 'read', upTo: 2 });
  hub.publishDeleted(['bob'], { conversation: 'c1' });
  s.drain(100);
  sub.resume();
  t.same(seen(s.got), ['r:prime', 'm:m2', 'd:c1:m0', 'r:c2', 'd:c1']);
});

t.test('when a deletion comes then readers it does not notify lose their queued copies too', async (t) => {
  // A member removed from the group after the message was queued for them is no longer notified.
  const hub = new EventHub(16);
  const { sub, s } = congested(hub, 'carol');
  hub.publishMessage(1, view(1, 'm1', 'g1', 'SECRET'), audience('g1', 'carol'));
  hub.publishDeleted(['alice'], { conversation: 'g1', ids: ['m1'] });
  t.equal(sub.queued, 0);
  t.equal(sub.queuedBytes, 0);
  s.drain(100);
  sub.resume();
  t.same(seen(s.got), ['r:prime'], 'not the message, and no deletion meant for others');
});

t.test('when a reader iterates (pull) then a deletion withdraws from its queue as well', async (t) => {
  const hub = new EventHub(16);
  const sub = hub.subscribe('bob', 2);
  hub.publishMessage(1, view(1, 'm1', 'c1', 'SECRET'), audience('c1', 'bob'));
  hub.publishMessage(2, view(2, 'm2', 'c1'), audience('c1', 'bob'));
  hub.publishDeleted(['bob'], { conversation: 'c1', ids: ['m1'] });
  const got = [await sub.next(), await sub.next()];
  t.same(seen(got as LiveEvent[]), ['m:m2', 'd:c1:m1']);
  sub.close();
});

t.test('when a queued message of the conversation has no id then the reader is dropped rather than guessed at', async (t) => {
  const hub = new EventHub(16);
  const { sub, s } = congested(hub, 'bob');
  hub.publishMessage(1, { n: 1 }, audience('c1', 'bob'));
  hub.publishDeleted(['bob'], { conversation: 'c1', ids: ['m9'] });
  t.ok(sub.closed);
  t.equal(s.endedWith, true, 'dropped: the client resumes from the vault');
});

t.test('when queued events pass the byte cap then the reader is dropped, before the count cap', async (t) => {
  const hub = new EventHub(1024, 100_000);
  const { sub, s } = congested(hub, 'bob');
  const big = 'A'.repeat(30_000);
  for (let i = 1; i <= 3; i++) hub.publishMessage(i, view(i, `m${i}`, 'c1', big), audience('c1', 'bob'));
  t.notOk(sub.closed, '3 × 30 kB fit');
  t.ok(sub.queuedBytes > 90_000 && sub.queuedBytes <= 100_000, `counted about right: ${sub.queuedBytes}`);
  hub.publishMessage(4, view(4, 'm4', 'c1', big), audience('c1', 'bob'));
  t.ok(sub.dropped, 'the fourth passes 100 kB');
  t.equal(s.endedWith, true);
  t.equal(hub.size, 0);
});

t.test('when a reader drains then its bytes are no longer counted against it', async (t) => {
  const hub = new EventHub(1024, 100_000);
  const { sub, s } = congested(hub, 'bob');
  const big = 'A'.repeat(30_000);
  for (let round = 0; round < 5; round++) {
    for (let i = 1; i <= 3; i++) hub.publishMessage(round * 3 + i, view(i, `m${round}-${i}`, 'c1', big), audience('c1', 'bob'));
    s.drain(3);
    sub.resume(); // hands over all three; the sink is congested again
  }
  hub.publishMessage(99, view(99, 'last', 'c1', big), audience('c1', 'bob'));
  hub.publishDeleted(['bob'], { conversation: 'c1', ids: ['last'] });
  t.notOk(sub.closed);
  t.equal(sub.queued, 1, 'only the deletion waits');
  t.ok(sub.queuedBytes < 1000, `withdrawn bytes released: ${sub.queuedBytes}`);
});
