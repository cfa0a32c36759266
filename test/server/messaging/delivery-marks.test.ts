/**
 * The process-wide delivery-mark batcher (issue 8, bench/live): many live readers' receipts are
 * written in one vault transaction per interval, only forward, only for members, and a graceful
 * stop (the service's close()) writes what is still pending. Real vault, real signed messages.
 */
import t from 'tap';
import { DeliveryMarks } from '../../../server/messaging/delivery-marks.js';
import { EventHub, type LiveEvent } from '../../../server/messaging/event-hub.js';
import type { Db } from '../../../server/vault/index.js';
import { harness, type Harness, type User } from './harness.js';

/** The real vault connection, counting transactions and the statements run inside them. */
function counting(db: Db): { db: Db; transactions: number; statements: number } {
  const c = { db, transactions: 0, statements: 0 };
  const countTx = (tx: object): object =>
    new Proxy(tx, {
      get(target, key) {
        const v = Reflect.get(target, key, target) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (key === 'run' || key === 'all' || key === 'get') c.statements++;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  c.db = new Proxy(db, {
    get(target, key) {
      const v = Reflect.get(target, key, target) as unknown;
      if (typeof v !== 'function') return v;
      if (key === 'transaction') {
        return (fn: (tx: object) => Promise<unknown>) => {
          c.transactions++;
          return target.transaction((tx) => fn(countTx(tx)));
        };
      }
      return (v as (...a: unknown[]) => unknown).bind(target);
    },
  });
  return c;
}

async function group(h: Harness, owner: User, name: string, readers: User[]): Promise<string> {
  const g = await h.messaging.createGroup(owner.principal, { name, label: 'restricted' });
  for (const r of readers) await h.messaging.addMember(owner.principal, name, { login: r.login });
  return g.id;
}

const watermark = async (h: Harness, conv: string, login: string): Promise<number | undefined> =>
  (await h.vault.db.get<{ s: number }>('SELECT delivered_seq AS s FROM msg_members WHERE conversation = ? AND login = ?', [conv, login]))?.s;

const marksOf = (h: Harness, conv: string): Promise<{ login: string; seq: number }[]> =>
  h.vault.db.all('SELECT login, seq FROM msg_marks WHERE conversation = ? AND kind = ? ORDER BY login', [conv, 'delivered']);

t.test('when many readers report deliveries then one transaction writes them all, only forward and only for members', async (t) => {
  const h = await harness(t);
  const alice = await h.user('dm-alice');
  const readers: User[] = [];
  for (let i = 0; i < 30; i++) readers.push(await h.user(`dm-r${String(i).padStart(2, '0')}`));
  const eve = await h.user('dm-eve');
  const conv = await group(h, alice, 'dm-group', readers);
  const seqs: number[] = [];
  for (let i = 0; i < 3; i++) seqs.push((await h.messaging.send(alice.principal, await h.compose(alice, conv, `m${i}`))).seq);
  const [s1, s2, s3] = seqs as [number, number, number];
  // r00 already read everything: its watermark must not move back or be marked again.
  await h.messaging.markRead(readers[0]!.principal, conv, s3);
  const before = (await marksOf(h, conv)).length;

  const hub = new EventHub(1024);
  const senderSide = hub.subscribe(alice.login, 4);
  const db = counting(h.vault.db);
  const marks = new DeliveryMarks({ db: db.db, hub, now: () => h.clock.now, log: () => undefined }, { intervalMs: 50 });
  t.teardown(() => marks.close());
  for (const r of readers) {
    marks.report(r.login, conv, s1);
    marks.report(r.login, conv, s3);
    marks.report(r.login, conv, s2); // late and lower: the highest is kept
  }
  marks.report(eve.login, conv, s3); // not a member: no mark
  t.equal(marks.pending, 31, 'kept in memory, one per (login, conversation)');
  t.equal(db.transactions, 0, 'nothing written at report time');

  for (let i = 0; i < 100 && marks.pending > 0; i++) await new Promise((r) => setTimeout(r, 20));
  await marks.flush(); // waits for the interval's flush in progress (nothing left to write)
  t.equal(db.transactions, 1, 'one transaction for all the readers');
  t.equal(db.statements, 2, 'one multi-row UPDATE and one multi-row INSERT inside it');
  for (const r of readers) t.equal(await watermark(h, conv, r.login), s3, `${r.login} delivered up to the last`);
  t.equal(await watermark(h, conv, eve.login), undefined, 'no row appears for a non-member');
  const marked = (await marksOf(h, conv)).slice(before);
  t.equal(marked.length, 29, 'a mark for each watermark that moved (not r00, who had read)');
  t.notOk(marked.some((m) => m.login === eve.login || m.login === readers[0]!.login));
  t.ok(marked.every((m) => m.seq === s3));

  // The sender is told, as by markDelivered, one receipt per reader whose watermark moved.
  const receipts: LiveEvent[] = [];
  for (let i = 0; i < 29; i++) receipts.push((await senderSide.next())!);
  t.ok(receipts.every((e) => e.kind === 'receipt' && (e.data as { kind: string; upTo: number }).kind === 'delivered' && (e.data as { upTo: number }).upTo === s3));
  const viaApi = await h.messaging.receipts(alice.principal, (await h.vault.db.get<{ id: string }>('SELECT id FROM msg_messages WHERE seq = ?', [s3]))!.id);
  t.equal(viaApi.delivered.length, 30, 'the receipts API sees all 30 readers');
});

t.test('when the service stops gracefully then delivery marks not yet written are written', async (t) => {
  const h = await harness(t);
  const alice = await h.user('gs-alice');
  const readers = [await h.user('gs-bob'), await h.user('gs-carol'), await h.user('gs-dave')];
  const conv = await group(h, alice, 'gs-group', readers);
  const { seq } = await h.messaging.send(alice.principal, await h.compose(alice, conv, 'pushed just before the stop'));
  for (const r of readers) h.messaging.reportDelivered(r.login, conv, seq);
  for (const r of readers) t.equal(await watermark(h, conv, r.login), 0, `control: ${r.login} not written yet (batched)`);
  await h.messaging.close();
  for (const r of readers) t.equal(await watermark(h, conv, r.login), seq, `${r.login}'s receipt survived the stop`);
  h.messaging.reportDelivered(readers[0]!.login, conv, seq + 1);
  await h.messaging.close();
  t.equal(await watermark(h, conv, readers[0]!.login), seq, 'after close, reports are ignored');
});

t.test('when writing the marks fails then they are kept and written by the next flush', async (t) => {
  const h = await harness(t);
  const alice = await h.user('wf-alice');
  const bob = await h.user('wf-bob');
  const conv = await group(h, alice, 'wf-group', [bob]);
  const { seq } = await h.messaging.send(alice.principal, await h.compose(alice, conv, 'one'));
  const logged: string[] = [];
  const marks = new DeliveryMarks({ db: h.vault.db, hub: new EventHub(8), now: () => h.clock.now, log: (e) => logged.push(e) }, { intervalMs: 60_000 });
  t.teardown(() => marks.close());
  marks.report(bob.login, conv, seq);
  await h.vault.db.exec('ALTER TABLE msg_marks RENAME TO msg_marks_away');
  await marks.flush();
  t.same(logged, ['messaging.delivery-marks-failed']);
  t.equal(await watermark(h, conv, bob.login), 0, 'rolled back as a whole');
  t.equal(marks.pending, 1, 'kept for the next flush');
  await h.vault.db.exec('ALTER TABLE msg_marks_away RENAME TO msg_marks');
  await marks.flush();
  t.equal(await watermark(h, conv, bob.login), seq);
  t.equal(marks.pending, 0);
});
