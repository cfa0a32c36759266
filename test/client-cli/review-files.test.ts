/**
 * Reviewed defects: files and folders that someone else could change.
 *
 * 1. The profile (client-cli/profile.ts) is used only when it is this user's alone: a real
 *    folder owned by the user without group/other write, and each of its files a regular file of
 *    the user's without group/other write (ssh/gpg style). A folder another user made beforehand
 *    (the reviewer's `/tmp/officer`, 0777, swapped ca.pem/config.json → login password sent to
 *    a rogue server) is refused before anything is read or written.
 * 2. Output folders (`sigil export --out`, `audit export`) are refused unless the user's alone,
 *    their files are created new (never through a link planted meanwhile), and the saved audit
 *    checkpoint is written through an unpredictable hidden name, not `${path}.${pid}.tmp`.
 *
 * The CLI runs as a real child process from the TypeScript sources (this test's own loader), so
 * the tests never depend on dist/ being rebuilt. The other user is `nobody` (runuser), only when
 * the tests run as root; those cases are skipped otherwise.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { writeExport, type ExportInput } from '../../client-cli/audit/export.js';
import { writeSaved, parseNote } from '../../client-cli/audit/checkpoint.js';
import { EXPORT_FILES } from '../../client-cli/audit/sources.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';
import { REPO_ROOT, runCli, type CliResult } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';

const posix = typeof process.getuid === 'function';
const isRoot = posix && process.getuid!() === 0;
const hasRunuser = isRoot && (() => {
  try {
    execFileSync('runuser', ['-u', 'nobody', '--', 'true']);
    return true;
  } catch {
    return false;
  }
})();
const asNobodySkip = !posix ? 'POSIX only' : !isRoot ? 'needs root to act as another user (runuser -u nobody)' : !hasRunuser ? 'runuser -u nobody is not available' : false;
const nobodyUid = hasRunuser ? Number(execFileSync('id', ['-u', 'nobody']).toString().trim()) : -1;
const nobody = (...cmd: string[]): void => void execFileSync('runuser', ['-u', 'nobody', '--', ...cmd]);

/** This test process's TypeScript loader, to run client-cli/main.ts from source. */
const tsLoader = process.execArgv.filter((a) => a.includes('@tapjs/typescript'));
const cli = (args: string[], profile?: string): Promise<CliResult> =>
  runCli(args, {
    main: join(REPO_ROOT, 'client-cli', 'main.ts'),
    nodeArgs: tsLoader,
    env: { TS_NODE_TRANSPILE_ONLY: '1' },
    ...(profile ? { profile } : {}),
  });

const ca = await makeTestCa('p256');

/** A temp folder that `nobody` can reach, with a sticky world-writable `shared` folder in it. */
function arena(t: Test): { dir: string; shared: string; caFile: string } {
  const dir = tmpDir(t, 'sigil-review-files-');
  chmodSync(dir, 0o755);
  const shared = join(dir, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o1777);
  const caFile = join(dir, 'root.pem');
  writeFileSync(caFile, ca.root.cert.pem, { mode: 0o644 });
  return { dir, shared, caFile };
}

async function setUp(t: Test, profile: string, caFile: string): Promise<void> {
  const r = await cli(['setup', '--server', 'https://127.0.0.1:9', '--ca', caFile], profile);
  t.equal(r.code, 0, `setup: ${r.stderr}`);
}

