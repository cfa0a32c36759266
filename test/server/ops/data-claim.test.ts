/**
 * The data directory's claim and the working copies, against the built `sigil-server` run as
 * real child processes (server/ops/data-claim.ts, working-copies.ts):
 *
 * - a command that holds the directory (a restore, a backup, paused with SIGSTOP while its working
 *   copy is on disk) keeps `start` and every other claiming command out with OPS_DATA_IN_USE,
 *   naming itself and its pid — a server started under a restore was overwritten by it and
 *   answered VAULT_CORRUPT from then on;
 * - a claim left by a dead process does not block;
 * - a working copy left by a killed command (its decrypted-at-rest vault pages) is overwritten
 *   and removed by the next `start` and the next `backup`, and `check` fails while it is there;
 * - SIGINT stops a running backup, which removes its working copy and exits 130.
 *
 * The vault gets ~36 MB of ballast so that a backup or restore lasts long enough (hundreds of ms)
 * to be paused while its working copy exists; the pause itself is SIGSTOP, not a timing guess.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, linkSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import sqlite3 from 'sqlite3';
import { claimDataDir, OPS_FILE } from '../../../server/ops/index.js';
import { scanTree } from '../../helpers/forensics.js';
import { ensureServerBuilt, REPO_ROOT, runServer, SERVER_MAIN, startServer } from '../../helpers/server-process.js';
import { tmpDir } from '../../helpers/tmp.js';

/** A running `sigil-server` child that can be paused. */
interface Child {
  child: ChildProcess;
  pid: number;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnServer(t: Test, args: string[]): Child {
  ensureServerBuilt();
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k] as string;
  const child = spawn(process.execPath, [SERVER_MAIN, ...args], { env, cwd: REPO_ROOT });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  });
  return { child, pid: child.pid!, stderr: () => err, exited };
}

/** Polls `probe` every ~1 ms until it answers something, or fails after `ms`. */
async function waitFor<T>(probe: () => T | undefined, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const workingCopies = (dataDir: string, prefix = '.'): string[] =>
  readdirSync(join(dataDir, 'vault')).filter((f) => f.startsWith(prefix) && /\.(backup|restore|repack)-/.test(f));

/** Runs `child` until a working copy `.<kind>-*.db` exists, then stops it (SIGSTOP). */
async function pauseWithCopy(c: Child, dataDir: string, kind: 'backup' | 'restore'): Promise<string> {
  const name = await waitFor(() => workingCopies(dataDir, `.${kind}-`).find((f) => f.endsWith('.db')), 30_000, `.${kind}-*.db`);
  c.child.kill('SIGSTOP');
  return name;
}

function sql(path: string, statements: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const db = new sqlite3.Database(path, (err) => {
      if (err) return reject(err);
      db.exec(statements.join(';\n'), (e) => db.close(() => (e ? reject(e) : resolve())));
    });
  });
}

/** A stopped appliance whose vault.db carries ~36 MB of ballast, and a backup of it. */
async function appliance(t: Test, opts: { backup?: boolean } = {}): Promise<{ root: string; dataDir: string; sbk: string }> {
  const root = tmpDir(t, 'sigil-claim-');
  const dataDir = join(root, 'data');
  const init = await runServer(['init', '--data', dataDir, '--listen', '127.0.0.1:0', '--json']);
  t.equal(init.code, 0, init.stderr);
  await sql(join(dataDir, 'vault', 'vault.db'), [
    'CREATE TABLE ballast (b BLOB)',
    'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 9000) INSERT INTO ballast SELECT randomblob(4000) FROM n',
    'PRAGMA wal_checkpoint(TRUNCATE)',
  ]);
  const sbk = join(root, 'b.sbk');
  if (opts.backup) {
    const bk = await runServer(['backup', '--data', dataDir, '--out', sbk]);
    t.equal(bk.code, 0, bk.stderr);
  }
  return { root, dataDir, sbk };
}

const IN_USE = (cmd: string, pid: number): RegExp => new RegExp(`in use by \`sigil-server ${cmd.replace(/-/g, '\\-')}\` \\(pid ${pid}\\); try again when it has finished`);

