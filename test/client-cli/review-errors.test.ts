/**
 * Review of the CLI's answers to bad input: one `error: …` line, an exit code from exit-codes.ts,
 * never a hang or a half-written file. The built CLI as a real child process, real files; a
 * profile set up against a test CA with no appliance behind it (127.0.0.1:9 refuses).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CLI_MAIN, ensureCliBuilt, REPO_ROOT, runCli } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';
import { tmpDir } from '../helpers/tmp.js';
import { httpHarness } from '../server/messaging/http-harness.js';
import { auditHarness } from './audit/helpers/harness.js';
import { setUpLocalProfile } from './helpers/local-profile.js';
import { cliUser } from './messaging/helpers/users.js';

const ca = await makeTestCa('p256');

/** The appliance refuses a message body over 1 MiB (server/API.md, MESSAGE_TOO_LARGE). */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * Runs the CLI with `input` written to stdin and stdin then left open, as `cat /dev/zero |` or a
 * writer that never stops would; killed after `timeoutMs`.
 */
function runWithEndlessStdin(args: string[], input: Buffer, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  ensureCliBuilt();
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    // The CLI may stop reading (and exit) before all of it is taken: that is the point.
    child.stdin.on('error', () => undefined);
    child.stdin.write(input);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolveRun({ code, signal, stderr });
    });
  });
}

t.test('when stdin carries more than the appliance takes in one message then send says so at once, without waiting for the end', async (t) => {
  const { profile } = await setUpLocalProfile(t, ca, 'sigil-cli-review-errors-');
  // Before: send read stdin to its end whatever its size, holding it all in memory, so
  // `sigil send bkim < /dev/zero` (or a writer that never stops) never ended.
  const r = await runWithEndlessStdin(['--profile', profile, 'send', 'bkim'], Buffer.alloc(MAX_BODY_BYTES + 1, 0x61), 20_000);
  t.equal(r.signal, null, `it did not wait for the end of stdin; stderr: ${r.stderr}`);
  t.equal(r.code, 1, 'failure, as MESSAGE_TOO_LARGE from the appliance');
  t.match(r.stderr, /^error: [^\n]+\n$/, 'exactly one line');
  t.match(r.stderr, /over the appliance's limit of 1048576 bytes/, 'names the limit');
  t.match(r.stderr, /--file/, 'says how to send a longer text');
});

t.test('when the meeting agenda on stdin is over the limit then schedule says so at once too', async (t) => {
  const { profile } = await setUpLocalProfile(t, ca, 'sigil-cli-review-errors-');
  const r = await runWithEndlessStdin(['--profile', profile, 'meeting', 'schedule', 'bkim', '--at', '2099-01-01T10:00Z', '--for', '1h'], Buffer.alloc(MAX_BODY_BYTES + 2, 0x61), 20_000);
  t.equal(r.signal, null, `it did not wait for the end of stdin; stderr: ${r.stderr}`);
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: [^\n]+over the appliance's limit of 1048576 bytes[^\n]*\n$/);
});

t.test('when the text on stdin is exactly at the limit then send takes it and goes on', async (t) => {
  const { profile } = await setUpLocalProfile(t, ca, 'sigil-cli-review-errors-');
  const r = await runCli(['send', 'bkim'], { profile, input: 'a'.repeat(MAX_BODY_BYTES), timeoutMs: 20_000 });
  // No login in this profile: the next thing send needs is the session.
  t.equal(r.code, 4, r.stderr);
  t.match(r.stderr, /^error: not logged in/);
});

t.test('when the profile has lost ca.pem then a command that needs it names the file and the command that puts it back', async (t) => {
  const { dir, profile } = await setUpLocalProfile(t, ca, 'sigil-cli-review-errors-');
  rmSync(join(profile, 'ca.pem'));
  const r = await runCli(['verify', '--package', join(dir, 'no-package')], { profile });
  t.equal(r.code, 1, r.stderr);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^error: the profile .+ has no ca\.pem \(the pinned CA\); run: sigil setup --server URL --ca FILE --force$/m);
  t.notMatch(r.stderr, /ENOENT/);
});

t.test('when export --out names a file then it says the name is not a folder, not mkdir\'s EEXIST', async (t) => {
  const { dir, profile } = await setUpLocalProfile(t, ca, 'sigil-cli-review-errors-');
  const file = join(dir, 'a-file');
  writeFileSync(file, 'kept\n');
  const r = await runCli(['export', 'AAAAAAAAAAAAAAAAAAAAAA', '--out', file], { profile });
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /^error: output folder .*a-file is not a folder; refusing to write into it/);
  t.notMatch(r.stderr, /EEXIST/);
  t.equal(readFileSync(file, 'utf8'), 'kept\n', 'the file is left as it was');
});

