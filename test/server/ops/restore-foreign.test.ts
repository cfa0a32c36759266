/**
 * A backup of another appliance is refused by restore, before anything is changed: restoring it
 * would put that appliance's keyring (its issuing CA, TLS and audit keys) under this one's
 * certificates, and — its messages having no key here — destroy every message key of the live
 * keys.db as "made after the backup". Real appliances, real SQLite files, the real command.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import sqlite3 from 'sqlite3';
import { tmpDir } from '../../helpers/tmp.js';
import { live, runOps } from './fixture.js';

function rawAll<T>(path: string, sql: string): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path, sqlite3.OPEN_READONLY, (err) => {
      if (err) return reject(err);
      db.all(sql, (e, rows) => db.close(() => (e ? reject(e) : resolve(rows as T[]))));
    });
  });
}

t.test('when the backup is of another appliance then restore refuses it and the live keys and vault stay as they were', async (t) => {
  const here = await live(t);
  const other = await live(t);
  const conv = (await here.h.as(here.alice)('/v1/conversations/direct', { body: { peer: here.bob.login } })).body.id as string;
  const msg = await here.send(here.alice, conv, 'the minutes of this appliance');
  const out = join(tmpDir(t, 'sigil-foreign-'), 'other.sbk');
  const bk = await runOps(['backup', '--data', other.dataDir, '--out', out]);
  t.equal(bk.code, 0, bk.stderr);
  await other.stopKeepingData();
  await here.stopKeepingData();

  const keysDb = join(here.dataDir, 'vault', 'keys.db');
  const vaultDb = join(here.dataDir, 'vault', 'vault.db');
  const vaultBefore = readFileSync(vaultDb);
  t.same((await rawAll<{ msg_id: string }>(keysDb, 'SELECT msg_id FROM message_keys')).map((r) => r.msg_id), [msg], 'control: the message key exists');

  // Without the other appliance's key the backup does not open (BACKUP_KEY_WRONG, whose message
  // says to give the key it was made under); given it, as the message suggests:
  const r = await runOps(['restore', '--data', here.dataDir, '--in', out, '--yes', '--backup-master-key-file', other.keyFile]);
  t.equal(r.code, 1, r.stderr);
  t.equal(r.error?.code, 'BACKUP_FOREIGN');
  t.match(r.error?.message, /another appliance/);
  t.same((await rawAll<{ msg_id: string }>(keysDb, 'SELECT msg_id FROM message_keys')).map((r) => r.msg_id), [msg], 'the live message key is not destroyed');
  t.ok(readFileSync(vaultDb).equals(vaultBefore), 'vault.db is unchanged');

  const dry = await runOps(['restore', '--data', here.dataDir, '--in', out, '--dry-run', '--backup-master-key-file', other.keyFile]);
  t.equal(dry.error?.code, 'BACKUP_FOREIGN', 'a dry run says so too');
});
