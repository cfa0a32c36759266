/**
 * Schema migrations of one SQLite file (`Db.migrate`): each applied once, in order, in its own
 * transaction with its row in table `migrations`.
 */
import type { DbTx } from './db-types.js';

/** Hears of a migration that {@link Db.migrate} applies: before it runs, and after with its duration. */
export type MigrationHook = (id: string, phase: 'start' | 'done', ms?: number) => void;

/** What {@link applyMigrations} needs of a `Db`. */
export interface MigratableDb {
  exec(sql: string): Promise<void>;
  transaction<T>(fn: (tx: DbTx) => Promise<T>): Promise<T>;
}

/** {@link Db.migrate} (its TSDoc says what it does), over the Db's `exec` and `transaction`. */
export async function applyMigrations(
  db: MigratableDb,
  migrations: readonly { id: string; sql: string }[],
  opts: { onApply?: MigrationHook } = {},
): Promise<void> {
  await db.exec(
    'CREATE TABLE IF NOT EXISTS migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL) STRICT',
  );
  for (const m of migrations) {
    await db.transaction(async (tx) => {
      const done = await tx.get('SELECT 1 FROM migrations WHERE id = ?', [m.id]);
      if (done) return;
      const t0 = performance.now();
      opts.onApply?.(m.id, 'start');
      await tx.exec(m.sql);
      await tx.run('INSERT INTO migrations (id, applied_at) VALUES (?, ?)', [m.id, new Date().toISOString()]);
      opts.onApply?.(m.id, 'done', Math.round(performance.now() - t0));
    });
  }
}
