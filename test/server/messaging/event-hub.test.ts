/**
 * The live fan-out in push mode (what the SSE route uses): events reach an attached sink
 * synchronously, wait in a bounded queue only while the sink is congested, and a sink that stays
 * congested is dropped instead of buffering without bound.
 */
import t from 'tap';
import { EventHub, type LiveEvent } from '../../../server/messaging/event-hub.js';
import { sink } from './sink-harness.js';


const audience = (login: string) => ({ conversation: 'c1', labelRank: 1, urgent: false, members: new Map([[login, false]]) });
const seqs = (evs: LiveEvent[]): number[] => evs.map((e) => (e.kind === 'message' ? e.seq : -1));

t.test('when a sink is attached then queued events come first, then each event as it is published', async (t) => {
  const hub = new EventHub(16);
  const sub = hub.subscribe('bob', 2);
  hub.publishMessage(1, { n: 1 }, audience('bob')); // during the replay: queued
  const s = sink(100);
  sub.attach(s);
  t.same(seqs(s.got), [1]);
  hub.publishMessage(2, { n: 2 }, audience('bob'));
  t.same(seqs(s.got), [1, 2], 'delivered synchronously, while publishing');
  sub.close();
  t.equal(s.endedWith, false, 'told it ended, not dropped');
});

t.test('when a sink is congested then events wait in order and resume() hands them over', async (t) => {
  const hub = new EventHub(16);
  const sub = hub.subscribe('bob', 2);
  const s = sink(2);
  sub.attach(s);
  for (let i = 1; i <= 5; i++) hub.publishMessage(i, { n: i }, audience('bob'));
  t.same(seqs(s.got), [1, 2], 'nothing more handed over while congested');
  s.drain(2);
  sub.resume();
  t.same(seqs(s.got), [1, 2, 3, 4], 'up to the room it has');
  s.drain(100);
  sub.resume();
  hub.publishMessage(6, { n: 6 }, audience('bob'));
  t.same(seqs(s.got), [1, 2, 3, 4, 5, 6], 'in order, nothing lost or doubled');
  t.notOk(sub.closed);
});

t.test('when a sink stays congested then its subscription is dropped instead of buffering', async (t) => {
  const hub = new EventHub(3);
  const sub = hub.subscribe('bob', 2);
  const s = sink(1);
  sub.attach(s);
  for (let i = 1; i <= 10; i++) hub.publishMessage(i, { n: i }, audience('bob'));
  t.ok(sub.dropped);
  t.ok(sub.closed);
  t.equal(s.endedWith, true, 'the sink learns it was dropped (the stream ends, the client resumes)');
  t.equal(hub.size, 0, 'gone from the hub');
});

t.test('when a message reaches several readers then they share one event object', async (t) => {
  // The SSE route encodes each event's frame once for all its readers, keyed by this object.
  const hub = new EventHub(16);
  const a = sink(100);
  const b = sink(100);
  hub.subscribe('bob', 2).attach(a);
  hub.subscribe('carol', 2).attach(b);
  hub.publishMessage(7, { n: 7 }, { conversation: 'c1', labelRank: 1, urgent: false, members: new Map([['bob', false], ['carol', false]]) });
  t.equal(a.got.length, 1);
  t.equal(a.got[0], b.got[0]);
});
