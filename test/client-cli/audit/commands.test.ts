/**
 * `sigil audit` commands with the built CLI against a real appliance: room access (officer),
 * checkpoint saved and extended by a verified consistency proof, verify, events with filters,
 * inclusion proofs for staff, and an export that verifies offline with the appliance stopped.
 */
import t from 'tap';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

// Review: `audit events` cut the listing at --limit without a word and could not go on from there.
await t.test('when more events match than --limit then a note gives the seq to go on from with --after', async (t) => {
  const first = await auditor.json(['audit', 'events', '--limit', '3']);
  t.equal(first.events.length, 3);
  const cut = first.events[2].seq;
  t.equal(first.next, cut, 'the JSON carries where to go on');
  const text = await auditor.run(['audit', 'events', '--limit', '3']);
  t.equal(text.code, 0, text.stderr);
  t.equal(text.stdout.trim().split('\n').length, 4, 'header and three events');
  t.equal(text.stderr, `more events after seq ${cut}: sigil audit events --limit 3 --after ${cut}\n`);
  const rest = await auditor.json(['audit', 'events', '--after', String(cut), '--limit', '3']);
  t.ok(rest.events.length > 0);
  t.ok(rest.events.every((e: { seq: number }) => e.seq > cut), 'only events after that seq');
  const both = await auditor.json(['audit', 'events', '--limit', '6']);
  t.same(both.events.slice(3, 3 + rest.events.length), rest.events, 'the next page starts where the first stopped');
  // The filters go into the command to paste; exactly --limit matching events is not a cut.
  const room = await auditor.run(['audit', 'events', '--type', 'room', '--limit', '1']);
  t.equal(room.code, 0, room.stderr);
  t.match(room.stderr, /^more events after seq (\d+): sigil audit events --type room --limit 1 --after \1\n$/);
  const exact = await auditor.run(['audit', 'events', '--type', 'room', '--limit', '2']);
  t.equal(exact.code, 0, exact.stderr);
  t.equal(exact.stderr, '', 'no note when nothing was left out');
  t.match(await auditor.json(['audit', 'events', '--type', 'room', '--limit', '2']), { next: null });
  const all = await auditor.json(['audit', 'events']);
  t.equal(all.next, null);
  const bad = await auditor.run(['audit', 'events', '--after', '-1']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--after expects a whole number 0 or more/);
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


// Review: a broken line inside an export was a tool failure (exit 1) instead of a failed verification.
await t.test('when a line inside an export is broken then offline verify fails (exit 3) naming the file and line', async (t) => {
  await h.trail().log.append(Array.from({ length: 50 }, (_, i) => ({ type: 'test.filler', actor: 'system', data: { i } })));
  const good = join(dir, 'export-lines');
  const e = await auditor.json(['audit', 'export', '--out', good]);
  t.ok(e.size > 50);
  const variant = (name: string, file: string, change: (lines: string[]) => void): string => {
    const copy = join(dir, `export-lines-${name}`);
    rmSync(copy, { recursive: true, force: true });
    cpSync(good, copy, { recursive: true });
    const lines = readFileSync(join(copy, file), 'utf8').split('\n');
    change(lines);
    writeFileSync(join(copy, file), lines.join('\n'));
    return copy;
  };
  const verify = (d: string, json = false) => auditor.run(['audit', 'verify', '--offline', d, '--ca', ta.init.ca.root, ...(json ? ['--json'] : [])]);

  const cut = variant('cut', 'entries.jsonl', (ls) => void (ls[39] = ls[39]!.slice(0, 25)));
  const a = await verify(cut);
  t.equal(a.code, 3, a.stderr);
  t.equal(a.stderr, `error: audit trail does not verify: malformed-entry at entry 39: ${join(cut, 'entries.jsonl')} line 40 is not JSON (where entry 39 was expected)\n`);
  const aj = await verify(cut, true);
  t.equal(aj.code, 3);
  t.match(JSON.parse(aj.stdout), { ok: false, reason: 'malformed-entry', seq: 39 });

  const shape = variant('shape', 'entries.jsonl', (ls) => void (ls[39] = JSON.stringify({ seq: 39, data: 42 })));
  const b = await verify(shape);
  t.equal(b.code, 3, b.stderr);
  t.match(b.stderr, /malformed-entry at entry 39: .*entries\.jsonl line 40 is not an entry \(it says seq 39\)/);

  const cpCut = variant('cp-cut', 'checkpoints.jsonl', (ls) => void (ls[1] = '{"id":'));
  const c = await verify(cpCut);
  t.equal(c.code, 3, c.stderr);
  t.match(c.stderr, /audit trail does not verify: checkpoint-invalid: .*checkpoints\.jsonl line 2 is not JSON/);
  const cpShape = variant('cp-shape', 'checkpoints.jsonl', (ls) => void (ls[0] = JSON.stringify({ size: 'x' })));
  const d = await verify(cpShape);
  t.equal(d.code, 3, d.stderr);
  t.match(d.stderr, /checkpoint-invalid: .*checkpoints\.jsonl line 1 is not a checkpoint/);

  // A missing file is still a tool failure, not a verdict on the trail.
  const missing = variant('missing', 'entries.jsonl', () => undefined);
  rmSync(join(missing, 'entries.jsonl'));
  const m = await verify(missing);
  t.equal(m.code, 1, m.stderr);
  t.match(m.stderr, /entries\.jsonl cannot be read/);
});
