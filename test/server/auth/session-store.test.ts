/**
 * A session never outlives the certificate it was opened over: its absolute end is the earlier of
 * the configured lifetime and the certificate's notAfter (review: a live event stream kept
 * delivering after the client certificate expired, until the 12 h session lifetime ran out).
 * Only the clock is fake.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Db } from '../../../server/vault/index.js';
import { ACCOUNT_MIGRATIONS, AccountStore } from '../../../server/accounts/account-store.js';
import { SESSION_MIGRATIONS, SessionStore } from '../../../server/auth/session-store.js';
import { SessionExpiredError } from '../../../server/auth/errors.js';
import { tmpDir } from '../../helpers/tmp.js';

const FP = 'cd'.repeat(32);
const START = new Date('2026-11-29T10:00:00Z');
const HOUR = 3600_000;

async function store(t: Test): Promise<{ sessions: SessionStore; clock: { now: Date } }> {
  const db = await Db.open(join(tmpDir(t), 'v.db'), { reader: true });
  t.teardown(() => db.close());
  await db.migrate([...ACCOUNT_MIGRATIONS, ...SESSION_MIGRATIONS]);
  const clock = { now: START };
  await new AccountStore(db).create({
    login: 'alice',
    fullName: 'Alice',
    department: 'Ops',
    role: 'staff',
    clearance: 'secret',
    passwordHash: 'h1',
    createdBy: 'officer',
    createdAt: START,
  });
  // Idle longer than the test's steps, so only the absolute end can expire the session.
  const sessions = new SessionStore(db, { idleMs: 6 * HOUR, absoluteMs: 12 * HOUR, now: () => clock.now });
  return { sessions, clock };
}

t.test('when the certificate ends before the session lifetime then the session expires at its notAfter', async (t) => {
  const { sessions, clock } = await store(t);
  const notAfter = new Date(START.getTime() + 2 * HOUR);
  const { token, expiresAt } = await sessions.create('alice', FP, '01', notAfter);
  t.equal(expiresAt.toISOString(), notAfter.toISOString(), 'login answers the certificate’s notAfter as expiresAt');
  clock.now = new Date(notAfter.getTime() - 1000);
  const s = await sessions.resolve(token, FP);
  t.equal(s.expiresAt.toISOString(), notAfter.toISOString(), 'the stored session ends at notAfter');
  clock.now = notAfter;
  await t.rejects(sessions.resolve(token, FP), SessionExpiredError, 'refused from the certificate’s notAfter on');
  clock.now = new Date(notAfter.getTime() + HOUR);
  await t.rejects(sessions.resolve(token, FP), SessionExpiredError, 'and after it, well within the 12 h lifetime');
});

t.test('when the certificate outlives the session lifetime then the lifetime applies unchanged', async (t) => {
  const { sessions, clock } = await store(t);
  const { token, expiresAt } = await sessions.create('alice', FP, '01', new Date(START.getTime() + 365 * 24 * HOUR));
  t.equal(expiresAt.toISOString(), new Date(START.getTime() + 12 * HOUR).toISOString());
  clock.now = new Date(START.getTime() + 5 * HOUR);
  t.ok(await sessions.resolve(token, FP), 'valid within the lifetime');
  clock.now = new Date(START.getTime() + 10 * HOUR);
  t.ok(await sessions.resolve(token, FP), 'valid within the lifetime');
  clock.now = new Date(START.getTime() + 12 * HOUR);
  await t.rejects(sessions.resolve(token, FP), SessionExpiredError);
});
