/**
 * Stale partial files (client-cli/messaging/partial-file.ts): a download killed outright
 * (SIGKILL, a power cut) cannot remove its hidden partial file, so the next download into the
 * folder does. Only names of the exact form, only regular files of the current user, only when
 * the owner pid is gone (or, for an earlier version's name without pid, a day after its last
 * write); never the target, never through a symlink, never a live download's file.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import t from 'tap';
import { partialPathFor, processExists, removeStalePartials, staleNotice, UNOWNED_STALE_MS } from '../../../client-cli/messaging/partial-file.js';
import { tmpDir } from '../../helpers/tmp.js';

const dir = tmpDir(t, 'sigil-cli-partial-');

/** The pid of a process that has exited (a `node -e ''` child, waited for). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(child, 'exit');
  const pid = child.pid!;
  if (processExists(pid)) throw new Error(`pid ${pid} was reused at once`);
  return pid;
}

const dead = await deadPid();
const HEX = '0123456789ab';

function folder(name: string): string {
  const f = join(dir, name);
  mkdirSync(f);
  return f;
}

const sorted = (f: string): string[] => readdirSync(f).sort();

t.test('when a partial file is named then it carries the owner pid and stays under NAME_MAX', async (t) => {
  t.match(basename(partialPathFor('/x/report.pdf')), new RegExp(`^\\.report\\.pdf\\.sigil-partial-${process.pid}-[0-9a-f]{12}$`));
  const long = basename(partialPathFor(`/x/${'😀'.repeat(200)}`, 4_294_967_295));
  t.ok(Buffer.byteLength(long) <= 255, `${Buffer.byteLength(long)} bytes`);
});

t.test('when the process is gone then processExists says so; an existing one (even as another user) is alive', async (t) => {
  t.equal(processExists(dead), false);
  t.equal(processExists(process.pid), true);
  t.equal(processExists(1), true, 'pid 1 exists (EPERM when not root): kept');
});

t.test('when the owner pid belongs to another user (EPERM) then its partial file is kept', async (t) => {
  // As root, kill(1, 0) succeeds; the EPERM a normal user gets is given by a stand-in.
  const kill = process.kill;
  const fail = (code: string) => Object.assign(new Error(code), { code });
  process.kill = ((pid: number, sig?: string | number) => {
    if (pid === 1_000_001) throw fail('EPERM');
    if (pid === 1_000_002) throw fail('ESRCH');
    return kill.call(process, pid, sig);
  }) as typeof process.kill;
  t.teardown(() => void (process.kill = kill));
  t.equal(processExists(1_000_001), true);
  t.equal(processExists(1_000_002), false);
  const f = folder('eperm');
  const other = `.report.pdf.sigil-partial-1000001-${HEX}`;
  const gone = `.report.pdf.sigil-partial-1000002-${HEX}`;
  for (const n of [other, gone]) writeFileSync(join(f, n), 'unverified plaintext');
  t.same(await removeStalePartials(join(f, 'report.pdf')), [gone]);
  t.same(readdirSync(f), [other]);
});

t.test('when a dead download left a partial file then only it is removed, not a live one nor anything else', async (t) => {
  const f = folder('dead-and-live');
  const stale = `.report.pdf.sigil-partial-${dead}-${HEX}`;
  const live = `.report.pdf.sigil-partial-${process.pid}-${HEX}`;
  const others = [
    'report.pdf.sigil-partial-' + `${dead}-${HEX}`, // not hidden
    `.report.pdf.sigil-partial-${dead}-${HEX}x`, // more after the random part
    `.report.pdf.sigil-partial-${dead}-${HEX.toUpperCase()}`, // not our hex
    `.report.pdf.sigil-partial-0${dead}-${HEX}`, // leading zero: never ours
    `.report.pdf.sigil-partial-${dead}-${HEX}.bak`,
    '.notes',
    'report.pdf',
  ];
  for (const n of [stale, live, ...others]) writeFileSync(join(f, n), 'unverified plaintext', { mode: 0o600 });
  // A folder named like a dead download's partial file is not a regular file: kept.
  const dirLike = `.other.bin.sigil-partial-${dead}-${'f'.repeat(12)}`;
  mkdirSync(join(f, dirLike));
  const removed = await removeStalePartials(join(f, 'report.pdf'));
  t.same(removed, [stale]);
  t.same(sorted(f), [live, ...others, dirLike].sort(), 'only the dead download\'s partial file is gone');
  t.same(await removeStalePartials(join(f, 'report.pdf')), [], 'a second sweep finds nothing');
});

t.test('when a dead download\'s partial file belongs to another user then it is kept', { skip: process.getuid?.() !== 0 && 'only root can give a file away' }, async (t) => {
  const f = folder('other-user');
  const theirs = `.report.pdf.sigil-partial-${dead}-${HEX}`;
  writeFileSync(join(f, theirs), 'their unverified plaintext');
  chownSync(join(f, theirs), 65534, 65534);
  t.same(await removeStalePartials(join(f, 'report.pdf')), []);
  t.same(readdirSync(f), [theirs]);
});

t.test('when the target itself is named like a stale partial file then it is never removed', async (t) => {
  const f = folder('target');
  const target = `.keep.sigil-partial-${dead}-${HEX}`;
  writeFileSync(join(f, target), 'the file the user asked for');
  t.same(await removeStalePartials(join(f, target)), []);
  t.equal(readFileSync(join(f, target), 'utf8'), 'the file the user asked for');
});

t.test('when a symlink is named like a dead download\'s partial file then neither it nor what it points to is removed', async (t) => {
  const f = folder('symlink');
  const outside = folder('symlink-target');
  writeFileSync(join(outside, 'precious.txt'), 'precious');
  const toFile = `.report.pdf.sigil-partial-${dead}-${HEX}`;
  const toDir = `.other.pdf.sigil-partial-${dead}-${'a'.repeat(12)}`;
  const dangling = `.gone.pdf.sigil-partial-${dead}-${'b'.repeat(12)}`;
  symlinkSync(join(outside, 'precious.txt'), join(f, toFile));
  symlinkSync(outside, join(f, toDir));
  symlinkSync(join(outside, 'nothing'), join(f, dangling));
  // Made old, so that neither rule (dead pid, age) would spare a regular file of that name.
  const old = new Date(Date.now() - 2 * UNOWNED_STALE_MS);
  utimesSync(join(outside, 'precious.txt'), old, old);
  t.same(await removeStalePartials(join(f, 'report.pdf')), []);
  t.same(sorted(f), [toFile, toDir, dangling].sort(), 'the symlinks are still there');
  for (const n of [toFile, toDir, dangling]) t.ok(lstatSync(join(f, n)).isSymbolicLink(), `${n} is still a symlink`);
  t.equal(readFileSync(join(outside, 'precious.txt'), 'utf8'), 'precious', 'what it points to is untouched');
  t.same(readdirSync(outside), ['precious.txt']);
});

t.test('when an earlier version left a partial file without pid then it goes only once a day old', async (t) => {
  const f = folder('unowned');
  const young = `.report.pdf.sigil-partial-${HEX}`;
  const old = `.report.pdf.sigil-partial-${'c'.repeat(12)}`;
  const allDigits = `.report.pdf.sigil-partial-${'9'.repeat(12)}`;
  for (const n of [young, old, allDigits]) writeFileSync(join(f, n), 'unverified plaintext');
  const dayAgo = new Date(Date.now() - UNOWNED_STALE_MS - 60_000);
  utimesSync(join(f, old), dayAgo, dayAgo);
  utimesSync(join(f, allDigits), dayAgo, dayAgo);
  const yesterdayButOne = new Date(Date.now() - UNOWNED_STALE_MS + 60 * 60_000);
  utimesSync(join(f, young), yesterdayButOne, yesterdayButOne);
  t.same((await removeStalePartials(join(f, 'report.pdf'))).sort(), [old, allDigits].sort());
  t.same(readdirSync(f), [young], 'the one written within the day stays');
  // The age is measured against the injected clock.
  t.same(await removeStalePartials(join(f, 'report.pdf'), { now: () => Date.now() + 2 * 60 * 60_000 }), [young]);
  t.same(readdirSync(f), []);
});

t.test('when a live download has its partial file there then an old mtime does not make it stale', async (t) => {
  const f = folder('live-old');
  const live = `.report.pdf.sigil-partial-${process.pid}-${HEX}`;
  writeFileSync(join(f, live), 'being written');
  const old = new Date(Date.now() - 2 * UNOWNED_STALE_MS);
  utimesSync(join(f, live), old, old);
  t.same(await removeStalePartials(join(f, 'report.pdf')), []);
  t.same(await removeStalePartials(join(f, 'report.pdf'), { isAlive: () => false }), [live], 'the liveness check is the only test');
});

t.test('when the folder cannot be read then the sweep removes nothing and does not throw', async (t) => {
  t.same(await removeStalePartials(join(dir, 'no-such-folder', 'report.pdf')), []);
});

t.test('when partial files were removed then the notice is one line naming them shortened; none, no notice', async (t) => {
  t.equal(staleNotice([]), undefined);
  t.equal(staleNotice([`.report.pdf.sigil-partial-${dead}-${HEX}`]), 'removed 1 unfinished download left by an earlier run (.report.pdf.sigil-partial-…)');
  t.equal(
    staleNotice([`.a.sigil-partial-1-${HEX}`, `.a.sigil-partial-2-${HEX}`, `.b\x1b[2J.sigil-partial-${HEX}`, '.c.sigil-partial-3-' + HEX, '.d.sigil-partial-4-' + HEX]),
    'removed 5 unfinished downloads left by earlier runs (.a.sigil-partial-…, .b?[2J.sigil-partial-…, .c.sigil-partial-…, …)',
  );
});
