/**
 * An upgraded appliance's first start announces the migrations it applies before it listens:
 * keys.db's (keystore-2 moves every key, seconds per million) and the server's tables in vault.db,
 * as `vault.migration` log lines, beside messaging's own `messaging.migration`. A real
 * `sigil-server start` child on a data directory whose keys.db has the layout before keystore-2.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Db } from '../../server/vault/db.js';
import { KEYSTORE_MIGRATIONS } from '../../server/vault/keystore.js';
import { runServer, startServer } from '../helpers/server-process.js';

const MESSAGING_004 = 'messaging-004-message-id-found-through-keys';

const tmp = mkdtempSync(join(tmpdir(), 'sigil-migrations-'));
t.teardown(() => rmSync(tmp, { recursive: true, force: true }));

/** The JSON log lines of `stderr` with `msg`. */
function lines(stderr: string, msg: string): Record<string, unknown>[] {
  return stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.msg === msg);
}

t.test('when keys.db predates keystore-2 and vault.db messaging-004 then start logs both migrations, start and end, before it listens; the next start logs none', async (t) => {
  const dir = join(tmp, 'data');
  const init = await runServer(['init', '--data', dir, '--listen', '127.0.0.1:0', '--json']);
  t.equal(init.code, 0, init.stderr);
  // Messaging's tables are made at the first start, not at init.
  const first = await startServer(dir);
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0);
  t.match(lines(first.stderr(), 'messaging.migration'), [{ migration: 'messaging-001-core', phase: 'start' }], 'the first start makes them');

  // An appliance without conversations has no conversation or message keys, so an empty keys.db of
  // the first layout is what an appliance from before keystore-2 would hold at this point.
  const keysDb = join(dir, 'vault', 'keys.db');
  const before = await Db.open(keysDb);
  t.same(await before.all('SELECT 1 FROM message_keys UNION ALL SELECT 1 FROM conversation_keys'), [], 'no keys yet');
  await before.close();
  for (const f of [keysDb, `${keysDb}-wal`, `${keysDb}-shm`]) if (existsSync(f)) rmSync(f);
  const old = await Db.open(keysDb);
  await old.migrate(KEYSTORE_MIGRATIONS.slice(0, 1));
  await old.close();
  // And vault.db as before messaging-004 (that migration only rebuilds msg_messages, so it can run
  // again on today's layout): messaging's start announces it under its own event.
  const vaultDb = await Db.open(join(dir, 'vault', 'vault.db'));
  t.equal((await vaultDb.run('DELETE FROM migrations WHERE id = ?', [MESSAGING_004])).changes, 1);
  await vaultDb.close();

  const s = await startServer(dir);
  const log = s.stderr();
  s.child.kill('SIGTERM');
  t.equal(await s.exited, 0);
  const announced = lines(log, 'vault.migration');
  t.match(announced, [
    { file: 'keys.db', migration: KEYSTORE_MIGRATIONS[1]!.id, phase: 'start' },
    { file: 'keys.db', migration: KEYSTORE_MIGRATIONS[1]!.id, phase: 'done', ms: Number },
  ]);
  t.equal(announced.length, 2, 'only the migration that ran');
  t.match(lines(log, 'messaging.migration'), [
    { file: 'vault.db', migration: MESSAGING_004, phase: 'start' },
    { file: 'vault.db', migration: MESSAGING_004, phase: 'done', ms: Number },
  ]);
  const order = log.trim().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg);
  t.ok(order.lastIndexOf('vault.migration') < order.indexOf('sigil-server listening'), 'announced before the server listens');
  t.ok(order.lastIndexOf('messaging.migration') < order.indexOf('sigil-server listening'), 'messaging too');

  const again = await startServer(dir);
  const log2 = again.stderr();
  again.child.kill('SIGTERM');
  t.equal(await again.exited, 0);
  t.same([...lines(log2, 'vault.migration'), ...lines(log2, 'messaging.migration')], [], 'nothing left to migrate, nothing announced');
});
