/**
 * The session and account stores read through row caches (server/vault/row-cache.ts). What a
 * request decides from them must be what the database says: a session ended or an account
 * disabled is refused by the next read, in or out of a transaction, through the store or a store
 * over a transaction handle (`with`), and a rolled-back change is never seen.
 */
import t, { type Test } from 'tap';
import type { Db } from '../../../server/vault/index.js';
import type { AccountStore } from '../../../server/accounts/account-store.js';
import { SESSION_MIGRATIONS, SessionStore } from '../../../server/auth/session-store.js';
import { SessionInvalidError } from '../../../server/auth/errors.js';
import { accountsDb } from './helpers/accounts-db.js';

const FP = 'ab'.repeat(32);
const CERT_END = new Date('2027-11-29T10:00:00Z');

async function stores(t: Test): Promise<{ db: Db; accounts: AccountStore; sessions: SessionStore; clock: { now: Date } }> {
  const clock = { now: new Date('2026-11-29T10:00:00Z') };
  const { db, accounts } = await accountsDb(t, { migrations: SESSION_MIGRATIONS, createdAt: clock.now, passwordHash: 'h1' });
  const sessions = new SessionStore(db, { idleMs: 15 * 60_000, absoluteMs: 8 * 3600_000, now: () => clock.now });
  return { db, accounts, sessions, clock };
}

t.test('when a session is ended (one, by login, by certificate) then the next resolve refuses it although it was cached', async (t) => {
  const { sessions } = await stores(t);
  const ends = [
    (id: string) => sessions.end(id, 'logout'),
    () => sessions.endForLogin('alice', 'account-disabled'),
    () => sessions.endForCertificate('01', 'certificate-revoked'),
  ];
  for (const end of ends) {
    const { token } = await sessions.create('alice', FP, '01', CERT_END);
    const s = await sessions.resolve(token, FP);
    await sessions.resolve(token, FP); // warm
    await end(s.id);
    await t.rejects(sessions.resolve(token, FP), SessionInvalidError);
  }
});

t.test('when a session is ended inside a transaction then it is refused after the commit, and stays valid if it rolls back', async (t) => {
  const { db, sessions } = await stores(t);
  const { token } = await sessions.create('alice', FP, '01', CERT_END);
  const s = await sessions.resolve(token, FP);
  await t.rejects(
    db.transaction(async () => {
      await sessions.end(s.id, 'logout');
      await t.rejects(sessions.resolve(token, FP), SessionInvalidError, 'inside, the transaction sees its own end');
      throw new Error('rolled back');
    }),
  );
  t.equal((await sessions.resolve(token, FP)).id, s.id, 'the rollback left the session valid');
  await db.transaction(async () => {
    await sessions.end(s.id, 'logout');
  });
  await t.rejects(sessions.resolve(token, FP), SessionInvalidError, 'the committed end is seen at once');
});

t.test('when an account is changed through a store over a transaction handle then the shared cache shows the change after commit only', async (t) => {
  const { db, accounts } = await stores(t);
  t.equal((await accounts.get('alice'))?.status, 'active');
  await t.rejects(
    db.transaction(async (tx) => {
      await accounts.with(tx).setStatus('alice', 'disabled');
      throw new Error('rolled back');
    }),
  );
  t.equal((await accounts.get('alice'))?.status, 'active', 'a rolled-back disable is never seen');
  await db.transaction(async (tx) => {
    await accounts.with(tx).setStatus('alice', 'disabled');
    await accounts.with(tx).setPassword('alice', 'h2', false);
  });
  const a = await accounts.get('alice');
  t.match(a, { status: 'disabled', passwordHash: 'h2', mustChangePassword: false }, 'the committed change is seen at once');
  t.ok(Object.isFrozen(a), 'a cached record cannot be changed by a caller');
});