t.test('defect 1: the profile folder and its files', async (t) => {
  t.test('when another user made the profile folder beforehand then setup refuses it and writes nothing', { skip: asNobodySkip }, async (t) => {
    const { shared, caFile } = arena(t);
    const profile = join(shared, 'officer');
    nobody('mkdir', '-m', '0777', profile);
    const r = await cli(['setup', '--server', 'https://127.0.0.1:8443', '--ca', caFile], profile);
    t.equal(r.code, 1, 'exit 1');
    t.match(r.stderr, new RegExp(`^error: profile folder ${profile} belongs to uid ${nobodyUid}, not to you .*under your home`));
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.same(readdirSync(profile), [], 'no ca.pem or config.json written into it');
  });

  t.test('when another user swapped ca.pem and config.json in a 0777 profile then login reads neither', { skip: asNobodySkip }, async (t) => {
    const { dir, shared, caFile } = arena(t);
    const profile = join(shared, 'victim');
    mkdirSync(profile, { mode: 0o700 });
    await setUp(t, profile, caFile);
    chmodSync(profile, 0o777); // as the reviewer's folder was
    writeFileSync(join(dir, 'rogue.json'), JSON.stringify({ version: 1, server: 'https://127.0.0.1:7' }) + '\n', { mode: 0o644 });
    nobody('cp', join(dir, 'rogue.json'), join(shared, 'rogue.json'));
    nobody('mv', '-f', join(shared, 'rogue.json'), join(profile, 'config.json'));
    const r = await cli(['login', '--login', 'officer'], profile);
    t.equal(r.code, 1, `exit 1: ${r.stderr}`);
    t.match(r.stderr, new RegExp(`^error: profile folder ${profile} is writable by group or others \\(mode 0777\\).*run: chmod 700 ${profile}`));
    chmodSync(profile, 0o700);
    const again = await cli(['login', '--login', 'officer'], profile);
    t.equal(again.code, 1);
    t.match(again.stderr, new RegExp(`^error: profile file ${join(profile, 'config.json')} belongs to uid ${nobodyUid}, not to you`));
  });

  t.test('when a profile file belongs to another user then it is refused', { skip: asNobodySkip }, async (t) => {
    const { shared, caFile } = arena(t);
    const profile = join(shared, 'p');
    await setUp(t, profile, caFile);
    chownSync(join(profile, 'ca.pem'), nobodyUid, -1);
    const r = await cli(['whoami'], profile);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, new RegExp(`^error: profile file ${join(profile, 'ca.pem')} belongs to uid ${nobodyUid}`));
  });

  t.test('when the profile folder is group- or other-writable then it is refused with the chmod that fixes it', { skip: !posix && 'POSIX only' }, async (t) => {
    const { dir, caFile } = arena(t);
    const profile = join(dir, 'p');
    await setUp(t, profile, caFile);
    chmodSync(profile, 0o770);
    const r = await cli(['whoami'], profile);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, `is writable by group or others (mode 0770)`);
    t.match(r.stderr, `run: chmod 700 ${profile}`);
    chmodSync(profile, 0o700);
    const ok = await cli(['whoami'], profile);
    t.equal(ok.code, 4, `fixed: now simply not logged in: ${ok.stderr}`);
    t.match(ok.stderr, /not logged in/);
  });

  t.test('when a profile file is group-writable then it is refused', { skip: !posix && 'POSIX only' }, async (t) => {
    const { dir, caFile } = arena(t);
    const profile = join(dir, 'p');
    await setUp(t, profile, caFile);
    chmodSync(join(profile, 'config.json'), 0o664);
    const r = await cli(['whoami'], profile);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, `profile file ${join(profile, 'config.json')} is writable by group or others (mode 0664)`);
    t.match(r.stderr, `chmod go-w ${join(profile, 'config.json')}`);
  });

  t.test('when config.json or the folder itself is a symbolic link then it is refused', { skip: !posix && 'POSIX only' }, async (t) => {
    const { dir, caFile } = arena(t);
    const profile = join(dir, 'p');
    await setUp(t, profile, caFile);
    renameSync(join(profile, 'config.json'), join(dir, 'elsewhere.json'));
    symlinkSync(join(dir, 'elsewhere.json'), join(profile, 'config.json'));
    const r = await cli(['whoami'], profile);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, `profile file ${join(profile, 'config.json')} is a symbolic link`);

    const real = join(dir, 'real');
    await setUp(t, real, caFile);
    const link = join(dir, 'link');
    symlinkSync(real, link);
    const viaLink = await cli(['whoami'], link);
    t.equal(viaLink.code, 1, viaLink.stderr);
    t.match(viaLink.stderr, `profile folder ${link} is a symbolic link`);
  });
});

