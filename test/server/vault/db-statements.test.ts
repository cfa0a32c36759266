/**
 * The prepared-statement cache of server/vault/db.ts: repeated queries answer like fresh ones,
 * a `get` leaves no read snapshot behind (a TRUNCATE checkpoint still empties the WAL), a
 * statement that failed to compile is not cached, and eviction past the cache size is harmless.
 */
import t from 'tap';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Db } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

for (const reader of [false, true]) {
  t.test(`when the same queries repeat (reader ${reader}) then each answers from the current data`, async (t) => {
    const db = await Db.open(join(tmpDir(t), 's.db'), { reader });
    t.teardown(() => db.close());
    await db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)');
    for (let i = 1; i <= 5; i++) await db.run('INSERT INTO t VALUES (?, ?)', [i, `v${i}`]);
    // No parameters: a cached statement that ran to completion must run again, not answer nothing.
    t.same(await db.get('SELECT count(*) AS n FROM t'), { n: 5 });
    t.same(await db.get('SELECT count(*) AS n FROM t'), { n: 5 }, 'second time too');
    await db.run('INSERT INTO t VALUES (6, ?)', ['v6']);
    t.same(await db.get('SELECT count(*) AS n FROM t'), { n: 6 }, 'sees the new row');
    // A get over many rows takes the first and leaves no snapshot open.
    t.same(await db.get('SELECT a FROM t ORDER BY a'), { a: 1 });
    t.same(await db.get('SELECT a FROM t ORDER BY a'), { a: 1 }, 'starts from the first row again');
    await db.checkpointTruncate();
    t.equal(statSync(`${db.path}-wal`).size, 0, 'no reader snapshot blocks the checkpoint');
    t.same(await db.get('INSERT INTO t VALUES (7, ?) RETURNING a', ['v7']), { a: 7 });
    await db.run('UPDATE t SET b = ? WHERE a > ? RETURNING a', ['x', 5]);
    await db.checkpointTruncate();
    t.same(await db.all('SELECT b FROM t WHERE a > 5 ORDER BY a'), [{ b: 'x' }, { b: 'x' }], 'the RETURNING write completed');
  });
}

t.test('when SQL does not compile then the error is typed, and the same text works once the table exists', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'e.db'), { reader: true });
  t.teardown(() => db.close());
  await t.rejects(db.get('SELECT * FROM later'), { code: 'VAULT_SQL' });
  await db.exec('CREATE TABLE later (x INTEGER)');
  await db.run('INSERT INTO later VALUES (1)');
  t.same(await db.get('SELECT * FROM later'), { x: 1 }, 'a failed prepare was not cached');
  await t.rejects(db.run('INSERT INTO later VALUES (?, ?)', [1, 2]), { code: 'VAULT_SQL' });
  t.same(await db.all('SELECT * FROM later'), [{ x: 1 }]);
});

t.test('when more distinct statements run than the cache holds then all answer and the database closes cleanly', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'm.db'), { reader: true });
  await db.exec('CREATE TABLE t (a INTEGER)');
  await db.run('INSERT INTO t VALUES (1)');
  const answers = await Promise.all(Array.from({ length: 600 }, (_, i) => db.get<{ v: number }>(`SELECT a + ${i} AS v FROM t`)));
  t.same(answers.map((r) => r!.v), Array.from({ length: 600 }, (_, i) => 1 + i));
  await db.close();
  t.equal(db.closed, true);
});

t.test('when many callers run the same SQL at once with different parameters then each gets its own row', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'c.db'), { reader: true });
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)');
  await db.transaction(async (tx) => {
    for (let i = 0; i < 300; i++) await tx.run('INSERT INTO t VALUES (?, ?)', [i, `v${i}`]);
  });
  const gets = await Promise.all(Array.from({ length: 300 }, (_, i) => db.get<{ b: string }>('SELECT b FROM t WHERE a = ?', [i])));
  t.same(gets.map((r) => r?.b), Array.from({ length: 300 }, (_, i) => `v${i}`), 'get: no answer crossed to another caller');
  const alls = await Promise.all(Array.from({ length: 300 }, (_, i) => db.all<{ b: string }>('SELECT b FROM t WHERE a >= ? AND a < ?', [i, i + 2])));
  t.same(alls.map((r) => r.map((x) => x.b).join()), Array.from({ length: 300 }, (_, i) => (i < 299 ? `v${i},v${i + 1}` : `v${i}`)), 'all: likewise');
  await db.checkpointTruncate();
});
