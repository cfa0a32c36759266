import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Db, VaultError } from '../../../server/vault/index.js';
import { tmpDir } from '../../helpers/tmp.js';

async function rejectsCode(t: Test, p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p;
    t.fail(`expected ${code}, nothing was thrown`);
  } catch (err) {
    t.type(err, VaultError, 'a VaultError');
    t.equal((err as VaultError).code, code);
    t.ok((err as Error).cause !== undefined || code === 'VAULT_CLOSED' || code.startsWith('VAULT_CHECKPOINT') || code === 'VAULT_PRAGMA', 'cause kept');
  }
}

t.test('when a database is opened then the security pragmas read back and the file is 0600', async (t) => {
  const dir = tmpDir(t);
  const db = await Db.open(join(dir, 'a.db'));
  t.teardown(() => db.close());
  t.same(await db.get('PRAGMA secure_delete'), { secure_delete: 1 });
  t.same(await db.get('PRAGMA journal_mode'), { journal_mode: 'wal' });
  t.same(await db.get('PRAGMA foreign_keys'), { foreign_keys: 1 });
  t.same(await db.get('PRAGMA temp_store'), { temp_store: 2 }, 'MEMORY');
  t.same(await db.get('PRAGMA synchronous'), { synchronous: 2 }, 'FULL');
  await db.exec('CREATE TABLE t (a INTEGER)');
  await db.run('INSERT INTO t VALUES (1)');
  t.equal(statSync(join(dir, 'a.db')).mode & 0o777, 0o600);
  t.equal(statSync(join(dir, 'a.db-wal')).mode & 0o777, 0o600, 'the WAL inherits the mode');
});

t.test('when a page size is asked for then a new file gets it and an existing file keeps its own', async (t) => {
  const dir = tmpDir(t);
  const fresh = await Db.open(join(dir, 'new.db'), { pageSize: 8192 });
  await fresh.exec('CREATE TABLE t (a INTEGER)');
  t.same(await fresh.get('PRAGMA page_size'), { page_size: 8192 }, 'the new file has the page size asked for');
  t.equal(await fresh.pageSize(), 8192, 'pageSize() reads it');
  t.same(await fresh.get('PRAGMA journal_mode'), { journal_mode: 'wal' });
  await fresh.close();

  const old = await Db.open(join(dir, 'old.db'));
  await old.exec('CREATE TABLE t (a INTEGER)');
  await old.run('INSERT INTO t VALUES (42)');
  await old.close();
  const reopened = await Db.open(join(dir, 'old.db'), { pageSize: 8192 });
  t.teardown(() => reopened.close());
  t.same(await reopened.get('PRAGMA page_size'), { page_size: 4096 }, 'a file made before keeps 4096');
  t.equal(await reopened.pageSize(), 4096);
  t.same(await reopened.get('SELECT a FROM t'), { a: 42 }, 'and its rows');
  await reopened.run('INSERT INTO t VALUES (43)');
  t.same(await reopened.get('SELECT count(*) AS n FROM t'), { n: 2 }, 'and takes writes');
});

t.test('when a cache size and checkpoint interval are asked for then the connection has them, and nonsense is refused', async (t) => {
  const dir = tmpDir(t);
  const plain = await Db.open(join(dir, 'plain.db'));
  t.same(await plain.get('PRAGMA cache_size'), { cache_size: -2000 }, "SQLite's default without them");
  t.same(await plain.get('PRAGMA wal_autocheckpoint'), { wal_autocheckpoint: 1000 });
  await plain.close();
  const tuned = await Db.open(join(dir, 'tuned.db'), { cacheKiB: 4096, walAutocheckpointPages: 3000 });
  t.teardown(() => tuned.close());
  t.same(await tuned.get('PRAGMA cache_size'), { cache_size: -4096 });
  t.same(await tuned.get('PRAGMA wal_autocheckpoint'), { wal_autocheckpoint: 3000 });
  for (const bad of [{ cacheKiB: 0 }, { cacheKiB: -5 }, { walAutocheckpointPages: 1.5 }, { pageSize: Number.NaN }]) {
    await t.rejects(Db.open(join(dir, 'bad.db'), bad), RangeError, JSON.stringify(bad));
  }
});

