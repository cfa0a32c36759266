/**
 * Issue 6's tamper cases with the built `sigil` CLI against a real appliance on 127.0.0.1: with
 * the appliance stopped, the SQLite file is changed with raw sqlite3 (one byte of one entry, a
 * deleted entry, two entries swapped, an edited entry whose leaf hash was recomputed) and
 * `sigil audit verify` fails naming the entry; a forked log rebuilt and re-signed with the real
 * audit key fails the consistency proof against the auditor's saved checkpoint.
 */
import t from 'tap';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog, Checkpointer, auditOrigin, leafHash, type AuditEntry } from '../../../server/audit/index.js';
import { loadConfig, openAppliance, PATHS } from '../../../server/index.js';
import { tmpDir } from '../../helpers/tmp.js';
import { auditHarness } from './helpers/harness.js';

const dir = tmpDir(t, 'sigil-cli-audit-');
const h = await auditHarness(t, dir);
const { auditor, officer, dataDir, vaultDb, raw, rawAll, whileStopped } = h;

await t.test('when nothing was touched then verify passes and the checkpoint is saved', async (t) => {
  await officer.json(['audit', 'room-access', '--pass', 'P-1', '--person', 'A B', '--direction', 'entry']);
  const cp = await auditor.json(['audit', 'checkpoint']);
  t.ok(cp.size > 6);
  const v = await auditor.run(['audit', 'verify']);
  t.equal(v.code, 0, v.stderr);
});

/** Runs one tamper case on a copy of the database and restores the original afterwards. */
async function tamperCase(name: string, change: () => Promise<void>, expect: RegExp): Promise<void> {
  await t.test(name, async (t) => {
    const backup = `${vaultDb}.orig`;
    await whileStopped(async () => {
      copyFileSync(vaultDb, backup);
      await change();
    });
    try {
      const r = await auditor.run(['audit', 'verify']);
      t.equal(r.code, 3, `exit 3 (verification), got ${r.code}: ${r.stderr}`);
      t.match(r.stderr, expect);
    } finally {
      await whileStopped(async () => {
        copyFileSync(backup, vaultDb);
        rmSync(backup);
      });
    }
  });
}

await tamperCase(
  'when one byte of one stored entry is changed then verify fails naming that entry',
  () => raw("UPDATE audit_log SET data = replace(data, '\"type\":\"', '\"type\":\"x') WHERE seq = 5"),
  /leaf-hash-mismatch at entry 5/,
);

await tamperCase('when an entry is deleted then verify fails naming it', () => raw('DELETE FROM audit_log WHERE seq = 6'), /sequence-gap at entry 6/);

await tamperCase(
  'when two entries are swapped then verify fails naming the first',
  async () => {
    await raw('UPDATE audit_log SET seq = -1 WHERE seq = 3');
    await raw('UPDATE audit_log SET seq = 3 WHERE seq = 4');
    await raw('UPDATE audit_log SET seq = 4 WHERE seq = -1');
  },
  /seq-mismatch at entry 3/,
);

await tamperCase(
  'when an entry is edited and its leaf hash recomputed then the signed checkpoint places the change',
  async () => {
    const [row] = await rawAll<{ data: string }>('SELECT data FROM audit_log WHERE seq = 2');
    const data = row!.data.replace('"type":"', '"type":"x');
    await raw('UPDATE audit_log SET data = ?, leaf_hash = ? WHERE seq = 2', [data, Buffer.from(leafHash(new TextEncoder().encode(data)))]);
  },
  /(checkpoint-mismatch|inconsistent) at entry 0: .*entries 0\.\.\d+ was changed/,
);

await t.test('when the attacker rebuilds the log with one entry changed and re-signs it with the audit key then the saved checkpoint catches the fork', async (t) => {
  const saved = JSON.parse(readFileSync(join(auditor.profile, 'audit', 'checkpoint.json'), 'utf8'));
  await whileStopped(async () => {
    // The attacker owns the appliance: master key, audit key, database.
    const config = await loadConfig(join(dataDir, PATHS.config));
    const appliance = await openAppliance({ dataDir, config, masterKey: { keyFilePath: join(dataDir, PATHS.masterKeyFile) } });
    try {
      const db = appliance.vault.db;
      const log = await AuditLog.open(db);
      const entries: AuditEntry[] = await log.entries(0, await log.size());
      await db.exec('DELETE FROM audit_log; DELETE FROM audit_nodes; UPDATE audit_head SET size = 0, root = x\'\'; DELETE FROM audit_checkpoints;');
      await log.append(
        entries.map((e, i) => ({
          type: e.type,
          at: new Date(e.at),
          ...(e.actor !== undefined ? { actor: i === 2 ? 'someone-else' : e.actor } : {}),
          ...(e.subject !== undefined ? { subject: e.subject } : {}),
          ...(e.data !== undefined ? { data: e.data } : {}),
        })),
      );
      t.ok((await log.verify()).ok, 'the forged log is internally consistent');
      const cp = await Checkpointer.open({ db, log, origin: auditOrigin(appliance.meta.org), cert: appliance.auditCert, key: appliance.auditKey, chain: [appliance.issuingCert] });
      const signed = await cp.current();
      t.equal(signed.size, saved.size);
      t.not(Buffer.from(signed.root).toString('base64'), saved.root, 'a different root, validly signed');
    } finally {
      await appliance.close();
    }
  });
  // Without the saved checkpoint the forged log looks fine: that is what saving one is for.
  const blind = await auditor.run(['audit', 'verify', '--since', join(dir, 'missing.json')]);
  t.equal(blind.code, 1);
  t.match(blind.stderr, /does not exist/);
  const r = await auditor.run(['audit', 'verify']);
  t.equal(r.code, 3, r.stderr);
  t.match(r.stderr, /inconsistent/);
  const c = await auditor.run(['audit', 'checkpoint']);
  t.equal(c.code, 3, 'the saved checkpoint is not replaced by a forked one');
  t.match(c.stderr, /history was rewritten|inconsistent/);
  const stillSaved = JSON.parse(readFileSync(join(auditor.profile, 'audit', 'checkpoint.json'), 'utf8'));
  t.equal(stillSaved.root, saved.root);
});
