/**
 * Review "rollback on a busy appliance", with the built `sigil` CLI against a real appliance: the
 * CLI takes the latest checkpoint first and lists the stored ones afterwards, and a busy appliance
 * signs a larger one in between (any role's GET /v1/audit/checkpoint, or its 2 s timer). Here the
 * test appliance does that deterministically: before it answers the first page of
 * GET /v1/audit/checkpoints it appends an entry and signs a checkpoint covering it. That must not
 * fail `audit verify` (online), `audit export` must stop its list at the latest checkpoint it took,
 * and an export written before the fix (its list running past its latest) must verify offline. An
 * appliance that presents a latest checkpoint smaller than one it signed before it still fails
 * with rollback.
 */
import t from 'tap';
import { appendFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StoredCheckpoint } from '../../../server/audit/index.js';
import { checkpointView } from '../../../server/routes/audit.js';
import { tmpDir } from '../../helpers/tmp.js';
import { auditHarness } from './helpers/harness.js';

const dir = tmpDir(t, 'sigil-cli-audit-race-');
let race = false;
/** The checkpoints the appliance signed between the CLI's two reads. */
const raced: StoredCheckpoint[] = [];
const h = await auditHarness(t, dir, {
  beforeRequest: async (path, trail) => {
    if (!race || path !== '/checkpoints') return;
    await trail.log.append([{ type: 'test.busy', actor: 'system' }]);
    raced.push(await trail.checkpointer.current());
  },
});
const { auditor, officer, ta } = h;
const root = ta.init.ca.root;

type Line = { id: number; size: number; note: string; signature: string };
const lines = (file: string): Line[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Line);

await t.test('when a larger checkpoint is signed between the latest and the stored list then online verify passes', async (t) => {
  await officer.json(['audit', 'room-access', '--pass', 'P-7', '--person', 'A B', '--direction', 'entry']);
  await auditor.json(['audit', 'checkpoint', '--no-save']);
  race = true;
  try {
    const before = raced.length;
    const r = await auditor.run(['audit', 'verify', '--json'], { timeoutMs: 180_000 });
    t.equal(raced.length, before + 1, 'the appliance signed a checkpoint between the two reads');
    t.equal(r.code, 0, `exit 0, got ${r.code}: ${r.stderr}`);
    const v = JSON.parse(r.stdout);
    t.match(v, { ok: true });
    t.ok(raced[raced.length - 1]!.size > v.size, `the raced checkpoint (${raced[raced.length - 1]!.size}) covers more than the verified latest (${v.size})`);
    const text = await auditor.run(['audit', 'verify'], { timeoutMs: 180_000 });
    t.equal(text.code, 0, text.stderr);
    t.notMatch(text.stderr, /rollback/);
  } finally {
    race = false;
  }
});

const exportDir = join(dir, 'export');
await t.test('when a checkpoint is signed while the trail is exported then the export ends at its latest and verifies offline', async (t) => {
  race = true;
  try {
    const e = await auditor.json(['audit', 'export', '--out', exportDir], { timeoutMs: 180_000 });
    const signed = raced[raced.length - 1]!;
    t.ok(signed.size > e.size, 'a larger checkpoint was signed during the export');
    const list = lines(join(exportDir, 'checkpoints.jsonl'));
    t.equal(list[list.length - 1]!.note, readFileSync(join(exportDir, 'checkpoint.txt'), 'utf8'), 'the list ends with the exported latest checkpoint');
    t.equal(e.checkpoints, list.length);
    t.notOk(
      list.some((c) => c.id >= signed.id || c.size > e.size),
      'no checkpoint signed after the latest is in the export',
    );
  } finally {
    race = false;
  }
  const off = await auditor.run(['audit', 'verify', '--offline', exportDir, '--ca', root, '--json'], { timeoutMs: 180_000 });
  t.equal(off.code, 0, off.stderr);
  t.match(JSON.parse(off.stdout), { ok: true, later: 0, source: exportDir });
});

