/**
 * `sigil download` as a real child process, interrupted mid-transfer: the appliance is real, but
 * the workstation reaches it through a TCP relay that stops passing the server's bytes once a
 * connection has carried 1 MiB — only the attachment's does — so the download stalls half-way
 * with its bytes on disk. SIGINT or SIGTERM then ends it with exit 1 and one `error:` line, and
 * leaves no file at the target, no partial file, and an existing file (--force) as it was.
 * SIGKILL cannot be caught and leaves the partial file (named with the dead process's pid); the
 * next download into that folder removes it, says so in one line, and keeps a live one's.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CLI_MAIN, ensureCliBuilt } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';
import { httpHarness } from '../../server/messaging/http-harness.js';
import { pointProfileAt, stallingRelay } from './helpers/relay.js';
import { cliUser } from './helpers/users.js';

const { app } = await httpHarness(t);
const dir = tmpDir(t, 'sigil-cli-download-int-');
const alee = await cliUser(app, dir, 'alee', 'secret');
const bkim = await cliUser(app, dir, 'bkim', 'secret');
ensureCliBuilt();

// bkim's workstation talks to the appliance through the relay (same pinned CA, same session).
const relay = await stallingRelay(t, Number(new URL(app.url).port), { limit: 1 << 20, stall: 'download' });
pointProfileAt(bkim.cli.profile, relay.port);

const src = join(dir, 'report.bin');
const bytes = Buffer.alloc(4 << 20);
for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 29 + 1) & 0xff;
writeFileSync(src, bytes);
const sent = await alee.cli.json(['send', 'bkim', '--file', src], { input: 'Report attached' });

/** Starts the download into `folder`, waits until some of its bytes are on disk, sends `signal`. */
async function interrupted(folder: string, signal: NodeJS.Signals, extra: string[] = []) {
  const child = spawn(process.execPath, [CLI_MAIN, '--profile', bkim.cli.profile, 'download', sent.id, '--out', join(folder, 'report.bin'), ...extra], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdout.resume();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, sig) => r({ code, signal: sig })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  // Any file of the folder that grows beyond what was there: the transfer is under way.
  const before = new Map(readdirSync(folder).map((n) => [n, statSync(join(folder, n)).size]));
  // A file removed between readdir and stat (a stale partial file being swept) is not growing.
  const growing = () => readdirSync(folder).some((n) => (before.get(n) ?? 0) !== (statSync(join(folder, n), { throwIfNoEntry: false })?.size ?? 0));
  for (const end = Date.now() + 30_000; !growing(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`download did not start writing; stderr=${err}`);
  }
  child.kill(signal);
  const result = await exit;
  clearTimeout(killer);
  return { ...result, stderr: err };
}

t.test('when sigil download gets SIGINT mid-transfer then it exits 1 and leaves no file and no partial file', async (t) => {
  const folder = join(dir, 'sigint');
  mkdirSync(folder);
  const r = await interrupted(folder, 'SIGINT');
  t.same({ code: r.code, signal: r.signal }, { code: 1, signal: null }, 'exit 1, not killed by the signal');
  t.match(r.stderr, /^error: download of .*report\.bin interrupted \(SIGINT\); the partial file was removed and nothing was saved\n$/);
  t.same(readdirSync(folder), [], 'no file at the target and no partial file');
});

t.test('when sigil download --force gets SIGTERM mid-transfer then the existing file is unchanged and no partial file is left', async (t) => {
  const folder = join(dir, 'sigterm');
  mkdirSync(folder);
  writeFileSync(join(folder, 'report.bin'), 'the original report');
  const r = await interrupted(folder, 'SIGTERM', ['--force']);
  t.same({ code: r.code, signal: r.signal }, { code: 1, signal: null }, 'exit 1, not killed by the signal');
  t.match(r.stderr, /^error: download of .*report\.bin interrupted \(SIGTERM\)/);
  t.equal(readFileSync(join(folder, 'report.bin'), 'utf8'), 'the original report');
  t.same(readdirSync(folder), ['report.bin'], 'no partial file is left');
});

t.test('when sigil download was killed outright then the next download into the folder removes its partial file, and only that', async (t) => {
  const folder = join(dir, 'sigkill');
  mkdirSync(folder);
  // A live download's partial file (this test process owns it) and an unrelated hidden file.
  const live = `.report.bin.sigil-partial-${process.pid}-0123456789ab`;
  writeFileSync(join(folder, live), 'being written', { mode: 0o600 });
  writeFileSync(join(folder, '.notes'), 'mine');
  const killed = await interrupted(folder, 'SIGKILL');
  t.same({ code: killed.code, signal: killed.signal }, { code: null, signal: 'SIGKILL' });
  const left = readdirSync(folder).filter((n) => n !== live && n.includes('.sigil-partial-'));
  t.equal(left.length, 1, 'SIGKILL leaves the partial file behind');
  t.match(left[0], /^\.report\.bin\.sigil-partial-[1-9][0-9]*-[0-9a-f]{12}$/, 'named with its owner pid');
  t.not(left[0], live);

  const next = await interrupted(folder, 'SIGINT');
  t.same({ code: next.code, signal: next.signal }, { code: 1, signal: null });
  t.match(next.stderr, /^removed 1 unfinished download left by an earlier run \(\.report\.bin\.sigil-partial-…\)\nerror: download of .*report\.bin interrupted \(SIGINT\)/);
  t.same(readdirSync(folder).sort(), ['.notes', live].sort(), 'the dead download\'s partial file is gone; the live one and the unrelated file stay');
});