t.test('when cert import is given a file that is neither PEM nor PKCS#12 then it says so, even where a key exists', async (t) => {
  const { dir, profile } = await setUpLocalProfile(t, ca, 'sigil-cli-review-errors-');
  const env = { SIGIL_KEY_PASSPHRASE: 'correct horse battery' };
  const gen = await runCli(['keygen', '--login', 'alee', '--out', join(dir, 'alee.csr.pem')], { profile, env });
  t.equal(gen.code, 0, gen.stderr);
  const junk = join(dir, 'junk.bin');
  writeFileSync(junk, Buffer.from('this is neither a certificate nor a PKCS#12 file'));
  const r = await runCli(['cert', 'import', junk], { profile, env });
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /^error: .*junk\.bin is not a PEM certificate or a PKCS#12 file/);
  t.notMatch(r.stderr, /--force/, 'no hint that --force would help');
});

/**
 * Runs the CLI under a file size limit of `blocks` × 512 bytes (`ulimit -f`, POSIX sh), as a
 * disk that fills up while it writes: a write past the limit fails with EFBIG (Node ignores
 * SIGXFSZ). NODE_OPTIONS is dropped: tap's process-info hook, which it carries into children,
 * turns SIGXFSZ back into a kill, which no program could clean up after.
 */
function runWithFileSizeLimit(profile: string, args: string[], blocks: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  ensureCliBuilt();
  return new Promise((resolveRun, reject) => {
    const script = `unset NODE_OPTIONS; ulimit -f ${blocks} && exec "$0" "$@"`;
    const child = spawn('/bin/sh', ['-c', script, process.execPath, CLI_MAIN, '--profile', profile, ...args], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveRun({ code, signal, stderr });
    });
  });
}

/** The files in `dir`, or none when it does not exist. */
const filesIn = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir) : []);

t.test('when the disk fills up during audit export then one line, exit 1, and no file is left in the folder', { skip: process.platform === 'win32' && 'ulimit' }, async (t) => {
  const dir = tmpDir(t, 'sigil-cli-review-errors-audit-');
  const h = await auditHarness(t, dir);
  // 4 blocks cut a small file (written whole at once), 8 the entries (written as a stream).
  for (const blocks of [4, 8]) {
    const out = join(dir, `export-${blocks}`);
    const r = await runWithFileSizeLimit(h.auditor.profile, ['audit', 'export', '--out', out], blocks);
    t.equal(r.signal, null, `not killed; stderr: ${r.stderr}`);
    t.equal(r.code, 1, `failure; stderr: ${r.stderr}`);
    t.match(r.stderr, /^error: cannot write [^\n]+: EFBIG\n$/, 'one line naming the file');
    // Before: the files written until then stayed, the last one cut short (chain.pem at 2048
    // bytes, entries.jsonl at 4096), an export that looked like one.
    t.same(filesIn(out), [], 'nothing of the export is left');
  }
  const whole = await h.auditor.run(['audit', 'export', '--out', join(dir, 'export-4')]);
  t.equal(whole.code, 0, `the emptied folder takes a new export; ${whole.stderr}`);
});

t.test('when the disk fills up during export or download then one line, exit 1, and nothing is left', { skip: process.platform === 'win32' && 'ulimit' }, async (t) => {
  const { app } = await httpHarness(t);
  const dir = tmpDir(t, 'sigil-cli-review-errors-evidence-');
  const alee = await cliUser(app, dir, 'alee', 'secret');
  const bkim = await cliUser(app, dir, 'bkim', 'secret');
  const sent = await alee.cli.json(['send', 'bkim'], { input: 'The meeting moves to 14:00' });

  await t.test('when the disk fills up while download writes then it is a failure to write (exit 1), not a file that failed its check (exit 3)', async (t) => {
    const src = join(dir, 'report.bin');
    writeFileSync(src, Buffer.alloc(64 * 1024, 0x5a));
    const withFile = await alee.cli.json(['send', 'bkim', '--file', src], { input: 'Report attached' });
    const outDir = join(dir, 'downloads');
    mkdirSync(outDir, { mode: 0o700 });
    const r = await runWithFileSizeLimit(bkim.cli.profile, ['download', withFile.id, '--out', join(outDir, 'report.bin')], 16);
    t.equal(r.signal, null, `not killed; stderr: ${r.stderr}`);
    // Before: DOWNLOAD_MISMATCH, exit 3, "does not match the signed header (the transfer broke
    // …: EFBIG …)": a script took a full disk for a file tampered with on the way.
    t.equal(r.code, 1, `failure, not verification; stderr: ${r.stderr}`);
    t.match(r.stderr, /^error: cannot write [^\n]*report\.bin: EFBIG\n$/, 'one line naming the output');
    t.same(filesIn(outDir), [], 'no partial file, no output');
  });

  for (const blocks of [2, 4]) {
    const out = join(dir, `evidence-${blocks}`);
    const r = await runWithFileSizeLimit(alee.cli.profile, ['export', sent.id, '--out', out], blocks);
    t.equal(r.signal, null, `not killed; stderr: ${r.stderr}`);
    t.equal(r.code, 1, `failure; stderr: ${r.stderr}`);
    t.match(r.stderr, /^error: cannot write [^\n]+: EFBIG\n$/, 'one line naming the file');
    // Before: the package's first files stayed, the one that met the limit cut short.
    t.same(filesIn(out), [], 'nothing of the package is left');
  }
});