t.test('when a restore holds the data directory then start, backup, repack and a dry run are refused naming it, and it finishes intact', async (t) => {
  const { root, dataDir, sbk } = await appliance(t, { backup: true });
  const restore = spawnServer(t, ['restore', '--data', dataDir, '--in', sbk, '--yes']);
  const copy = await pauseWithCopy(restore, dataDir, 'restore');
  t.ok(existsSync(join(dataDir, 'vault', copy)), 'paused with its working copy on disk');

  const start = await runServer(['start', '--data', dataDir], {}, 20_000);
  t.equal(start.code, 1, 'start is refused (it used to listen, then serve a vault the restore overwrote)');
  t.match(start.stderr, /OPS_DATA_IN_USE/);
  t.match(start.stderr, IN_USE('restore', restore.pid));
  t.notMatch(start.stderr, /listening/);
  for (const args of [
    ['backup', '--data', dataDir, '--out', join(root, 'beside.sbk')],
    ['repack', '--data', dataDir],
    ['restore', '--data', dataDir, '--in', sbk, '--dry-run'],
  ]) {
    const r = await runServer(args, {}, 20_000);
    t.equal(r.code, 1, `${args[0]} is refused: ${r.stderr}`);
    t.match(r.stderr, IN_USE('restore', restore.pid), `${args.join(' ')}: names the restore`);
  }
  t.notOk(existsSync(join(root, 'beside.sbk')), 'no backup was taken beside the restore');
  t.ok(existsSync(join(dataDir, 'vault', copy)), "the refused commands did not touch the restore's working copy");

  restore.child.kill('SIGCONT');
  t.same(await restore.exited, { code: 0, signal: null }, 'the restore finishes');
  t.notOk(existsSync(join(dataDir, OPS_FILE)), 'and gives the directory back');
  const server = await startServer(dataDir);
  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0, 'start works once it has finished');
  t.notMatch(server.stderr(), /VAULT_CORRUPT/);
});

t.test('when a backup holds the data directory then start and restore are refused naming it', async (t) => {
  const { root, dataDir, sbk } = await appliance(t, { backup: true });
  const out = join(root, 'paused.sbk');
  const backup = spawnServer(t, ['backup', '--data', dataDir, '--out', out]);
  await pauseWithCopy(backup, dataDir, 'backup');

  const start = await runServer(['start', '--data', dataDir], {}, 20_000);
  t.equal(start.code, 1, 'start is refused');
  t.match(start.stderr, IN_USE('backup', backup.pid));
  const restore = await runServer(['restore', '--data', dataDir, '--in', sbk, '--yes'], {}, 20_000);
  t.equal(restore.code, 1, 'restore is refused');
  t.match(restore.stderr, IN_USE('backup', backup.pid));

  backup.child.kill('SIGCONT');
  t.same(await backup.exited, { code: 0, signal: null }, 'the backup finishes');
  t.ok(existsSync(out));
  t.same(workingCopies(dataDir), [], 'its working copy is gone');
});

t.test('when the claim names a dead process then it does not block, and a live one (in this process) does', async (t) => {
  const { root, dataDir } = await appliance(t);
  const gone = spawnSync(process.execPath, ['-e', '']).pid!;
  const stale = { pid: gone, startedAt: new Date().toISOString(), command: 'restore' };
  writeFileSync(join(dataDir, OPS_FILE), JSON.stringify(stale), { mode: 0o600 });
  const bk = await runServer(['backup', '--data', dataDir, '--out', join(root, 'a.sbk')]);
  t.equal(bk.code, 0, `a backup runs over a stale claim: ${bk.stderr}`);
  t.notOk(existsSync(join(dataDir, OPS_FILE)), 'the stale claim is replaced, then released');
  // A pid that lives but started at another time than recorded was reused: stale too.
  writeFileSync(join(dataDir, OPS_FILE), JSON.stringify({ ...stale, pid: process.pid, procStart: '1' }), { mode: 0o600 });
  const server = await startServer(dataDir);
  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0, 'start runs over a claim whose pid was reused');

  const mine = await claimDataDir(dataDir, 'repack');
  t.teardown(() => mine.release());
  const refused = await runServer(['start', '--data', dataDir], {}, 20_000);
  t.equal(refused.code, 1);
  t.match(refused.stderr, IN_USE('repack', process.pid), 'a live claim is honoured');
  await t.rejects(claimDataDir(dataDir, 'backup', { besideServer: true }), { code: 'OPS_DATA_IN_USE' }, 'also within one process');
  mine.release();
  t.notOk(existsSync(join(dataDir, OPS_FILE)));
});