await t.test('when an export made before the fix lists checkpoints signed after its latest then offline verify does not call it rollback', async (t) => {
  const latestLine = lines(join(exportDir, 'checkpoints.jsonl')).pop()!;
  const signed = raced[raced.length - 1]!;
  t.ok(signed.id > latestLine.id);
  // What the old export wrote: the whole list, read after the latest was taken.
  const old = join(dir, 'export-old');
  cpSync(exportDir, old, { recursive: true });
  appendFileSync(join(old, 'checkpoints.jsonl'), JSON.stringify(checkpointView(signed)) + '\n');
  const r = await auditor.run(['audit', 'verify', '--offline', old, '--ca', root, '--json'], { timeoutMs: 180_000 });
  t.equal(r.code, 0, `exit 0, got ${r.code}: ${r.stderr}`);
  t.match(JSON.parse(r.stdout), { ok: true, later: 1 });
  const text = await auditor.run(['audit', 'verify', '--offline', old, '--ca', root], { timeoutMs: 180_000 });
  t.equal(text.code, 0, text.stderr);
  t.match(text.stderr, /1 listed checkpoint was signed after the latest one .* and not checked/);

  // Not provably later: the larger checkpoint with an id below the latest's, or listed before it.
  const notLater = join(dir, 'export-not-later');
  cpSync(exportDir, notLater, { recursive: true });
  appendFileSync(join(notLater, 'checkpoints.jsonl'), JSON.stringify({ ...checkpointView(signed), id: latestLine.id - 1 }) + '\n');
  const a = await auditor.run(['audit', 'verify', '--offline', notLater, '--ca', root], { timeoutMs: 180_000 });
  t.equal(a.code, 3, a.stderr);
  t.match(a.stderr, /rollback at entry \d+: a checkpoint of .* covers \d+ entries; the latest covers only \d+/);
  const listedBefore = join(dir, 'export-listed-before');
  cpSync(exportDir, listedBefore, { recursive: true });
  const text0 = readFileSync(join(exportDir, 'checkpoints.jsonl'), 'utf8');
  writeFileSync(join(listedBefore, 'checkpoints.jsonl'), JSON.stringify(checkpointView(signed)) + '\n' + text0);
  const b = await auditor.run(['audit', 'verify', '--offline', listedBefore, '--ca', root], { timeoutMs: 180_000 });
  t.equal(b.code, 3, b.stderr);
  t.match(b.stderr, /rollback/);
});

await t.test('when the appliance presents a latest checkpoint smaller than one it signed before it then verify fails with rollback', async (t) => {
  const small = await auditor.json(['audit', 'checkpoint', '--no-save']);
  await officer.json(['audit', 'room-access', '--pass', 'P-7', '--person', 'A B', '--direction', 'exit']);
  const large = await auditor.json(['audit', 'checkpoint', '--no-save']);
  t.ok(large.size > small.size);
  // The tail is cut and the older, smaller checkpoint is stored again as the newest one.
  await h.whileStopped(async () => {
    await h.raw('DELETE FROM audit_log WHERE seq >= ?', [small.size]);
    await h.raw(
      'INSERT INTO audit_checkpoints (size, root, at, note, signature) SELECT size, root, at, note, signature FROM audit_checkpoints WHERE size = ? ORDER BY id DESC LIMIT 1',
      [small.size],
    );
  });
  const served = await auditor.json(['audit', 'checkpoint', '--no-save']);
  t.equal(served.size, small.size, 'the appliance now presents the smaller checkpoint as its latest');
  const r = await auditor.run(['audit', 'verify'], { timeoutMs: 180_000 });
  t.equal(r.code, 3, `exit 3, got ${r.code}: ${r.stderr}`);
  t.match(r.stderr, new RegExp(`rollback at entry ${small.size}: a checkpoint of .* covers ${large.size} entries; the latest covers only ${small.size}`));
  const out = join(dir, 'export-rolled-back');
  await auditor.json(['audit', 'export', '--out', out], { timeoutMs: 180_000 });
  const off = await auditor.run(['audit', 'verify', '--offline', out, '--ca', root], { timeoutMs: 180_000 });
  t.equal(off.code, 3, off.stderr);
  t.match(off.stderr, /rollback/);
});
