/**
 * The claim files (server/ops/run-file.ts takeClaimFile, behind data-claim.ts's claimDataDir and
 * claimRunFile). Review defect: the claim was written and linked into place without fsync, so a
 * power cut could leave an empty or cut `sigil-server.ops.json` / `sigil-server.run.json`. It is
 * now made as durable-file.ts makes key files: write, fsync the file, link, fsync the directory.
 *
 * As in rotate-review.test.ts, node:fs functions are wrapped (`syncBuiltinESMExports` makes the
 * modules' named imports see the wrappers) to record the order of the syscalls, or to fail one. A
 * power cut itself cannot be made here; what is checked is the order that makes one harmless.
 */
import fs, { existsSync, readdirSync, readFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { claimDataDir, claimRunFile, OPS_FILE, RUN_FILE, type RunInfo } from '../../../server/ops/index.js';
import { tmpDir } from '../../helpers/tmp.js';

type AnyFn = (...args: any[]) => any;

/** Replaces `fs[key]` until the test ends, for the ES-module named imports too. */
function wrapFs(t: Test, key: keyof typeof fs & string, make: (orig: AnyFn) => AnyFn): void {
  const target = fs as unknown as Record<string, AnyFn>;
  const orig = target[key]!;
  target[key] = make(orig);
  syncBuiltinESMExports();
  t.teardown(() => {
    target[key] = orig;
    syncBuiltinESMExports();
  });
}

/** The path each file descriptor opened from now on was opened with. */
function trackFdPaths(t: Test): Map<number, string> {
  const fdPath = new Map<number, string>();
  wrapFs(t, 'openSync', (orig) => (...a: any[]) => {
    const fd = orig(...a) as number;
    fdPath.set(fd, String(a[0]));
    return fd;
  });
  return fdPath;
}

/**
 * Records `fsync <path>` and `link <from> -> <to>` in order. At each link, what `from` holds then
 * (what becomes visible under the claim's name that instant) is kept in `linked`.
 */
function recordSyscalls(t: Test): { events: string[]; linked: Map<string, string> } {
  const events: string[] = [];
  const linked = new Map<string, string>();
  const fdPath = trackFdPaths(t);
  wrapFs(t, 'fsyncSync', (orig) => (fd: number) => {
    orig(fd);
    events.push(`fsync ${fdPath.get(fd)}`);
  });
  wrapFs(t, 'linkSync', (orig) => (from: string, to: string) => {
    const text = readFileSync(from, 'utf8');
    orig(from, to);
    linked.set(to, text);
    events.push(`link ${from} -> ${to}`);
  });
  return { events, linked };
}

/** Checks that the claim at `path` was fsynced, then linked whole, then its directory fsynced. */
function expectDurable(t: Test, rec: { events: string[]; linked: Map<string, string> }, path: string, dir: string, info: RunInfo): void {
  const { events } = rec;
  const link = events.findIndex((e) => e.startsWith('link ') && e.endsWith(` -> ${path}`));
  t.ok(link >= 0, `the claim is linked into place: ${events.join(' | ')}`);
  const tmp = events[link]!.slice('link '.length, events[link]!.indexOf(' -> '));
  const dataSynced = events.indexOf(`fsync ${tmp}`);
  t.ok(dataSynced >= 0 && dataSynced < link, 'its temporary file is fsynced before the link');
  t.ok(events.indexOf(`fsync ${dir}`, link) > link, 'the directory is fsynced after the link');
  t.same(JSON.parse(rec.linked.get(path) ?? 'null'), info, 'the claim is complete the moment it is visible');
  t.same(JSON.parse(readFileSync(path, 'utf8')), info, 'and on disk once taken');
}

t.test('when the data directory is claimed then the claim is fsynced, linked, and its directory fsynced', async (t) => {
  const dir = tmpDir(t, 'sigil-claim-');
  const rec = recordSyscalls(t);
  const claim = await claimDataDir(dir, 'backup', { sweep: false });
  expectDurable(t, rec, join(dir, OPS_FILE), dir, claim.info);
  claim.release();
  t.same(readdirSync(dir), [], 'released: no claim and no temporary file left');
});

t.test('when the run file is claimed then it is made durable the same way', async (t) => {
  const dir = tmpDir(t, 'sigil-claim-');
  const rec = recordSyscalls(t);
  const run = claimRunFile(dir, { url: 'https://10.0.0.5:8443', version: '0.1.0' });
  expectDurable(t, rec, join(dir, RUN_FILE), dir, run.info);
  run.release();
});

t.test('when the directory cannot be fsynced after the link then the claim fails and leaves nothing behind', async (t) => {
  const dir = tmpDir(t, 'sigil-claim-');
  const fdPath = trackFdPaths(t);
  wrapFs(t, 'fsyncSync', (orig) => (fd: number) => {
    if (fdPath.get(fd) === dir) throw Object.assign(new Error('EIO: injected by the test (fsyncSync)'), { code: 'EIO' });
    return orig(fd);
  });
  await t.rejects(claimDataDir(dir, 'restore', { sweep: false }), { code: 'EIO' });
  t.notOk(existsSync(join(dir, OPS_FILE)), 'no claim stays in the name of this live process');
  t.same(readdirSync(dir), [], 'nor a temporary file');
});
