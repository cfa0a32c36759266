/**
 * Review findings on the offline bundle and the CLI archive:
 *  A. a signal (or a failed rename) during install.sh's last step never leaves the host without
 *     an installation, and "previous installation kept" is printed only when it is true;
 *  B. the signed manifest carries a version and a sequence; an older bundle is refused over a
 *     newer one unless --allow-downgrade;
 *  C. make-bundle.sh writes install.sh's SHA-256 beside the bundle, and the documented hand checks
 *     (openssl dgst -verify, sha256sum -c) accept the manifest with its header;
 *  D. `make dist`'s archive is owned by 0/0 whoever builds it, stamped with SOURCE_DATE_EPOCH,
 *     reproducible, with a SHA256SUMS beside it.
 * Faults are injected with a fake `rm` or `mv` first on PATH (install.sh runs them by name).
 */
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { adminKeys, craft, INSTALL, MAKE, REPO, run } from './helpers/bundle.js';

const builtServer = existsSync(join(REPO, 'dist/server/main.js'));
const builtCli = existsSync(join(REPO, 'dist/client-cli/main.js'));

/**
 * Test D builds as `nobody` when the tests run as root, and that user cannot read a checkout in a
 * 0700 temp directory (how CI checks a clean clone). So it builds from a mirror nobody can read:
 * make-dist.mjs, package.json, dist/ and node_modules/ hard-linked (copied across file systems)
 * into a 0755 directory. make-dist takes everything from beside itself (its REPO), so the archive
 * is the checkout's.
 */
function readableMirror(t: { teardown(fn: () => void): void }): string {
  const mirror = tmpDir(t, 'sigil-dist-src-');
  chmodSync(mirror, 0o755);
  mkdirSync(join(mirror, 'client-cli/packaging'), { recursive: true, mode: 0o755 });
  for (const [from, to] of [
    ['client-cli/packaging/make-dist.mjs', 'client-cli/packaging/'],
    ['package.json', ''],
    ['dist', ''],
    ['node_modules', ''],
  ] as const) {
    try {
      execFileSync('cp', ['-al', join(REPO, from), join(mirror, to)], { stdio: 'ignore' });
    } catch {
      execFileSync('cp', ['-r', join(REPO, from), join(mirror, to)], { stdio: 'ignore' });
    }
  }
  // The directories cp made are new (the umask's): each must be nobody's to enter. Not the files:
  // hard links share their modes with the checkout, which this test must not change.
  execFileSync('find', [mirror, '-type', 'd', '-exec', 'chmod', 'a+rx', '{}', '+']);
  return mirror;
}
const dSkip = !builtCli ? 'dist/client-cli is not built' : false;
const realBin = (name: string) => execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();

/** A PATH whose `name` runs `script` (sh, with REAL set to the real program) before the real one. */
function fakeOnPath(dir: string, name: string, script: string): NodeJS.ProcessEnv {
  const bin = join(dir, `fake-${name}`);
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, name), `#!/bin/sh\nREAL='${realBin(name)}'\n${script}\nexec "$REAL" "$@"\n`);
  chmodSync(join(bin, name), 0o755);
  return { ...process.env, PATH: `${bin}${delimiter}${process.env.PATH}` };
}

const header = (version: string, sequence: number) => `# sigil-bundle version ${version}\n# sequence ${sequence}\n`;
const release = (n: number) => (payload: string) => writeFileSync(join(payload, 'dist/a.js'), `export const a = ${n};\n`);