/** Plants what a killed backup leaves: a snapshot and its journal holding `marker`; hard links outside show their bytes after removal. */
function plantLeftover(root: string, dataDir: string, id: string, marker: string): { names: string[]; witnesses: string[] } {
  const names = [`.backup-${id}.db`, `.backup-${id}.db-journal`];
  const witnesses: string[] = [];
  for (const n of names) {
    const p = join(dataDir, 'vault', n);
    writeFileSync(p, Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.from(marker.repeat(2000))]), { mode: 0o600 });
    const w = join(root, `witness${n}`);
    linkSync(p, w); // same inode: shows whether the bytes were overwritten, not just unlinked
    witnesses.push(w);
  }
  return { names, witnesses };
}

t.test('when a killed backup left its working copy then check fails, and the next start and the next backup overwrite and remove it', async (t) => {
  const { root, dataDir } = await appliance(t);
  const marker = 'MARKER-conversation-minutes-of-the-board;';
  const left = plantLeftover(root, dataDir, 'AAAAAAAAAAAAAAAAAAAAAA', marker);

  const check = await runServer(['check', '--data', dataDir, '--json']);
  t.equal(check.code, 1, 'check fails while a working copy is left');
  const item = (JSON.parse(check.stdout).items as { name: string; status: string; detail: string }[]).find((i) => i.name === 'working-copies');
  t.match(item, { status: 'fail', detail: /leftover: \.backup-AAAAAAAAAAAAAAAAAAAAAA\.db/ });
  const human = await runServer(['check', '--data', dataDir]);
  t.match(human.stdout, /FAIL\s+working-copies\s+leftover: \.backup-/);
  const status = await runServer(['status', '--data', dataDir, '--json']);
  t.match(JSON.parse(status.stdout).warnings, [/leftover working copy of vault\.db: \.backup-AAAA/]);

  const server = await startServer(dataDir);
  server.child.kill('SIGTERM');
  t.equal(await server.exited, 0);
  t.same(workingCopies(dataDir), [], 'start removed the snapshot and its journal');
  for (const w of left.witnesses) t.notOk(readFileSync(w).some((b) => b !== 0), `${w}: overwritten with zeros before the unlink`);
  t.match(server.stderr(), /removed 2 leftover working file\(s\)[^"]*\.backup-AAAAAAAAAAAAAAAAAAAAAA\.db, \.backup-AAAAAAAAAAAAAAAAAAAAAA\.db-journal/, 'one line says what start removed');
  t.same(scanTree(join(dataDir), [marker]), [], 'the marker is nowhere in the data directory');

  const again = plantLeftover(root, dataDir, 'BBBBBBBBBBBBBBBBBBBBBB', marker);
  const bk = await runServer(['backup', '--data', dataDir, '--out', join(root, 'next.sbk')]);
  t.equal(bk.code, 0, bk.stderr);
  t.same(workingCopies(dataDir), [], 'the next backup removed them too');
  for (const w of again.witnesses) t.notOk(readFileSync(w).some((b) => b !== 0), `${w}: overwritten with zeros`);
  t.match(bk.stderr, /removed 2 leftover working file\(s\)[^"]*\.backup-BBBBBBBBBBBBBBBBBBBBBB\.db/);
  const ok = await runServer(['check', '--data', dataDir, '--json']);
  t.equal(ok.code, 0, ok.stdout);
});

t.test('when a running backup gets SIGINT then it removes its working copy, writes no backup and exits 130', async (t) => {
  const { root, dataDir } = await appliance(t);
  const out = join(root, 'interrupted.sbk');
  const backup = spawnServer(t, ['backup', '--data', dataDir, '--out', out]);
  await pauseWithCopy(backup, dataDir, 'backup');
  backup.child.kill('SIGINT');
  backup.child.kill('SIGCONT');
  t.same(await backup.exited, { code: 130, signal: null }, 'exits 130 (it used to die of the signal, copy left behind)');
  t.same(workingCopies(dataDir), [], 'no working copy left');
  t.same(readdirSync(root).filter((n) => n.startsWith('interrupted.sbk')), [], 'no backup file, no partial file');
  t.notOk(existsSync(join(dataDir, OPS_FILE)), 'the claim is released');
  t.match(backup.stderr(), /OPS_INTERRUPTED/);
  t.match(backup.stderr(), /backup interrupted by SIGINT/);
});
