/**
 * The read-only second connection of a `reader: true` Db (server/vault/db.ts): SELECTs outside a
 * transaction do not wait for a write transaction and see only committed rows; reads inside a
 * transaction see its own writes; writes that return rows stay on the writer; a TRUNCATE
 * checkpoint waits for reads in flight instead of failing.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import { Db } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

async function opened(t: Test): Promise<Db> {
  const db = await Db.open(join(tmpDir(t), 'r.db'), { reader: true });
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)');
  await db.run("INSERT INTO t VALUES (1, 'one')");
  return db;
}

t.test('when a write transaction is open then a SELECT outside it answers at once with committed rows only', async (t) => {
  const db = await opened(t);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let insideSaw: unknown;
  const tx = db.transaction(async (tx) => {
    await tx.run("INSERT INTO t VALUES (2, 'two')");
    insideSaw = await db.get('SELECT count(*) AS n FROM t'); // inside: the writer, own writes visible
    await gate;
  });
  // Wait until the transaction has written.
  while (insideSaw === undefined) await new Promise((r) => setTimeout(r, 5));
  const outside = await db.get<{ n: number }>('SELECT count(*) AS n FROM t');
  t.same(outside, { n: 1 }, 'the reader does not wait and does not see the uncommitted row');
  t.same(insideSaw, { n: 2 }, 'a read inside the transaction sees its own write');
  release();
  await tx;
  t.same(await db.get('SELECT count(*) AS n FROM t'), { n: 2 }, 'committed rows are visible to the reader');
});

t.test('when a statement that writes returns rows then it runs on the writer', async (t) => {
  const db = await opened(t);
  t.same(await db.get("INSERT INTO t VALUES (3, 'three') RETURNING a"), { a: 3 });
  t.same(await db.all('DELETE FROM t WHERE a = 3 RETURNING b'), [{ b: 'three' }]);
  t.same(await db.all('  select a from t order by a'), [{ a: 1 }], 'a lower-case SELECT reads');
});

t.test('when reads are in flight then a TRUNCATE checkpoint still empties the WAL', async (t) => {
  const db = await opened(t);
  for (let i = 10; i < 200; i++) await db.run('INSERT INTO t VALUES (?, ?)', [i, 'x'.repeat(500)]);
  const reads = Array.from({ length: 100 }, () => db.all('SELECT * FROM t'));
  await db.checkpointTruncate();
  t.equal(statSync(`${db.path}-wal`).size, 0, 'WAL truncated');
  t.equal((await Promise.all(reads)).every((r) => r.length === 191), true, 'every read answered');
});

t.test('when the database is closed with reads in flight then they finish and later reads fail cleanly', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'c.db'), { reader: true });
  await db.exec('CREATE TABLE t (a INTEGER)');
  const reads = Array.from({ length: 20 }, () => db.all('SELECT * FROM t'));
  await db.close();
  t.equal((await Promise.all(reads)).length, 20);
  await t.rejects(db.get('SELECT 1'), { code: 'VAULT_CLOSED' });
});

t.test('when lookups run on the reader beside a write then a read after the commit sees the write', async (t) => {
  // A `get` used to step its statement and reset it in a second round trip; between the two the
  // reader connection held a read snapshot, and every other read on it shared that snapshot. A
  // row committed in that window was invisible to the next read: an officer's POST /v1/users
  // answered 404 ACCOUNT_NOT_FOUND for the account it had just created (seen in bench/messages).
  const db = await opened(t);
  let stale = 0;
  let stop = false;
  const lookups = (async () => {
    while (!stop) await Promise.all(Array.from({ length: 8 }, () => db.get('SELECT b FROM t WHERE a = 1')));
  })();
  for (let i = 100; i < 400; i++) {
    await db.transaction(async (tx) => tx.run('INSERT INTO t VALUES (?, ?)', [i, 'new']));
    const [row] = await db.all<{ b: string }>('SELECT b FROM t WHERE a = ?', [i]);
    if (row?.b !== 'new') stale++;
  }
  stop = true;
  await lookups;
  t.equal(stale, 0, 'every committed row was visible to the read that followed its commit');
});

t.test('when the reader needs temporary storage then it is memory, never a file in the temp folder', async (t) => {
  // A large sort or temporary b-tree on the reader spilled to a temp file: the writers set
  // temp_store = MEMORY, the reader did not.
  const db = await opened(t);
  t.same(await db.get('SELECT temp_store FROM pragma_temp_store'), { temp_store: 2 }, 'the reader answers: MEMORY');
  t.same(await db.get('SELECT query_only FROM pragma_query_only'), { query_only: 1 }, 'control: this is the read-only connection');
});
