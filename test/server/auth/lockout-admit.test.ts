/**
 * Review defect: concurrent logins got straight past the certificate lock. Its limit was checked
 * before the password check and the failure counted after it, so every attempt in between went
 * through and each failure past the limit locked the certificate again, pushing its end further.
 * Attempts are now admitted against the failures plus the attempts in flight (Lockout.admit), and
 * a failure over a locked certificate counts nothing. Real SQLite file; only the clock is fake,
 * and the certificate limit is 3 so the cases stay small.
 */
import t, { type Test } from 'tap';
import { AccountLockedError } from '../../../server/auth/errors.js';
import { LOCKOUT_MIGRATIONS, Lockout } from '../../../server/auth/lockout.js';
import { loginHashWithKey } from '../../../server/auth/login-hash.js';
import type { Queryable } from '../../../server/vault/index.js';
import { accountsDb } from './helpers/accounts-db.js';

const MIN = 60_000;
const START = new Date('2026-12-01T08:00:00Z');
const FP = 'f'.repeat(64);
const READ_ROW = 'SELECT * FROM login_lockouts WHERE key = ?';

async function setup(t: Test) {
  const { db, accounts } = await accountsDb(t, { migrations: LOCKOUT_MIGRATIONS, createdAt: START });
  /** Holds the next read of the certificate's row once it has its answer (see the last test). */
  const hold: { armed: boolean; reached?: () => void; gate?: Promise<void> } = { armed: false };
  const held: Queryable = {
    run: (sql, p) => db.run(sql, p),
    all: (sql, p) => db.all(sql, p),
    exec: (sql) => db.exec(sql),
    prepare: (sql) => db.prepare(sql),
    whenSettled: (fn) => db.whenSettled(fn),
    async get<T>(sql: string, p?: readonly unknown[] | Record<string, unknown>): Promise<T | undefined> {
      const row = await db.get<T>(sql, p);
      if (hold.armed && sql === READ_ROW && Array.isArray(p) && String(p[0]).startsWith('cert:')) {
        hold.armed = false;
        hold.reached?.();
        await hold.gate;
      }
      return row;
    },
  };
  const clock = { now: START };
  const lockout = new Lockout({
    accounts,
    db: held,
    policy: { maxFailures: 5, windowMs: 15 * MIN, lockMs: 30 * MIN },
    now: () => clock.now,
    loginHash: loginHashWithKey(new Uint8Array(32).fill(7)),
    certificateMaxFailures: 3,
  });
  const refusal = async (p: Promise<unknown>): Promise<string> => {
    try {
      await p;
      return 'admitted';
    } catch (err) {
      if (err instanceof AccountLockedError) return err.scope;
      throw err;
    }
  };
  const loginRows = async () => (await db.get<{ n: number }>("SELECT count(*) AS n FROM login_lockouts WHERE key LIKE 'login:%'"))!.n;
  const certRow = () => db.get<{ recent_failures: string; locked_until: string | null }>('SELECT * FROM login_lockouts WHERE key = ?', [`cert:${FP}`]);
  /** An admitted attempt that fails. */
  const fail = async (login: string) => {
    const adm = await lockout.admit(login, FP);
    return db.transaction(() => lockout.recordFailure(login, FP, adm));
  };
  return { db, accounts, lockout, hold, refusal, loginRows, certRow, fail };
}

t.test('when attempts over one certificate are in flight then they count toward its limit and the next is refused, real or unknown login alike', async (t) => {
  const { lockout, refusal } = await setup(t);
  const inFlight = [await lockout.admit('g1', FP), await lockout.admit('g2', FP), await lockout.admit('g3', FP)];
  t.equal(await refusal(lockout.admit('g4', FP)), 'certificate');
  t.equal(await refusal(lockout.admit('alice', FP)), 'certificate', 'the same answer for a real login');
  t.equal(await refusal(lockout.admit('g4', 'e'.repeat(64))), 'admitted', 'another certificate is not concerned');
  inFlight[0]!.release();
  inFlight[0]!.release(); // idempotent: frees one place, not two
  t.equal(await refusal(lockout.admit('g4', FP)), 'admitted', 'a released place is free again');
  t.equal(await refusal(lockout.admit('g5', FP)), 'certificate');
});

t.test('when an admitted failure commits then its place passes into the count; when it rolls back then it is freed', async (t) => {
  const { db, lockout, refusal, certRow } = await setup(t);
  await t.rejects(
    db.transaction(async () => {
      await lockout.recordFailure('g0', FP, await lockout.admit('g0', FP));
      throw new Error('rolled back');
    }),
  );
  t.equal(await certRow(), undefined, 'nothing counted');
  const r = await (async () => {
    const adm = await lockout.admit('g1', FP);
    return db.transaction(() => lockout.recordFailure('g1', FP, adm));
  })();
  t.equal(r.certificateLocked, false);
  const held = [await lockout.admit('g2', FP), await lockout.admit('g3', FP)];
  t.equal(await refusal(lockout.admit('g4', FP)), 'certificate', '1 failure + 2 in flight = the limit');
  for (const h of held) h.release();
});

t.test('when the certificate is locked then a failure still in flight counts nothing: no row, no login count, the lock end unmoved', async (t) => {
  const { db, accounts, lockout, loginRows, certRow, fail } = await setup(t);
  const outcomes = [await fail('g1'), await fail('g2'), await fail('g3')];
  t.same(outcomes.map((o) => o.certificateLocked), [false, false, true], 'the third failure locks, once');
  const before = await certRow();
  t.ok(before?.locked_until, 'locked');
  const rows = await loginRows();
  // What a failure that got past admit() would do (admit() refuses them all while it is locked).
  for (const login of ['late', 'alice']) {
    const err = await db.transaction(() => lockout.recordFailure(login, FP)).catch((e: unknown) => e);
    t.ok(err instanceof AccountLockedError && err.scope === 'certificate', `${login}: ACCOUNT_LOCKED, scope certificate`);
  }
  t.equal(await loginRows(), rows, 'no new unknown-login row');
  t.equal((await accounts.get('alice'))?.failedCount, 0, "the real login's count untouched alike");
  t.same(await certRow(), before, 'the certificate row, its lock end included, unchanged');
});

t.test('when a failure settles while an admission reads the count then the admission reads it again', async (t) => {
  const { lockout, hold, refusal, fail } = await setup(t);
  const a = await lockout.admit('a', FP);
  await fail('z'); // 1 failure, a in flight; the row is read afresh next time
  let reached!: () => void;
  const atHold = new Promise<void>((r) => (reached = r));
  let open!: () => void;
  Object.assign(hold, { armed: true, reached, gate: new Promise<void>((r) => (open = r)) });
  const b = refusal(lockout.admit('b', FP)); // reads 1 failure, then waits
  await atHold;
  await lockout.recordFailure('a', FP, a); // 2 failures, a's place freed
  t.equal(await refusal(lockout.admit('c', FP)), 'admitted', '2 failures + 0 in flight');
  open();
  t.equal(await b, 'certificate', '2 failures + c in flight reach the limit: b is refused, not judged on the old count');
});
