/**
 * The benches' shared parts that decide what a figure means: the machine bounds every bench prints
 * beside its own figure (bench/lib/bounds.ts, verifyBound, syncVerifyBound), the split of a run's CPU by
 * thread, the percentile, and the batch body.
 * Benches never assert, so without this a broken bound would only show as a strange number. Sizes
 * here are tiny: these check that each bound measures what it says, not how fast anything is.
 */
import t from 'tap';
import { tlsFanOutBound, sqliteBounds } from '../../bench/lib/bounds.js';
import { batchPayload, percentile, syncVerifyBound, threadSplit, verifyBound, verifyBounds } from '../../bench/lib/load.js';

t.test('when the SQLite bound runs then it reads a page and deletes a whole conversation, and says how long each took', async (t) => {
  const b = await sqliteBounds(300, 256);
  t.equal(b.rows, 300);
  t.equal(b.pageRows, 50, 'the page read is a full page');
  t.equal(b.deleted, 300, 'the delete removed the whole conversation, and only it');
  t.ok(Number.isFinite(b.newestPageMs) && b.newestPageMs > 0, `newest page ${b.newestPageMs} ms`);
  t.ok(Number.isFinite(b.deleteAllMs) && b.deleteAllMs > 0, `delete ${b.deleteAllMs} ms`);
});

t.test('when the TLS fan-out bound runs then every watcher receives every event', async (t) => {
  // It resolves only once all bytes of all events reached all watchers (or times out and throws).
  const b = await tlsFanOutBound(5, 20, 1000);
  t.ok(Number.isFinite(b.deliveriesPerSecond) && b.deliveriesPerSecond > 0, `${b.deliveriesPerSecond.toFixed(0)} deliveries/s`);
  t.ok(b.seconds > 0);
});

t.test('when the verify bound runs then it counts real verifications', async (t) => {
  const perSecond = await verifyBound('p256', 0.2, 4, 8);
  t.ok(Number.isFinite(perSecond) && perSecond > 0, `${perSecond.toFixed(0)}/s`);
});

t.test('when the synchronous verify bound runs then every thread counts real verifications', async (t) => {
  // Each worker verifies every sample once before it says ready and throws if one fails, so a rate
  // means the signatures, key and encoding were right (WebCrypto's ECDSA is r‖s, node's default DER).
  for (const profile of ['p256', 'rsa3072'] as const) {
    const perSecond = await syncVerifyBound(profile, 0.2, 2, 8);
    t.ok(Number.isFinite(perSecond) && perSecond > 0, `${profile}: ${perSecond.toFixed(0)}/s`);
  }
});

t.test('when both bounds are read then the one the ratios use is the higher', async (t) => {
  const b = await verifyBounds('p256', 0.2);
  t.ok(b.sync > 0 && b.subtle > 0);
  t.equal(b.best, Math.max(b.sync, b.subtle));
});

t.test('when a run’s CPU is split by thread then the busiest other threads are the check workers and a new thread counts from zero', async (t) => {
  const before = new Map([['100', 5], ['101', 1], ['102', 10], ['103', 10], ['104', 2]]);
  // 102 and 103 are the workers (+8, +7); 104 a pool thread (+1); 105 a thread born meanwhile (+0.5).
  const after = new Map([['100', 6.5], ['101', 1.2], ['102', 18], ['103', 17], ['104', 3], ['105', 0.5]]);
  const s = threadSplit(before, after, 100, 2);
  t.equal(s.main, 1.5);
  t.equal(s.workers, 15);
  t.equal(Math.round(s.rest * 10) / 10, 1.7, 'the pool thread, the small one and the newborn');
  t.equal(s.workerCount, 2);
});

t.test('when a percentile is asked then it is the nearest rank', async (t) => {
  const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  t.equal(percentile(xs, 50), 5);
  t.equal(percentile(xs, 95), 10);
  t.equal(percentile(xs, 99), 10);
  t.equal(percentile(xs, 10), 1);
  t.ok(Number.isNaN(percentile([], 50)));
});

t.test('when pre-signed messages are batched then the body is the batch route’s shape with each payload intact', async (t) => {
  const ms = [
    { id: 'a', conversation: 'c', payload: JSON.stringify({ header: '{"x":1}', signature: 'AA==', body: '' }) },
    { id: 'b', conversation: 'c', payload: JSON.stringify({ header: '{"y":"\\u00e9"}', signature: 'AQ==', body: 'YQ==' }) },
  ];
  const parsed = JSON.parse(batchPayload(ms)) as { messages: unknown[] };
  t.same(parsed, { messages: ms.map((m) => JSON.parse(m.payload) as unknown) });
});