t.test('A. install.sh interrupted or failing in its last step', async (t) => {
  const dir = tmpDir(t, 'sigil-review-a-');
  const admin = await adminKeys(dir, 'admin');
  // Without the version/sequence header (both count as sequence 0), so that an install.sh from
  // before the header reaches the step under test too.
  const v1 = await craft(dir, admin.key, async () => undefined, { name: 'v1', prepare: release(1) });
  const v2 = await craft(dir, admin.key, async () => undefined, { name: 'v2', prepare: release(2) });
  const installV1 = async (prefix: string) => {
    const first = await run(INSTALL, ['--bundle', v1, '--pubkey', admin.pub, '--prefix', prefix]);
    if (first.code !== 0) throw new Error(first.stderr);
  };
  const content = (prefix: string) => readFileSync(join(prefix, 'dist/a.js'), 'utf8');

  t.test('when SIGTERM arrives while PREFIX.previous is being removed then it exits and PREFIX is untouched', async (t) => {
    const caseDir = tmpDir(t, 'sigil-term-');
    const prefix = join(caseDir, 'opt/sigil');
    await installV1(prefix);
    mkdirSync(join(`${prefix}.previous`, 'junk'), { recursive: true });
    // The fake rm signals install.sh (its parent) as it starts removing PREFIX.previous.
    const env = fakeOnPath(caseDir, 'rm', `case "$*" in *'${prefix}.previous') kill -TERM $PPID ;; esac`);
    const ran = await run('sh', [INSTALL, '--bundle', v2, '--pubkey', admin.pub, '--prefix', prefix], { env });
    t.equal(ran.code, 1, `stdout: ${ran.stdout}\nstderr: ${ran.stderr}`);
    t.ok(existsSync(prefix), 'the installation is still in PREFIX');
    t.equal(existsSync(prefix) && content(prefix), 'export const a = 1;\n', 'the previous release, as it was');
    t.notMatch(ran.stdout, /previous installation kept/);
    t.match(ran.stderr, /interrupted/);
    t.notOk(readdirSync(dirname(prefix)).some((n) => n.startsWith('.sigil-install.')), 'no staging directory left');
  });

  t.test('when SIGTERM arrives while PREFIX is moved aside then the install still completes', async (t) => {
    const caseDir = tmpDir(t, 'sigil-term-mv-');
    const prefix = join(caseDir, 'opt/sigil');
    await installV1(prefix);
    const env = fakeOnPath(caseDir, 'mv', `[ "$1" != '${prefix}' ] || kill -TERM $PPID`);
    const ran = await run('sh', [INSTALL, '--bundle', v2, '--pubkey', admin.pub, '--prefix', prefix], { env });
    t.equal(ran.code, 0, `stdout: ${ran.stdout}\nstderr: ${ran.stderr}`);
    t.equal(existsSync(prefix) && content(prefix), 'export const a = 2;\n', 'the new release is in place');
    t.equal(content(`${prefix}.previous`), 'export const a = 1;\n');
    t.match(ran.stdout, /previous installation kept as .*sigil\.previous/);
  });

  t.test('when moving the new payload into place fails then the previous installation is moved back', async (t) => {
    const caseDir = tmpDir(t, 'sigil-mv-fails-');
    const prefix = join(caseDir, 'opt/sigil');
    await installV1(prefix);
    const env = fakeOnPath(caseDir, 'mv', `case "$1" in */payload) echo "mv: simulated failure" >&2; exit 1 ;; esac`);
    const ran = await run('sh', [INSTALL, '--bundle', v2, '--pubkey', admin.pub, '--prefix', prefix], { env });
    t.equal(ran.code, 1, `stdout: ${ran.stdout}\nstderr: ${ran.stderr}`);
    t.equal(existsSync(prefix) && content(prefix), 'export const a = 1;\n', 'the previous release is back in PREFIX');
    t.notMatch(ran.stdout, /previous installation kept/, 'never claims what did not happen');
    t.match(ran.stderr, /previous installation is back in .*opt\/sigil/);
    t.same(readdirSync(dirname(prefix)), ['sigil'], 'no .previous, no staging directory');
  });
});

