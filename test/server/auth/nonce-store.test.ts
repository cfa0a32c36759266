import t from 'tap';
import { NonceStore } from '../../../server/auth/nonce-store.js';

let clock = Date.parse('2026-03-01T10:00:00Z');
const now = () => new Date(clock);

t.test('when a nonce is consumed then it cannot be consumed again', async (t) => {
  const s = new NonceStore({ ttlMs: 60_000, now });
  const { nonce, expiresAt } = s.issue('alice', 'fp1');
  t.equal(expiresAt.toISOString(), '2026-03-01T10:01:00.000Z');
  t.match(nonce, /^[A-Za-z0-9_-]{43}$/);
  t.doesNotThrow(() => s.consume(nonce, 'alice', 'fp1'));
  t.throws(() => s.consume(nonce, 'alice', 'fp1'), { code: 'NONCE_INVALID', message: /unknown/ });
});

t.test('when the nonce is used for another login or certificate then NONCE_INVALID, and it is spent', async (t) => {
  const s = new NonceStore({ ttlMs: 60_000, now });
  const a = s.issue('alice', 'fp1').nonce;
  t.throws(() => s.consume(a, 'bob', 'fp1'), { code: 'NONCE_INVALID', message: /wrong-login/ });
  t.throws(() => s.consume(a, 'alice', 'fp1'), { message: /unknown/ }, 'a failed try spends the nonce');
  const b = s.issue('alice', 'fp1').nonce;
  t.throws(() => s.consume(b, 'alice', 'fp2'), { message: /wrong-certificate/ });
});

t.test('when the TTL has passed then NONCE_INVALID (expired)', async (t) => {
  const s = new NonceStore({ ttlMs: 60_000, now });
  const n = s.issue('alice', 'fp1').nonce;
  clock += 60_000;
  t.throws(() => s.consume(n, 'alice', 'fp1'), { message: /expired/ });
});

t.test('when more than `max` nonces are outstanding then the oldest are dropped', async (t) => {
  const s = new NonceStore({ ttlMs: 60_000, now, max: 3 });
  const first = s.issue('a', 'f').nonce;
  for (let i = 0; i < 3; i++) s.issue('a', 'f');
  t.throws(() => s.consume(first, 'a', 'f'), { message: /unknown/ });
});

t.test('when the random source is fixed then the nonce is exactly determined', async (t) => {
  const s = new NonceStore({ ttlMs: 1000, now, random: (n) => Buffer.alloc(n, 0xff) });
  t.equal(s.issue('a', 'f').nonce, '_'.repeat(42) + '8');
});

t.test('when one certificate asks for challenges in a loop then only its own oldest are dropped, never another’s', async (t) => {
  // A flood from one certificate used to push every other pending nonce out of the global bound.
  const s = new NonceStore({ ttlMs: 60_000, now, max: 100, perCertificate: 4 });
  const alice = s.issue('alice', 'fp-alice').nonce;
  const flood = Array.from({ length: 1000 }, () => s.issue('mallory', 'fp-mallory').nonce);
  t.doesNotThrow(() => s.consume(alice, 'alice', 'fp-alice'), 'alice’s challenge survived the flood');
  t.throws(() => s.consume(flood[0]!, 'mallory', 'fp-mallory'), { message: /unknown/ }, 'the flooder’s oldest went');
  for (const n of flood.slice(-4)) t.doesNotThrow(() => s.consume(n, 'mallory', 'fp-mallory'), 'its newest 4 are still good');
});

t.test('when many certificates each hold a few nonces then the global bound still holds', async (t) => {
  const s = new NonceStore({ ttlMs: 60_000, now, max: 10, perCertificate: 4 });
  const first = s.issue('u0', 'fp0').nonce;
  for (let i = 1; i <= 10; i++) s.issue(`u${i}`, `fp${i}`);
  t.throws(() => s.consume(first, 'u0', 'fp0'), { message: /unknown/ }, 'the oldest overall went');
});