t.test('when 1,000 rows are inserted in one transaction with a prepared statement then all are committed', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER, b BLOB)');
  const started = performance.now();
  const n = await db.transaction(async (tx) => {
    const ins = await tx.prepare('INSERT INTO t VALUES (?, ?)');
    for (let i = 0; i < 1000; i++) await ins.run([i, new Uint8Array(64).fill(i & 0xff)]);
    await ins.finalize();
    return 1000;
  });
  t.comment(`1,000 inserts in ${(performance.now() - started).toFixed(0)} ms`);
  t.equal(n, 1000);
  t.same(await db.get('SELECT count(*) AS n, sum(a) AS s FROM t'), { n: 1000, s: 499500 });
  const row = await db.get<{ b: Uint8Array }>('SELECT b FROM t WHERE a = 7');
  t.same([...row!.b.subarray(0, 2)], [7, 7], 'blobs round-trip');
});

t.test('when the transaction callback throws then nothing it wrote is committed', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER)');
  await t.rejects(
    db.transaction(async (tx) => {
      await tx.run('INSERT INTO t VALUES (1)');
      throw new Error('boom');
    }),
    { message: 'boom' },
  );
  t.same(await db.get('SELECT count(*) AS n FROM t'), { n: 0 });
});

t.test('when a statement is issued outside a transaction while one is open then it waits and is not rolled back with it', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a TEXT)');
  let outsideDone = false;
  // The outside statement's continuation is created here, outside the transaction's async
  // context, as a concurrent request's would be; the transaction only fires it.
  let fire!: () => void;
  const fired = new Promise<void>((r) => (fire = r));
  const outside = fired.then(() => db.run("INSERT INTO t VALUES ('outside')")).then(() => (outsideDone = true));
  const tx = db.transaction(async (tx) => {
    await tx.run("INSERT INTO t VALUES ('inside')");
    fire();
    await sleep(50);
    t.equal(outsideDone, false, 'the outside statement is still waiting while the transaction is open');
    throw new Error('roll back');
  });
  await t.rejects(tx);
  await outside;
  t.same(await db.all('SELECT a FROM t'), [{ a: 'outside' }]);
});

t.test('when db methods and a nested transaction are used inside a transaction then they join it as a savepoint', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a TEXT)');
  await db.transaction(async (tx) => {
    await db.run("INSERT INTO t VALUES ('via-db')"); // would deadlock without the async context
    await tx.run("INSERT INTO t VALUES ('via-tx')");
    await t.rejects(
      db.transaction(async (inner) => {
        await inner.run("INSERT INTO t VALUES ('inner')");
        throw new Error('inner fails');
      }),
    );
    await db.transaction((inner) => inner.run("INSERT INTO t VALUES ('inner-ok')"));
  });
  t.same((await db.all<{ a: string }>('SELECT a FROM t ORDER BY a')).map((r) => r.a), ['inner-ok', 'via-db', 'via-tx']);
});

t.test('when a transaction handle is used after the transaction then VAULT_CLOSED', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER)');
  const leaked = await db.transaction(async (tx) => tx);
  await rejectsCode(t, leaked.run('INSERT INTO t VALUES (1)'), 'VAULT_CLOSED');
});

t.test('when the Db or a statement is used after close then VAULT_CLOSED', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  await db.exec('CREATE TABLE t (a INTEGER)');
  const st = await db.prepare('SELECT a FROM t');
  await db.close();
  await db.close(); // idempotent
  await rejectsCode(t, db.get('SELECT 1'), 'VAULT_CLOSED');
  await rejectsCode(t, st.all(), 'VAULT_CLOSED');
});

t.test('when migrate runs twice then each migration applies once', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  const ms = [
    { id: 'm1', sql: 'CREATE TABLE a (x INTEGER)' },
    { id: 'm2', sql: 'CREATE TABLE b (y INTEGER); INSERT INTO b VALUES (1)' },
  ];
  await db.migrate(ms);
  await db.migrate(ms);
  t.same(await db.all('SELECT id FROM migrations ORDER BY id'), [{ id: 'm1' }, { id: 'm2' }]);
  t.same(await db.get('SELECT count(*) AS n FROM b'), { n: 1 });
});

t.test('when migrations run then onApply hears each one before and after, and nothing for those applied', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  const heard: string[] = [];
  const onApply = (id: string, phase: 'start' | 'done', ms?: number): void => {
    heard.push(`${id}:${phase}${ms === undefined ? '' : Number.isInteger(ms) && ms >= 0 ? ':ms' : ':bad'}`);
  };
  await db.migrate([{ id: 'm1', sql: 'CREATE TABLE a (x INTEGER)' }], { onApply });
  await db.migrate([{ id: 'm1', sql: 'CREATE TABLE a (x INTEGER)' }, { id: 'm2', sql: 'CREATE TABLE b (y INTEGER)' }], { onApply });
  t.same(heard, ['m1:start', 'm1:done:ms', 'm2:start', 'm2:done:ms']);
  await rejectsCode(t, db.migrate([{ id: 'm3', sql: 'CREATE TABLE a (x INTEGER)' }], { onApply }), 'VAULT_SQL');
  t.same(heard.slice(4), ['m3:start'], 'a failed migration is announced and never reported done');
});