t.test('B. a replayed older signed bundle', async (t) => {
  const dir = tmpDir(t, 'sigil-review-b-');
  const admin = await adminKeys(dir, 'admin');
  const older = await craft(dir, admin.key, async () => undefined, { name: 'older', prepare: release(1), header: header('0.1.0', 1700000000) });
  const newer = await craft(dir, admin.key, async () => undefined, { name: 'newer', prepare: release(2), header: header('0.2.0', 1800000000) });
  const headerless = await craft(dir, admin.key, async () => undefined, { name: 'headerless', prepare: release(0) });

  t.test('when a newer then an older bundle is installed then the older is refused unless --allow-downgrade', async (t) => {
    const prefix = join(tmpDir(t, 'sigil-opt-'), 'opt/sigil');
    const first = await run(INSTALL, ['--bundle', newer, '--pubkey', admin.pub, '--prefix', prefix]);
    t.equal(first.code, 0, first.stderr);
    t.match(first.stdout, /bundle version 0\.2\.0, sequence 1800000000/, 'version and sequence printed before installing');
    t.equal(readFileSync(join(prefix, 'BUNDLE-SEQUENCE'), 'utf8'), header('0.2.0', 1800000000), 'installed sequence recorded in PREFIX');

    const again = await run(INSTALL, ['--bundle', newer, '--pubkey', admin.pub, '--prefix', prefix]);
    t.equal(again.code, 0, `the same sequence installs again: ${again.stderr}`);

    const replay = await run(INSTALL, ['--bundle', older, '--pubkey', admin.pub, '--prefix', prefix]);
    t.equal(replay.code, 3, replay.stderr);
    t.match(replay.stdout, /bundle version 0\.1\.0, sequence 1700000000 \(installed in .*: version 0\.2\.0, sequence 1800000000\)/);
    t.match(replay.stderr, /^error: refusing a downgrade: .*sequence 1700000000 .*sequence 1800000000 .*--allow-downgrade.*\n$/);
    t.equal(readFileSync(join(prefix, 'dist/a.js'), 'utf8'), 'export const a = 2;\n', 'the newer release remains');
    t.same(readdirSync(dirname(prefix)).sort(), ['sigil', 'sigil.previous'], 'nothing unpacked');

    const noHeader = await run(INSTALL, ['--bundle', headerless, '--pubkey', admin.pub, '--prefix', prefix]);
    t.equal(noHeader.code, 3, 'a bundle without the header counts as sequence 0');
    t.match(noHeader.stderr, /refusing a downgrade/);

    const forced = await run(INSTALL, ['--bundle', older, '--pubkey', admin.pub, '--prefix', prefix, '--allow-downgrade']);
    t.equal(forced.code, 0, forced.stderr);
    t.match(forced.stderr, /--allow-downgrade: installing sequence 1700000000/);
    t.equal(readFileSync(join(prefix, 'dist/a.js'), 'utf8'), 'export const a = 1;\n');
    t.equal(readFileSync(join(prefix, 'BUNDLE-SEQUENCE'), 'utf8'), header('0.1.0', 1700000000));
  });

  t.test('when the signed header is malformed then exit 3', async (t) => {
    const caseDir = tmpDir(t, 'sigil-hdr-');
    const bad = await craft(caseDir, admin.key, async () => undefined, { name: 'bad', header: '# sigil-bundle version 0.1.0\n# sequence -5\n' });
    const ran = await run(INSTALL, ['--bundle', bad, '--pubkey', admin.pub, '--prefix', join(caseDir, 'opt/sigil')]);
    t.equal(ran.code, 3);
    t.match(ran.stderr, /manifest header not understood/);
    t.notOk(existsSync(join(caseDir, 'opt')));
  });
});

t.test('B/C. make-bundle.sh signs a version/sequence header and writes install.sh\'s SHA-256 beside the bundle', { skip: builtServer ? false : 'dist/ is not built' }, async (t) => {
  const dir = tmpDir(t, 'sigil-review-make-');
  const admin = await adminKeys(dir, 'admin');
  const bundle = join(dir, 'sigil-bundle.tar');
  const made = await run(MAKE, ['--key', admin.key, '--out', bundle], { env: { ...process.env, SIGIL_BUNDLE_GZIP_LEVEL: '1', SOURCE_DATE_EPOCH: '1700000000' } });
  t.equal(made.code, 0, made.stderr);
  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
  t.match(made.stdout, new RegExp(`version ${version.replace(/\./g, '\\.')}, sequence 1700000000`));

  // The documented hand checks, run as an administrator would, in the directory of the members.
  const hand = join(dir, 'hand');
  mkdirSync(hand);
  await run('tar', ['-xf', bundle, '-C', hand, 'MANIFEST.sha256', 'MANIFEST.sig', 'install.sh']);
  const manifest = readFileSync(join(hand, 'MANIFEST.sha256'), 'utf8');
  t.equal(manifest.split('\n').slice(0, 2).join('\n'), `# sigil-bundle version ${version}\n# sequence 1700000000`);
  const verified = await run('openssl', ['dgst', '-sha384', '-verify', admin.pub, '-signature', 'MANIFEST.sig', 'MANIFEST.sha256'], { cwd: hand });
  t.equal(verified.code, 0, verified.stderr);
  const installLine = await run('sh', ['-c', "grep '  install.sh$' MANIFEST.sha256 | sha256sum -c"], { cwd: hand });
  t.equal(installLine.code, 0, installLine.stderr);
  const strict = await run('sh', ['-c', "grep -v '  payload/' MANIFEST.sha256 | grep -v '  payload.tar.gz$' | sha256sum -c --strict"], { cwd: hand });
  t.equal(strict.code, 0, `sha256sum -c --strict accepts the '#' header lines: ${strict.stderr}`);

  const sumFile = join(dir, 'sigil-bundle.install.sh.sha256');
  t.ok(existsSync(sumFile), 'install.sh SHA-256 written beside the bundle');
  t.equal(readFileSync(sumFile, 'utf8'), `${execFileSync('sha256sum', [join(REPO, 'bundle/install.sh')], { encoding: 'utf8' }).split(' ')[0]}  install.sh\n`);
  const outOfBand = await run('sha256sum', ['-c', sumFile], { cwd: hand });
  t.equal(outOfBand.code, 0, outOfBand.stderr);
  t.match(made.stdout, /install\.sh sha256 [0-9a-f]{64}/);

  const seqEnv = { ...process.env, SIGIL_BUNDLE_GZIP_LEVEL: '1', SIGIL_BUNDLE_SEQUENCE: 'twelve' };
  const badSeq = await run(MAKE, ['--key', admin.key, '--out', join(dir, 'bad.tar')], { env: seqEnv });
  t.equal(badSeq.code, 2);
  t.match(badSeq.stderr, /non-negative integer/);
});

