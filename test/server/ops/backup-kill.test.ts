/**
 * A backup killed outright (SIGKILL, power cut) while it writes its file, in a real child process
 * running the real command (fixtures/restore-kill-child.ts freezes it once the output is open):
 * what it leaves must not stand in the way of the next backup to the same --out, and no backup
 * may remove a file it did not create.
 *
 * Review finding: the output was always written as `FILE.partial` (flag `wx`), and the `finally`
 * that removes it ran even when that open had failed. Killed, a backup left `FILE.partial`; the
 * next one to the same --out failed (EEXIST, exit 1) — and removed the file it had found, which
 * may be another backup's output still being written.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { tmpDir } from '../../helpers/tmp.js';
import { live, runOps } from './fixture.js';
import { killAtStep } from './helpers/kill-at-step.js';

const CHILD = fileURLToPath(new URL('./fixtures/restore-kill-child.ts', import.meta.url));

const runAndKill = (step: string, argv: string[]) => killAtStep(CHILD, step, [step, '--', ...argv]);

t.test('when a backup is killed while writing then the next backup to the same --out succeeds and removes no file it did not make', async (t) => {
  const L = await live(t);
  const dir = tmpDir(t, 'sigil-bkill-');
  const out = join(dir, 'sigil.sbk');
  const killed = await runAndKill('backup-writing', ['backup', '--data', L.dataDir, '--out', out]);
  t.equal(killed.signal, 'SIGKILL', `${killed.stdout} ${killed.stderr}`);
  t.notOk(existsSync(out), 'control: the killed backup wrote no backup file');
  const left = readdirSync(dir).filter((n) => n.endsWith('.partial'));
  t.equal(left.length, 1, 'control: the killed backup left its partial output');

  const again = await runOps(['backup', '--data', L.dataDir, '--out', out, '--json']);
  t.equal(again.code, 0, `${again.error?.code} ${again.error?.message}`);
  t.ok(existsSync(out), 'the backup is written');

  // Someone else's file at the name the old code used (another backup to this --out, writing it).
  const other = join(dir, 'other.sbk');
  writeFileSync(`${other}.partial`, 'not this command’s');
  const third = await runOps(['backup', '--data', L.dataDir, '--out', other]);
  t.equal(third.code, 0, `${third.error?.code} ${third.error?.message}`);
  t.equal(readFileSync(`${other}.partial`, 'utf8'), 'not this command’s', 'a file the backup did not create is left alone');
  await L.stopKeepingData();
  const r = await runOps(['restore', '--data', L.dataDir, '--in', other, '--dry-run']);
  t.equal(r.code, 0, r.stderr);
});
