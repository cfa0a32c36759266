/**
 * The row cache (server/vault/row-cache.ts) over a real SQLite file with a reader connection, as
 * the appliance opens its vault: a cached row is never staler than a fresh read would be — not
 * while a write is uncommitted, not after a rollback, not when a read races a write — and
 * Db.whenSettled runs at the end of the outermost transaction.
 */
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Db, RowCache } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

interface Row {
  a: number;
  b: string;
}

async function opened(t: Test): Promise<{ db: Db; cache: RowCache<number, Row>; read: (a: number) => Promise<Row | undefined>; loads: () => number }> {
  const db = await Db.open(join(tmpDir(t), 'c.db'), { reader: true });
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)');
  await db.run("INSERT INTO t VALUES (1, 'one')");
  const cache = new RowCache<number, Row>(100);
  let loads = 0;
  const read = (a: number): Promise<Row | undefined> =>
    cache.read(a, () => {
      loads++;
      return db.get<Row>('SELECT a, b FROM t WHERE a = ?', [a]);
    });
  return { db, cache, read, loads: () => loads };
}

const set = (db: Db | Parameters<Parameters<Db['transaction']>[0]>[0], cache: RowCache<number, Row>, a: number, b: string) =>
  cache.write(db, a, () => db.run('UPDATE t SET b = ? WHERE a = ?', [b, a]));

t.test('when a row is read twice then the second read is served from memory, frozen', async (t) => {
  const { read, loads } = await opened(t);
  const first = await read(1);
  const second = await read(1);
  t.same(second, { a: 1, b: 'one' });
  t.equal(loads(), 1, 'one SELECT for two reads');
  t.ok(Object.isFrozen(first) && first === second, 'every caller shares one frozen row');
  t.equal(await read(2), undefined, 'a missing row reads as undefined');
  await read(2);
  t.equal(loads(), 3, 'a missing row is not cached (a row created later must be found)');
});

t.test('when a row is written outside a transaction then the next read sees the new value', async (t) => {
  const { db, cache, read, loads } = await opened(t);
  await read(1);
  await set(db, cache, 1, 'uno');
  t.same(await read(1), { a: 1, b: 'uno' });
  t.equal(loads(), 2);
});

t.test('when a write transaction is open then reads outside it see the committed row and store nothing; after the commit they see the new one', async (t) => {
  const { db, cache, read } = await opened(t);
  await read(1);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let written = false;
  const tx = db.transaction(async (tx) => {
    await set(tx, cache, 1, 'uno');
    written = true;
    await gate;
  });
  while (!written) await new Promise((r) => setTimeout(r, 5));
  t.same(await read(1), { a: 1, b: 'one' }, 'the reader sees the committed row, as SQLite does');
  t.equal(cache.size, 0, 'nothing is stored while the write is unsettled');
  release();
  await tx;
  t.same(await read(1), { a: 1, b: 'uno' }, 'the committed write is seen at once');
});

t.test('when a transaction that wrote a row rolls back then the uncommitted value it read is never served', async (t) => {
  const { db, cache, read } = await opened(t);
  await read(1);
  let insideSaw: Row | undefined;
  await t.rejects(
    db.transaction(async (tx) => {
      await set(tx, cache, 1, 'uno');
      insideSaw = await read(1); // inside: the writer's connection, the uncommitted value
      throw new Error('abort');
    }),
    /abort/,
  );
  t.same(insideSaw, { a: 1, b: 'uno' }, 'inside the transaction its own write was visible');
  t.same(await read(1), { a: 1, b: 'one' }, 'after the rollback the committed row, not the uncommitted one');
});

t.test('when a read started before a write ends after it then its (old) row is not stored', async (t) => {
  const { db, cache } = await opened(t);
  let finishLoad!: (r: Row) => void;
  const slow = cache.read(1, () => new Promise<Row>((r) => (finishLoad = r)));
  await set(db, cache, 1, 'uno');
  finishLoad({ a: 1, b: 'one' }); // what the read saw before the write
  t.same(await slow, { a: 1, b: 'one' }, 'the racing read answers what it read');
  t.equal(cache.size, 0, 'but does not keep it');
  let loads = 0;
  const fresh = await cache.read(1, () => (loads++, db.get<Row>('SELECT a, b FROM t WHERE a = ?', [1])));
  t.same(fresh, { a: 1, b: 'uno' });
  t.equal(loads, 1, 'the next read goes to the database');
});

t.test('when every row is written (key undefined) then every cached row is dropped', async (t) => {
  const { db, cache, read, loads } = await opened(t);
  await db.run("INSERT INTO t VALUES (2, 'two')");
  await read(1);
  await read(2);
  await cache.write(db, undefined, () => db.run("UPDATE t SET b = b || '!'"));
  t.same([await read(1), await read(2)], [{ a: 1, b: 'one!' }, { a: 2, b: 'two!' }]);
  t.equal(loads(), 4);
});

t.test('whenSettled runs at once outside a transaction, and at the end of the outermost one inside (savepoints included)', async (t) => {
  const { db } = await opened(t);
  const log: string[] = [];
  db.whenSettled(() => log.push('outside'));
  t.same(log, ['outside']);
  await db.transaction(async (tx) => {
    tx.whenSettled(() => log.push('handle'));
    db.whenSettled(() => log.push('context'));
    await db.transaction(async (sp) => {
      sp.whenSettled(() => log.push('savepoint'));
    });
    t.same(log, ['outside'], 'a released savepoint has not settled anything');
    await t.rejects(
      db.transaction(async (sp) => {
        sp.whenSettled(() => log.push('rolled-back savepoint'));
        throw new Error('inner');
      }),
    );
    t.same(log, ['outside'], 'nor has a savepoint rolled back alone');
    log.push('commit next');
  });
  t.same(log, ['outside', 'commit next', 'handle', 'context', 'savepoint', 'rolled-back savepoint']);
  await t.rejects(
    db.transaction(async () => {
      db.whenSettled(() => log.push('after rollback'));
      throw new Error('x');
    }),
  );
  t.equal(log.at(-1), 'after rollback', 'a rollback settles too');
});
