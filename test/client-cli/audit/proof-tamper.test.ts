/**
 * `sigil audit proof SEQ` with the built CLI against a real appliance whose SQLite file is changed
 * while it is stopped:
 * - an auditor's proof recomputes the leaf hash from the entry's data (SHA-256 of 0x00‖data) and
 *   prints what was proven; staff, who may not read entries, are told the content was not checked;
 * - an entry whose data was changed (its stored leaf hash left alone) fails with exit 3
 *   (AUDIT_VERIFY_FAILED) instead of "included";
 * - a deleted audit_log row makes the appliance answer 409 AUDIT_TREE_DAMAGED, which the CLI turns
 *   into exit 3 naming the missing entry instead of "internal error", exit 1.
 */
import t from 'tap';
import { copyFileSync, rmSync } from 'node:fs';
import { leafHash } from '../../../server/audit/index.js';
import { tmpDir } from '../../helpers/tmp.js';
import { auditHarness } from './helpers/harness.js';

const dir = tmpDir(t, 'sigil-cli-proof-');
const h = await auditHarness(t, dir);
const { auditor, staff, officer, vaultDb, raw, rawAll, whileStopped } = h;
const enc = new TextEncoder();
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

// Enough entries that the checkpoint covers 0..5 whatever the logins added.
for (let i = 0; i < 4; i++) await officer.json(['audit', 'room-access', '--pass', `P-${i}`, '--person', 'A B', '--direction', i % 2 ? 'exit' : 'entry']);

/** Changes the stopped appliance's vault.db, runs `check`, and puts the original file back. */
async function withChangedDb(change: () => Promise<void>, check: () => Promise<void>): Promise<void> {
  const backup = `${vaultDb}.orig`;
  await whileStopped(async () => {
    copyFileSync(vaultDb, backup);
    await change();
  });
  try {
    await check();
  } finally {
    await whileStopped(async () => {
      copyFileSync(backup, vaultDb);
      rmSync(backup);
    });
  }
}

t.test('when an auditor proves an entry then the CLI hashes its data itself and says what was proven; staff are told the content was not checked', async (t) => {
  const p = await auditor.json(['audit', 'proof', '3']);
  const [row] = await rawAll<{ data: string }>('SELECT data FROM audit_log WHERE seq = 3');
  t.match(p, { seq: 3, included: true, entryChecked: true, entry: { seq: 3 } });
  t.equal(p.leafData, row!.data);
  t.equal(p.leafHash, b64(leafHash(enc.encode(row!.data))), 'SHA-256(0x00 ‖ data) of the entry as stored');
  t.match(p.proven, /entry 3 as shown/);
  const text = await auditor.run(['audit', 'proof', '3']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /recomputed from the entry/);
  const s = await staff.json(['audit', 'proof', '3']);
  t.match(s, { seq: 3, included: true, entryChecked: false });
  t.notOk('leafData' in s, 'staff never see an entry');
  t.match(s.proven, /not checked/);
});

t.test('when an entry\'s data is changed on the appliance then audit proof exits 3 (AUDIT_VERIFY_FAILED), not "included"', async (t) => {
  await withChangedDb(
    () => raw("UPDATE audit_log SET data = replace(data, '\"type\":\"', '\"type\":\"x') WHERE seq = 3"),
    async () => {
      const [row] = await rawAll<{ data: string }>('SELECT data FROM audit_log WHERE seq = 3');
      t.match(row!.data, /"type":"x/, 'control: the stored entry was changed');
      const r = await auditor.run(['audit', 'proof', '3']);
      t.equal(r.code, 3, `exit 3 (verification), got ${r.code}: ${r.stdout}${r.stderr}`);
      t.match(r.stderr, /entry-mismatch at entry 3: .*the entry was changed/);
      t.notMatch(r.stdout, /included/);
      const j = await auditor.run(['audit', 'proof', '3', '--json']);
      t.equal(j.code, 3);
      t.equal(j.stdout, '', 'no "included": true on stdout');
    },
  );
});

t.test('when an audit_log row is deleted then audit proof of its neighbour exits 3 naming the missing entry, not an internal error', async (t) => {
  await withChangedDb(
    () => raw('DELETE FROM audit_log WHERE seq = 4'),
    async () => {
      for (const cli of [auditor, staff]) {
        const r = await cli.run(['audit', 'proof', '5']);
        t.equal(r.code, 3, `exit 3 (verification), got ${r.code}: ${r.stderr}`);
        t.match(r.stderr, /tree-damaged at entry 5: .*audit entry 4 is missing/);
        t.notMatch(r.stderr, /internal error/i);
      }
    },
  );
});