t.test('C. the documentation checks install.sh before running it', async (t) => {
  const readme = readFileSync(join(REPO, 'bundle/README.md'), 'utf8');
  const installing = readme.slice(readme.indexOf('## Installing one'));
  const firstRun = installing.indexOf('sh install.sh');
  t.ok(firstRun > 0);
  const before = installing.slice(0, firstRun);
  t.match(before, /openssl dgst -sha384 -verify/, 'signature checked before install.sh runs');
  t.match(before, /sha256sum -c/, 'install.sh checked before it runs');
  const help = await run(INSTALL, ['--help']);
  const examples = help.stdout.slice(help.stdout.indexOf('EXAMPLES'));
  t.ok(examples.indexOf('openssl dgst') >= 0 && examples.indexOf('openssl dgst') < examples.indexOf('sh install.sh'), 'help verifies before running');
  t.match(help.stdout, /--allow-downgrade/);
});

t.test('D. make dist: owned by 0/0 whoever builds it, fixed time, reproducible, SHA256SUMS', { skip: dSkip }, async (t) => {
  // Built as a non-root user (nobody, when the tests run as root) so the builder's uid is not 0.
  const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const source = process.getuid?.() === 0 ? readableMirror(t) : REPO;
  const build = async (outDir: string) => {
    if (process.getuid?.() === 0) chownSync(outDir, 65534, 65534);
    const r = await new Promise<{ code: number | null; err: string }>((done, reject) => {
      // `env -u NODE_OPTIONS`: without tap's child-process hooks, which would write into the
      // repo's .tap/ as that user.
      const child = spawn('env', ['-u', 'NODE_OPTIONS', 'node', join(source, 'client-cli/packaging/make-dist.mjs'), '--out', outDir], {
        ...asUser,
        cwd: outDir,
        env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000', HOME: outDir },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      child.on('error', reject);
      child.on('close', (code) => done({ code, err }));
    });
    t.equal(r.code, 0, r.err);
  };
  const version = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;
  const one = tmpDir(t, 'sigil-dist-1-');
  const two = tmpDir(t, 'sigil-dist-2-');
  await build(one);
  await build(two);
  const archive = join(one, `sigil-cli-${version}.tar.gz`);
  const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tvzf', archive], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } }).trim().split('\n');
  t.ok(listing.length > 10);
  const owners = new Set(listing.map((l) => l.split(/\s+/)[1]));
  t.same([...owners], ['0/0'], 'every member owned by 0/0 (numeric)');
  const times = new Set(listing.map((l) => l.split(/\s+/).slice(3, 5).join(' ')));
  t.same([...times], ['2023-11-14 22:13:20'], 'every member stamped with SOURCE_DATE_EPOCH');
  t.notOk(listing.some((l) => /^.{5}w|^.{8}w/.test(l)), 'no group- or other-writable member');

  const sums = readFileSync(join(one, 'SHA256SUMS'), 'utf8');
  t.match(sums, new RegExp(`^[0-9a-f]{64}  sigil-cli-${version.replace(/\./g, '\\.')}\\.tar\\.gz\\n$`));
  const checked = await run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: one });
  t.equal(checked.code, 0, checked.stderr);
  t.equal(readFileSync(join(two, 'SHA256SUMS'), 'utf8'), sums, 'the same inputs give the same bytes');
});
