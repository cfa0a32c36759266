/**
 * A real vault.db for the auth store tests: opened in the test's temp dir (closed at teardown),
 * migrated with the given tables, and holding one staff account, `alice`.
 */
import { join } from 'node:path';
import type { Test } from 'tap';
import { ACCOUNT_MIGRATIONS, AccountStore } from '../../../../server/accounts/account-store.js';
import { Db } from '../../../../server/vault/index.js';
import { tmpDir } from '../../../helpers/tmp.js';

export async function accountsDb(
  t: Test,
  o: { migrations: Parameters<Db['migrate']>[0]; createdAt: Date; passwordHash?: string },
): Promise<{ db: Db; accounts: AccountStore }> {
  const db = await Db.open(join(tmpDir(t), 'v.db'), { reader: true });
  t.teardown(() => db.close());
  await db.migrate([...ACCOUNT_MIGRATIONS, ...o.migrations]);
  const accounts = new AccountStore(db);
  await accounts.create({
    login: 'alice',
    fullName: 'Alice',
    department: 'Ops',
    role: 'staff',
    clearance: 'secret',
    passwordHash: o.passwordHash ?? 'h',
    createdBy: 'officer',
    createdAt: o.createdAt,
  });
  return { db, accounts };
}
