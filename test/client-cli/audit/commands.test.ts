/**
 * `sigil audit` commands with the built CLI against a real appliance: room access (officer),
 * checkpoint saved and extended by a verified consistency proof, verify, events with filters,
 * inclusion proofs for staff, and an export that verifies offline with the appliance stopped.
 */
import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { profileRunner } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { auditHarness } from './helpers/harness.js';

const dir = tmpDir(t, 'sigil-cli-audit-');
const h = await auditHarness(t, dir);
const { ta, auditor, staff, officer } = h;

await t.test('when an officer records room access and an auditor verifies then the untouched trail verifies', async (t) => {
  const r = await officer.json(['audit', 'room-access', '--pass', 'P-0042', '--person', 'Ivan Petrov', '--direction', 'entry']);
  t.equal(r.direction, 'entry');
  const cp = await auditor.json(['audit', 'checkpoint']);
  t.equal(cp.saved, join(auditor.profile, 'audit', 'checkpoint.json'));
  t.ok(existsSync(cp.saved));
  await officer.json(['audit', 'room-access', '--pass', 'P-0042', '--person', 'Ivan Petrov', '--direction', 'exit']);
  const cp2 = await auditor.json(['audit', 'checkpoint']);
  t.equal(cp2.extends, cp.size, 'the new checkpoint was proven to extend the saved one');
  const v = await auditor.json(['audit', 'verify']);
  t.match(v, { ok: true, size: cp2.size, since: cp2.size });
  const text = await auditor.run(['audit', 'verify']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /verified:\s+\d+ entries of sigil\//);
});

await t.test('when an auditor lists events then filters apply; staff are refused', async (t) => {
  const { events } = await auditor.json(['audit', 'events', '--type', 'room']);
  t.same(events.map((e: { type: string }) => e.type), ['room.entry', 'room.exit']);
  const { events: mine } = await auditor.json(['audit', 'events', '--user', 'aud1', '--type', 'login']);
  t.ok(mine.length > 0 && mine.every((e: { type: string }) => e.type.startsWith('login')));
  const bad = await auditor.run(['audit', 'events', '--since', 'yesterday']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--since/);
  const refused = await staff.run(['audit', 'events']);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /FORBIDDEN|role/);
});

await t.test('when staff prove an entry then the inclusion proof verifies against the signed checkpoint', async (t) => {
  const p = await staff.json(['audit', 'proof', '3']);
  t.match(p, { seq: 3, included: true });
  const beyond = await staff.run(['audit', 'proof', '999999']);
  t.equal(beyond.code, 3);
  t.match(beyond.stderr, /not-included at entry 999999/);
});

const exportDir = join(dir, 'export');
await t.test('when the trail is exported then it verifies offline with the appliance stopped, and a changed export fails', async (t) => {
  const e = await auditor.json(['audit', 'export', '--out', exportDir]);
  t.ok(e.size > 0);
  // The README's OpenSSL command checks the exported checkpoint as written.
  const readme = readFileSync(join(exportDir, 'README.md'), 'utf8');
  t.match(readme, /openssl cms -verify/);
  const ossl = spawnSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', 'checkpoint.sig.der', '-content', 'checkpoint.txt', '-CAfile', 'ca.pem', '-certfile', 'chain.pem', '-purpose', 'any', '-out', '/dev/null'], { cwd: exportDir, encoding: 'utf8' });
  t.equal(ossl.status, 0, ossl.stderr);
  t.match(ossl.stderr, /Verification successful/);
  const again = await auditor.run(['audit', 'export', '--out', exportDir]);
  t.equal(again.code, 1);
  t.match(again.stderr, /not empty/);
  await h.stop();
  try {
    const off = await auditor.json(['audit', 'verify', '--offline', exportDir, '--ca', ta.init.ca.root]);
    t.match(off, { ok: true, size: e.size, source: exportDir });
    // A machine without any profile: trusts the export's CA, says so.
    const bare = profileRunner(join(dir, 'no-profile'));
    const b = await bare.run(['audit', 'verify', '--offline', exportDir]);
    t.equal(b.code, 0, b.stderr);
    t.match(b.stderr, /trusting the CA in/);
    // A mistyped folder is named as such, not as its missing ca.pem.
    const typo = await bare.run(['audit', 'verify', '--offline', exportDir + '-typo']);
    t.equal(typo.code, 1);
    t.equal(typo.stderr.trim().split('\n').length, 1, 'one line');
    t.match(typo.stderr, `${exportDir}-typo is not a folder: give the folder written by sigil audit export`);
    // One changed byte in the exported entries.
    const lines = readFileSync(join(exportDir, 'entries.jsonl'), 'utf8').split('\n');
    const copy = join(dir, 'export-bad');
    rmSync(copy, { recursive: true, force: true });
    mkdirSync(copy, { recursive: true });
    for (const f of ['checkpoint.txt', 'checkpoint.sig.der', 'checkpoints.jsonl', 'chain.pem', 'ca.pem']) copyFileSync(join(exportDir, f), join(copy, f));
    const line4 = JSON.parse(lines[4]!) as { seq: number; data: string };
    t.equal(line4.seq, 4);
    line4.data = line4.data.replace('"type":"', '"type":"x');
    lines[4] = JSON.stringify(line4);
    writeFileSync(join(copy, 'entries.jsonl'), lines.join('\n'));
    const bad = await auditor.run(['audit', 'verify', '--offline', copy, '--ca', ta.init.ca.root]);
    t.equal(bad.code, 3, bad.stderr);
    t.match(bad.stderr, /leaf-hash-mismatch at entry 4/);
  } finally {
    await h.start();
  }
});