t.test('when checkpointTruncate runs then the WAL file is empty', async (t) => {
  const dir = tmpDir(t);
  const db = await Db.open(join(dir, 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a TEXT)');
  await db.run("INSERT INTO t VALUES ('x')");
  t.ok(statSync(join(dir, 'a.db-wal')).size > 0, 'the WAL holds frames before');
  await db.checkpointTruncate();
  t.equal(statSync(join(dir, 'a.db-wal')).size, 0);
});

t.test('when a reader pins the WAL then checkpointTruncate reports VAULT_CHECKPOINT_INCOMPLETE', async (t) => {
  const path = join(tmpDir(t), 'a.db');
  const a = await Db.open(path, { busyTimeoutMs: 50 });
  const b = await Db.open(path, { busyTimeoutMs: 50 });
  t.teardown(async () => {
    await b.close();
    await a.close();
  });
  await a.exec('CREATE TABLE t (a TEXT)');
  await a.run("INSERT INTO t VALUES ('1')");
  await b.exec('BEGIN');
  await b.get('SELECT * FROM t'); // b now holds a read snapshot
  await a.run("INSERT INTO t VALUES ('2')");
  await rejectsCode(t, a.checkpointTruncate(), 'VAULT_CHECKPOINT_INCOMPLETE');
  await b.exec('COMMIT');
  await a.checkpointTruncate();
});

t.test('when backupTo runs during writes then the copy is a consistent 0600 database', async (t) => {
  const dir = tmpDir(t);
  const db = await Db.open(join(dir, 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER)');
  await db.transaction(async (tx) => {
    for (let i = 0; i < 100; i++) await tx.run('INSERT INTO t VALUES (?)', [i]);
  });
  const writes = db.transaction(async (tx) => {
    for (let i = 100; i < 200; i++) await tx.run('INSERT INTO t VALUES (?)', [i]);
  });
  const dest = join(dir, 'copy.db');
  await Promise.all([writes, db.backupTo(dest)]);
  t.equal(statSync(dest).mode & 0o777, 0o600);
  const copy = await Db.open(dest, { readonly: true });
  const { n } = (await copy.get<{ n: number }>('SELECT count(*) AS n FROM t'))!;
  await copy.close();
  t.ok(n === 100 || n === 200, `a whole transaction or none (got ${n})`);
});

t.test('when the backup destination cannot be created then VAULT_BACKUP_FAILED', async (t) => {
  const dir = tmpDir(t);
  const db = await Db.open(join(dir, 'a.db'));
  t.teardown(() => db.close());
  await rejectsCode(t, db.backupTo(join(dir, 'missing', 'copy.db')), 'VAULT_BACKUP_FAILED');
});

t.test('when the page limit is reached then VAULT_FULL and the batch is rolled back', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (b BLOB)');
  await db.run('INSERT INTO t VALUES (zeroblob(100))');
  await db.get('PRAGMA max_page_count = 20');
  await rejectsCode(
    t,
    db.transaction(async (tx) => {
      for (let i = 0; i < 100; i++) await tx.run('INSERT INTO t VALUES (zeroblob(4000))');
    }),
    'VAULT_FULL',
  );
  t.same(await db.get('SELECT count(*) AS n FROM t'), { n: 1 }, 'nothing of the batch remains');
});

t.test('when the file system is really full then VAULT_FULL', async (t) => {
  const mnt = join(tmpDir(t), 'small');
  mkdirSync(mnt);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { stdio: 'ignore' });
  } catch {
    t.plan(0, 'mounting a small tmpfs is not permitted here; the page-limit test covers VAULT_FULL');
    return;
  }
  t.teardown(() => {
    execFileSync('umount', [mnt]);
    rmdirSync(mnt);
  });
  const db = await Db.open(join(mnt, 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (b BLOB)');
  await rejectsCode(
    t,
    db.transaction(async (tx) => {
      for (let i = 0; i < 200; i++) await tx.run('INSERT INTO t VALUES (randomblob(4000))');
    }),
    'VAULT_FULL',
  );
});

t.test('when the WAL path is a directory then VAULT_IO', async (t) => {
  const path = join(tmpDir(t), 'a.db');
  mkdirSync(`${path}-wal`); // the OS refuses SQLite's WAL writes: a real I/O failure
  await rejectsCode(t, Db.open(path), 'VAULT_IO');
});

t.test('when the file is not a database then VAULT_CORRUPT', async (t) => {
  const path = join(tmpDir(t), 'a.db');
  writeFileSync(path, Buffer.alloc(8192, 0x5a));
  await rejectsCode(t, Db.open(path), 'VAULT_CORRUPT');
});

t.test('when another connection holds the write lock past the busy timeout then VAULT_LOCKED', async (t) => {
  const path = join(tmpDir(t), 'a.db');
  const a = await Db.open(path);
  const b = await Db.open(path, { busyTimeoutMs: 50 });
  t.teardown(async () => {
    await b.close();
    await a.close();
  });
  await a.exec('CREATE TABLE t (a INTEGER)');
  let release!: () => void;
  let locked!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const isLocked = new Promise<void>((r) => (locked = r));
  const tx = a.transaction(async (tx) => {
    await tx.run('INSERT INTO t VALUES (1)');
    locked();
    await held;
  });
  await isLocked;
  await rejectsCode(t, b.run('INSERT INTO t VALUES (2)'), 'VAULT_LOCKED');
  release();
  await tx;
});

t.test('when a unique constraint is violated then VAULT_CONSTRAINT', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER PRIMARY KEY)');
  await db.run('INSERT INTO t VALUES (1)');
  await rejectsCode(t, db.run('INSERT INTO t VALUES (1)'), 'VAULT_CONSTRAINT');
});