t.test('defect 2: output folders and files', async (t) => {
  t.test('when another user made the export folder beforehand then sigil export refuses it before any network work', { skip: asNobodySkip }, async (t) => {
    const { dir, shared, caFile } = arena(t);
    const profile = join(dir, 'p');
    await setUp(t, profile, caFile);
    const out = join(shared, 'evidence');
    nobody('mkdir', '-m', '0777', out);
    const r = await cli(['export', 'q3Jd0yP1xVfKX2aNw8e9Lg', '--out', out], profile);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, new RegExp(`^error: output folder ${out} belongs to uid ${nobodyUid}, not to you`));
  });

  t.test('when the export folder is world-writable then sigil export refuses it', { skip: !posix && 'POSIX only' }, async (t) => {
    const { dir, caFile } = arena(t);
    const profile = join(dir, 'p');
    await setUp(t, profile, caFile);
    const out = join(dir, 'evidence');
    mkdirSync(out);
    chmodSync(out, 0o777);
    const r = await cli(['export', 'q3Jd0yP1xVfKX2aNw8e9Lg', '--out', out, '--force'], profile);
    t.equal(r.code, 1, r.stderr);
    t.match(r.stderr, `output folder ${out} is writable by group or others (mode 0777)`);
  });

  const wire = { id: 1, origin: 'sigil.test/audit', size: 0, root: Buffer.alloc(32).toString('base64'), time: '2026-03-02T08:00:00Z' };
  const note = `${wire.origin}\n0\n${wire.root}\n${wire.time}\n`;
  const input = (latestWire: () => Promise<unknown>): ExportInput =>
    ({
      source: {
        latestWire,
        latest: async () => ({ note, signature: new Uint8Array([1]) }),
        checkpoints: async function* () {},
        entries: async function* () {},
      },
      checkpoints: (async function* () {})(),
      chainPem: 'chain\n',
      pinnedPem: 'pinned\n',
      now: new Date('2026-03-02T09:00:00Z'),
    }) as unknown as ExportInput;

  t.test('when a link is planted in the audit export folder during the slow part then the file it points at is untouched', { skip: !posix && 'POSIX only' }, async (t) => {
    const { dir } = arena(t);
    const precious = join(dir, 'precious');
    writeFileSync(precious, 'mine\n', { mode: 0o600 });
    const out = join(dir, 'audit-export');
    const x = input(async () => {
      symlinkSync(precious, join(out, EXPORT_FILES.latestNote));
      return { ...wire, note, signature: Buffer.from([1]).toString('base64') };
    });
    await t.rejects(writeExport(out, x), { code: 'OUTPUT_UNWRITABLE' });
    t.equal(readFileSync(precious, 'utf8'), 'mine\n', 'not written through the link');
    t.equal(lstatSync(precious).mode & 0o777, 0o600);
  });

  t.test('when the audit export folder belongs to another user then it is refused', { skip: asNobodySkip }, async (t) => {
    const { shared } = arena(t);
    const out = join(shared, 'audit-export');
    nobody('mkdir', '-m', '0700', out);
    const x = input(async () => ({ ...wire, note, signature: Buffer.from([1]).toString('base64') }));
    await t.rejects(writeExport(out, x), { code: 'OUTPUT_UNSAFE', message: /belongs to uid/ });
    t.same(readdirSync(out), []);
  });

  t.test('when a link waits at the old predictable temp name of the saved checkpoint then nothing is written through it', { skip: !posix && 'POSIX only' }, async (t) => {
    const { dir } = arena(t);
    const precious = join(dir, 'precious');
    writeFileSync(precious, 'mine\n', { mode: 0o600 });
    const path = join(dir, 'audit', 'checkpoint.json');
    mkdirSync(join(dir, 'audit'), { mode: 0o700 });
    symlinkSync(precious, `${path}.${process.pid}.tmp`);
    const cp = parseNote(note)!;
    await writeSaved(path, { note, signature: new Uint8Array([1]) }, cp, new Date());
    t.equal(readFileSync(precious, 'utf8'), 'mine\n', 'not written through the link');
    t.ok(lstatSync(path).isFile(), 'the saved checkpoint is a regular file');
    t.equal(JSON.parse(readFileSync(path, 'utf8')).origin, wire.origin);
  });
});

// Review follow-up: `audit verify` read the profile's saved checkpoint (what a rewritten trail is
// judged against) before any profile check, so a profile others can write still supplied it.
t.test('when the profile others can write holds a saved checkpoint then audit verify refuses it before reading', { skip: posix ? false : 'POSIX only' }, async (t) => {
  const { dir, caFile } = arena(t);
  const profile = join(dir, 'auditor');
  await setUp(t, profile, caFile);
  mkdirSync(join(profile, 'audit'), { mode: 0o700 });
  writeFileSync(join(profile, 'audit', 'checkpoint.json'), '{"planted":true}\n', { mode: 0o600 });
  chmodSync(profile, 0o777);
  const exportDir = join(dir, 'export');
  mkdirSync(exportDir);
  const r = await cli(['audit', 'verify', '--offline', exportDir], profile);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stderr, new RegExp(`^error: profile folder ${profile} is writable by group or others`));
});
