/**
 * The background WAL checkpoint of a Db opened with `checkpointEveryMs` (server/vault/
 * wal-checkpointer.ts), on real files: committed pages reach the database file without any
 * COMMIT doing it (the writer's own threshold is only a backstop), a TRUNCATE checkpoint still
 * empties the WAL while the checkpointer runs, and close leaves no WAL behind.
 */
import t, { type Test } from 'tap';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Db } from '../../../server/vault/index.js';
import { BACKSTOP_PAGES } from '../../../server/vault/wal-checkpointer.js';
import { tmpDir } from '../../helpers/tmp.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** 400 rows of 2 KiB, committed in one transaction: ~800 KiB in the WAL, below SQLite's 1,000-page threshold. */
async function fill(db: Db): Promise<void> {
  await db.transaction(async (tx) => {
    for (let i = 0; i < 400; i++) await tx.run('INSERT INTO t (v) VALUES (?)', [Buffer.alloc(2048, i)]);
  });
}

async function opened(t: Test, checkpointEveryMs?: number): Promise<{ db: Db; path: string }> {
  const path = join(tmpDir(t), 'w.db');
  const db = await Db.open(path, { reader: true, ...(checkpointEveryMs ? { checkpointEveryMs } : {}) });
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
  return { db, path };
}

t.test('when a Db checkpoints in the background then committed pages reach the file within a tick, with no COMMIT copying them', async (t) => {
  const { db, path } = await opened(t, 50);
  t.same(await db.get('PRAGMA wal_autocheckpoint'), { wal_autocheckpoint: BACKSTOP_PAGES }, "the writer's own checkpoint is only a backstop");
  const before = statSync(path).size;
  await fill(db);
  t.ok(statSync(path).size < before + 100_000, 'right after the commit the rows are in the WAL only');
  const deadline = Date.now() + 5000;
  while (statSync(path).size < before + 700_000 && Date.now() < deadline) await sleep(20);
  t.ok(statSync(path).size >= before + 700_000, `the checkpointer copied them into the file (${statSync(path).size} bytes)`);
  t.same(await db.get('SELECT count(*) AS n FROM t'), { n: 400 });
});

t.test('when a Db checkpoints the usual way then the same rows stay in the WAL (the control)', async (t) => {
  const { db, path } = await opened(t);
  const before = statSync(path).size;
  await fill(db);
  await sleep(300);
  t.ok(statSync(path).size < before + 100_000, 'no background checkpoint without the option');
});

t.test('when the checkpointer runs then a TRUNCATE checkpoint still empties the WAL, and close removes it', async (t) => {
  const path = join(tmpDir(t), 'x.db');
  const db = await Db.open(path, { reader: true, checkpointEveryMs: 1 });
  await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
  for (let round = 0; round < 5; round++) {
    await fill(db);
    await db.checkpointTruncate();
    t.equal(statSync(`${path}-wal`).size, 0, `round ${round}: the WAL is empty`);
  }
  await db.close();
  t.notOk(existsSync(`${path}-wal`), 'the last connection to close took the WAL with it');
  const again = await Db.open(path);
  t.same(await again.get('SELECT count(*) AS n FROM t'), { n: 2000 }, 'every row is there after reopening');
  await again.close();
});