t.test('when the parent directory does not exist then VAULT_OPEN', async (t) => {
  await rejectsCode(t, Db.open(join(tmpDir(t), 'nope', 'a.db')), 'VAULT_OPEN');
});

t.test('when a read-only connection writes then VAULT_READONLY', async (t) => {
  const path = join(tmpDir(t), 'a.db');
  const w = await Db.open(path);
  await w.exec('CREATE TABLE t (a INTEGER)');
  await w.close();
  const r = await Db.open(path, { readonly: true });
  t.teardown(() => r.close());
  await rejectsCode(t, r.run('INSERT INTO t VALUES (1)'), 'VAULT_READONLY');
});

t.test('when SQL is invalid then VAULT_SQL naming the statement', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'a.db'));
  t.teardown(() => db.close());
  await rejectsCode(t, db.run('INSERT INTO nowhere VALUES (1)'), 'VAULT_SQL');
  await t.rejects(db.run('SELEKT 1'), /SELEKT 1/);
});

t.test('when an in-memory database is opened then VAULT_PRAGMA (it cannot be WAL)', async (t) => {
  await rejectsCode(t, Db.open(':memory:'), 'VAULT_PRAGMA');
});

t.test('when work runs within a transaction then it is part of it (no savepoint) and outside it is its own', async (t) => {
  const db = await Db.open(join(tmpDir(t), 'w.db'));
  t.teardown(() => db.close());
  await db.exec('CREATE TABLE t (a INTEGER)');
  // Inside: a failure of the joined work, let through, rolls back the caller's writes too.
  await t.rejects(
    db.transaction(async (tx) => {
      await tx.run('INSERT INTO t VALUES (1)');
      await db.within(async (w) => {
        await w.run('INSERT INTO t VALUES (2)');
        throw new Error('joined work failed');
      });
    }),
    /joined work failed/,
  );
  t.same(await db.all('SELECT a FROM t'), [], 'nothing of the transaction stayed');
  // A nested transaction() is a savepoint: its own failure, caught, leaves the caller's writes.
  await db.transaction(async (tx) => {
    await tx.run('INSERT INTO t VALUES (1)');
    await db.transaction(async (sp) => sp.run('INSERT INTO t VALUES (2)').then(() => Promise.reject(new Error('sp'))))
      .catch(() => undefined);
  });
  t.same(await db.all('SELECT a FROM t'), [{ a: 1 }], 'the savepoint rolled back alone');
  // Outside a transaction, within is one.
  await db.within(async (w) => w.run('INSERT INTO t VALUES (3)'));
  t.same(await db.all('SELECT a FROM t ORDER BY a'), [{ a: 1 }, { a: 3 }]);
});
