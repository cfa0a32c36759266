/**
 * Taking over a stale claim file (server/ops/run-file.ts) under its takeover lock, the interleavings
 * forced step by step in one process, with real files:
 *
 * - a claimant that judged a claim stale and was then overtaken never moves the claim that
 *   replaced it. Before the lock it renamed that claim aside and linked it back, and a third
 *   claimant linking in that instant won too: two holders (the race run-file.ts documented);
 * - a live claimant's takeover lock makes the others wait, then refuse, and never touch the file;
 * - a lock left by a taker that died mid-takeover does not block, and is swept;
 * - release removes the claim and its lock.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { claimInfo, removeStaleClaim, takeClaimFile } from '../../../server/ops/run-file.js';
import { tmpDir } from '../../helpers/tmp.js';

/** The pid of a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

const refuse = (holder: { pid: number }): Error => new Error(`held by ${holder.pid}`);
const text = (info: object): string => `${JSON.stringify(info)}\n`;
const locks = (dir: string): string[] => readdirSync(dir).filter((n) => n.includes('.takeover-'));

/** A data directory whose ops claim is stale: written by a restore whose process is gone. */
function staleClaim(t: Test): { dir: string; path: string; stale: string } {
  const dir = tmpDir(t, 'sigil-claim-');
  const path = join(dir, 'ops.json');
  const stale = text({ pid: deadPid(), startedAt: '2026-01-01T00:00:00.000Z', command: 'restore' });
  writeFileSync(path, stale, { mode: 0o600 });
  return { dir, path, stale };
}

t.test('when a claimant judged a claim stale and was overtaken then it leaves the new claim untouched', async (t) => {
  const { dir, path, stale } = staleClaim(t);

  // B takes the stale claim over and holds it.
  const b = claimInfo({ command: 'backup', now: () => new Date('2026-11-30T10:00:00.000Z') });
  const releaseB = takeClaimFile(path, b, refuse);
  t.equal(readFileSync(path, 'utf8'), text(b), 'B holds the claim');
  t.equal(locks(dir).length, 1, "B keeps the stale claim's takeover lock while it holds the claim");

  // S had judged the same stale text before B won, and resumes only now.
  const before = statSync(path, { bigint: true });
  const sFile = join(dir, 's.tmp');
  writeFileSync(sFile, text({ pid: process.pid, startedAt: '2026-11-30T10:00:01.000Z', command: 'repack' }));
  const r = removeStaleClaim(path, stale, sFile);
  t.equal(r, 'busy', "S finds the stale claim's lock held by a live claimant");
  const after = statSync(path, { bigint: true });
  t.equal(readFileSync(path, 'utf8'), text(b), "B's claim stands");
  t.equal(after.ino, before.ino, 'the same file');
  t.equal(after.ctimeNs, before.ctimeNs, 'never renamed or relinked (a rename would change its ctime)');
  t.throws(() => takeClaimFile(path, claimInfo({ command: 'repack' }), refuse), /held by/, 'a new claimant is refused by B');

  releaseB();
  t.notOk(existsSync(path), 'release removes the claim');
  t.same(locks(dir), [], 'and its takeover lock');
});

t.test("when a live claimant holds a stale claim's takeover lock then the others wait, refuse, and leave the file", async (t) => {
  const { dir, path, stale } = staleClaim(t);
  // A live taker (this process, as another claim record) linked the lock and has not finished.
  const taker = join(dir, 'taker.tmp');
  writeFileSync(taker, text(claimInfo({ command: 'backup' })));
  t.equal(removeStaleClaim(path, stale, taker), 'taken', 'the taker removes the stale claim under its lock');
  t.notOk(existsSync(path), 'the stale claim is gone');
  // Put a stale claim with the same text back, as if the taker had not got to it yet.
  writeFileSync(path, stale, { mode: 0o600 });
  const started = Date.now();
  t.throws(() => takeClaimFile(path, claimInfo({ command: 'repack' }), refuse), /keeps changing under other claimants \(or one is taking a stale claim over\); try again/);
  t.ok(Date.now() - started < 5_000, 'gives up in bounded time');
  t.equal(readFileSync(path, 'utf8'), stale, 'the others never touched it');
});

t.test('when a taker died mid-takeover then its lock does not block the next claimant, and is swept', async (t) => {
  const { dir, path, stale } = staleClaim(t);
  const dead = join(dir, 'dead.tmp');
  writeFileSync(dead, text({ pid: deadPid(), startedAt: '2026-11-30T09:00:00.000Z', command: 'backup' }));
  t.equal(removeStaleClaim(path, stale, dead), 'taken');
  writeFileSync(path, stale, { mode: 0o600 }); // it died before the stale claim was gone
  // And an old lock of another generation, left by a crash.
  writeFileSync(join(dir, 'ops.json.takeover-0123456789abcdef'), readFileSync(dead));
  utimesSync(join(dir, 'ops.json.takeover-0123456789abcdef'), new Date(0), new Date(0));

  const c = claimInfo({ command: 'repack' });
  const release = takeClaimFile(path, c, refuse);
  t.equal(readFileSync(path, 'utf8'), text(c), 'the next claimant holds it');
  t.equal(locks(dir).length, 1, "only the claimant's own lock remains: the dead takers' are swept");
  release();
  t.same(locks(dir), []);
});
