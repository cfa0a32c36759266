/**
 * `server/accounts-3-rank` on a vault.db from before it: the column is added, accounts made
 * before it read with no rank, and a rank then set, kept through a rename of the name alone, and
 * removed with null. A real SQLite file.
 */
import { join } from 'node:path';
import t from 'tap';
import { ACCOUNT_MIGRATIONS, AccountStore } from '../../../server/accounts/account-store.js';
import { Db } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

t.test('when an accounts table from before ranks is migrated then its accounts have none, and ranks can be set and removed', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'vault.db'));
  t.teardown(() => db.close());
  const before = ACCOUNT_MIGRATIONS.filter((m) => m.id !== 'server/accounts-3-rank');
  t.equal(before.length, ACCOUNT_MIGRATIONS.length - 1, 'the rank migration is the one left out');
  await db.migrate(before);
  await db.run(
    `INSERT INTO accounts (login, full_name, department, role, clearance, status, password_hash, must_change_password, created_at, created_by)
     VALUES ('old', 'Old Timer', 'Ops', 'staff', 'secret', 'active', 'h', 0, '2026-01-01T00:00:00.000Z', 'officer')`,
  );
  await db.migrate(ACCOUNT_MIGRATIONS);
  const accounts = new AccountStore(db);
  t.match(await accounts.get('old'), { login: 'old', fullName: 'Old Timer', rank: null });

  await accounts.setNames('old', { rank: 'Major' });
  t.match(await accounts.get('old'), { rank: 'Major' });
  await accounts.setNames('old', { fullName: 'Old T. Imer' });
  t.match(await accounts.get('old'), { fullName: 'Old T. Imer', rank: 'Major' }, 'a rename without rank keeps it');
  await accounts.setNames('old', { rank: null });
  t.match(await accounts.get('old'), { fullName: 'Old T. Imer', rank: null });
  const stored = await db.get<{ rank: string | null }>("SELECT rank FROM accounts WHERE login = 'old'");
  t.equal(stored?.rank, null, 'stored as NULL, not as text');
});
