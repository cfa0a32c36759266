/**
 * The table of lockout counters of logins without an account (auth/lockout.ts) is bounded without
 * telling: rows go only once they say no more than no row, each certificate's guesses are capped
 * by a lock that answers alike for real and unknown logins, and a hard cap holds the rest.
 * Real SQLite file; only the clock is fake.
 */
import t, { type Test } from 'tap';
import { AccountLockedError } from '../../../server/auth/errors.js';
import { LOCKOUT_MIGRATIONS, Lockout, type LockoutOptions } from '../../../server/auth/lockout.js';
import { loginHashWithKey } from '../../../server/auth/login-hash.js';
import { accountsDb } from './helpers/accounts-db.js';

const MIN = 60_000;
const START = new Date('2026-12-01T08:00:00Z');
const POLICY = { maxFailures: 5, windowMs: 15 * MIN, lockMs: 30 * MIN };

async function setup(t: Test, o: Partial<LockoutOptions> = {}) {
  const { db, accounts } = await accountsDb(t, { migrations: LOCKOUT_MIGRATIONS, createdAt: START });
  const clock = { now: START };
  const lockout = new Lockout({
    accounts,
    db,
    policy: POLICY,
    now: () => clock.now,
    loginHash: loginHashWithKey(new Uint8Array(32).fill(7)),
    ...o,
  });
  const rows = async () => (await db.get<{ n: number }>('SELECT count(*) AS n FROM login_lockouts'))!.n;
  /** One login attempt that fails its password check, as login-service does: refused when locked. */
  const attempt = async (login: string, fp: string): Promise<'failed' | 'locked'> => {
    try {
      await lockout.assertNotLocked(login, fp);
    } catch (err) {
      if (err instanceof AccountLockedError) return 'locked';
      throw err;
    }
    await db.transaction(() => lockout.recordFailure(login, fp));
    return 'failed';
  };
  const advance = (ms: number) => void (clock.now = new Date(clock.now.getTime() + ms));
  return { db, lockout, rows, attempt, advance, clock };
}

const fp = (i: number) => i.toString(16).padStart(64, '0');

t.test('when one certificate fails 40 logins within the window then every login over it answers locked, real or unknown alike', async (t) => {
  const { attempt, advance } = await setup(t);
  const answers: string[] = [];
  // Distinct logins, so no login locks by itself: only the certificate's count does.
  for (let i = 0; i < 40; i++) answers.push(await attempt(`guess${i}`, fp(1)));
  t.same(answers, Array(40).fill('failed'));
  t.equal(await attempt('alice', fp(1)), 'locked', 'a real login over that certificate');
  t.equal(await attempt('nobody', fp(1)), 'locked', 'an unknown one: the same answer');
  t.equal(await attempt('alice', fp(2)), 'failed', 'another certificate is not concerned');
  advance(30 * MIN + 1);
  t.equal(await attempt('nobody', fp(1)), 'failed', 'the certificate lock ends after lockMs');
});

t.test('when one certificate guesses random logins for hours then its live rows stay under the per-certificate bound', async (t) => {
  const { attempt, advance, rows, lockout } = await setup(t);
  // Another certificate locks one unknown login: no flood may end that lock early.
  for (let i = 0; i < 5; i++) await attempt('target', fp(9));
  let most = 0;
  for (let i = 0; i < 3000; i++) {
    await attempt(`random-${i}`, fp(1));
    advance(2_000);
    most = Math.max(most, await rows());
    if (i % 500 === 0 && i < 900) await t.rejects(lockout.assertNotLocked('target'), AccountLockedError, 'the guessed login is still locked');
  }
  // 40 per 15-minute window, rows live ≤ 30 min after their failure: ≤ 80, + the two certificates' rows and target's.
  t.ok(most <= 83, `at most 83 rows at any time, saw ${most}`);
  t.ok(most >= 40, `the guesses were counted, saw ${most}`);
});

t.test('when counters have said all they can then they are swept, and the swept logins answer as if never tried', async (t) => {
  const { attempt, advance, rows } = await setup(t);
  for (let i = 0; i < 30; i++) await attempt(`old-${i}`, fp(100 + i));
  t.equal(await rows(), 60, 'a row per login and per certificate');
  advance(15 * MIN + 1);
  await attempt('fresh', fp(1));
  t.equal(await rows(), 2, 'the expired 60 went at the next failure, only the fresh two are left');
  for (let i = 0; i < 4; i++) t.equal(await attempt('old-0', fp(1)), 'failed', 'a swept login counts from zero, as it would have anyway');
});

t.test('when more than maxRows counters are live then the table holds maxRows, losing the one nearest its end', async (t) => {
  const { attempt, advance, rows } = await setup(t, { maxRows: 20 });
  let most = 0;
  for (let i = 0; i < 50; i++) {
    await attempt(`flood-${i}`, fp(1000 + i));
    advance(1_000);
    most = Math.max(most, await rows());
  }
  t.equal(most, 20, 'never more than 20 rows, though 100 counters were live');
});
