/**
 * The `check` CLI: text and --json output, exit codes, help, and the real launcher run as a child
 * process against a compiled copy of hardening/ laid out as in /opt/sigil.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkMain, RootNotDirectoryError, runChecks } from '../../hardening/index.js';
import { tmpDir } from '../helpers/tmp.js';
import { hardenedTree, REPO, runProgram } from './helpers/tree.js';

function capture() {
  const out = { stdout: '', stderr: '' };
  return { out, io: { stdout: (s: string) => void (out.stdout += s), stderr: (s: string) => void (out.stderr += s) } };
}

t.test('when the tree is hardened then check prints PASS lines and exits 0', async (t) => {
  const root = await hardenedTree(t);
  const { out, io } = capture();
  t.equal(await checkMain(['--root', root], io), 0);
  t.match(out.stdout, /^PASS {2}unit\.no-new-privileges +NoNewPrivileges=yes/m);
  t.match(out.stdout, /^\d+ passed, 0 failed$/m);
  t.notMatch(out.stdout, /^FAIL/m);
  t.equal(out.stderr, '');
});

t.test('when a control fails then check prints FAIL with the reason and exits 1', async (t) => {
  const root = await hardenedTree(t);
  chmodSync(join(root, 'var/lib/sigil'), 0o755);
  const { out, io } = capture();
  t.equal(await checkMain(['--root', root], io), 1);
  t.match(out.stdout, /^FAIL {2}data-dir +\/var\/lib\/sigil has mode 0755, expected 0700$/m);
  t.match(out.stdout, /^\d+ passed, 1 failed$/m);
});

t.test('when --json then stdout is {controls:[{id,title,ok,reason}], ok}', async (t) => {
  const root = await hardenedTree(t);
  chmodSync(join(root, 'var/lib/sigil'), 0o750);
  const { out, io } = capture();
  t.equal(await checkMain(['--root', root, '--json'], io), 1);
  const report = JSON.parse(out.stdout) as { controls: Array<Record<string, unknown>>; ok: boolean };
  t.same(Object.keys(report).sort(), ['controls', 'ok']);
  t.equal(report.ok, false);
  for (const c of report.controls) {
    t.same(Object.keys(c).sort(), ['id', 'ok', 'reason', 'title']);
    t.type(c.id, 'string');
    t.type(c.ok, 'boolean');
    t.type(c.reason, 'string');
  }
  t.same(report.controls.filter((c) => !c.ok).map((c) => c.id), ['data-dir']);
  t.equal(new Set(report.controls.map((c) => c.id)).size, report.controls.length, 'ids are unique');
});

t.test('when --conf points elsewhere then check judges against that file', async (t) => {
  const root = await hardenedTree(t);
  const conf = join(tmpDir(t), 'other.conf');
  writeFileSync(conf, 'SIGIL_PORT=9443\nSIGIL_LAN_RANGES="10.0.0.0/8 192.168.0.0/16 fd00::/8"\n');
  const { out, io } = capture();
  t.equal(await checkMain(['--root', root, '--conf', conf, '--json'], io), 1);
  const report = JSON.parse(out.stdout) as { controls: Array<{ id: string; ok: boolean; reason: string }> };
  t.match(report.controls.find((c) => c.id === 'nftables.input')?.reason, /accepts port 8443, which is neither SIGIL_PORT/);
});

t.test('when --root is not a directory then ROOT_NOT_DIRECTORY and exit 2', async (t) => {
  const missing = join(tmpDir(t), 'nope');
  const err = await runChecks({ root: missing }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof RootNotDirectoryError);
  t.equal((err as RootNotDirectoryError).code, 'ROOT_NOT_DIRECTORY');
  const { out, io } = capture();
  t.equal(await checkMain(['--root', missing], io), 2);
  t.match(out.stderr, /^error: --root expects a directory/);
  t.equal(out.stdout, '');
});

t.test('when a flag is unknown or an argument is extra then exit 2 naming it', async (t) => {
  const a = capture();
  t.equal(await checkMain(['--frobnicate'], a.io), 2);
  t.match(a.out.stderr, /unknown option '--frobnicate'/);
  const b = capture();
  t.equal(await checkMain(['extra'], b.io), 2);
  t.match(b.out.stderr, /too many arguments/);
});

t.test('when --help then help has POSITIONAL ARGUMENTS, EXIT CODES and EXAMPLES and exit 0', async (t) => {
  const { out, io } = capture();
  t.equal(await checkMain(['--help'], io), 0);
  for (const section of ['POSITIONAL ARGUMENTS', 'EXIT CODES', 'EXAMPLES', '--root', '--json', '--conf']) t.match(out.stdout, section);
});

t.test('when run on this live host then every control answers with a reason and sysctl reads /proc', async (t) => {
  const report = await runChecks({ root: '/' });
  t.ok(report.controls.length >= 40);
  for (const c of report.controls) t.ok(c.reason.length > 0, c.id);
  const forward = report.controls.find((c) => c.id === 'sysctl.net.ipv4.ip_forward');
  t.match(forward?.reason, /\(live\)|now, expected/, 'judged from /proc/sys, not from files');
});

t.test('when the launcher runs a compiled check laid out like /opt/sigil then exit codes and --json hold', async (t) => {
  // Build hardening/ into a temp install: <dir>/dist/hardening/*.js beside <dir>/hardening/check.
  const dir = tmpDir(t, 'sigil-opt-');
  execFileSync(join(REPO, 'node_modules/.bin/tsc'), [
    '--outDir', join(dir, 'dist'), '--rootDir', REPO, '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
    '--target', 'ES2022', '--strict', '--skipLibCheck', '--types', 'node', join(REPO, 'hardening/check.ts'),
  ], { cwd: REPO, stdio: 'pipe' });
  mkdirSync(join(dir, 'hardening'));
  copyFileSync(join(REPO, 'hardening/check'), join(dir, 'hardening/check'));
  chmodSync(join(dir, 'hardening/check'), 0o755);
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  const launcher = join(dir, 'hardening/check');

  const root = await hardenedTree(t);
  const good = await runProgram(launcher, ['--root', root, '--json']);
  t.equal(good.code, 0, good.stderr);
  t.equal(JSON.parse(good.stdout).ok, true);

  chmodSync(join(root, 'var/lib/sigil'), 0o755);
  const bad = await runProgram(launcher, ['--root', root]);
  t.equal(bad.code, 1);
  t.match(bad.stdout, /^FAIL {2}data-dir/m);

  const usage = await runProgram(launcher, ['--root', join(root, 'missing')]);
  t.equal(usage.code, 2);
});

t.test('when the launcher finds no build then it says so and exits 2', async (t) => {
  const dir = tmpDir(t, 'sigil-opt-');
  mkdirSync(join(dir, 'hardening'));
  copyFileSync(join(REPO, 'hardening/check'), join(dir, 'hardening/check'));
  chmodSync(join(dir, 'hardening/check'), 0o755);
  const ran = await runProgram(join(dir, 'hardening/check'), ['--root', dir]);
  t.equal(ran.code, 2);
  t.match(ran.stderr, /dist\/hardening\/check\.js is missing; build first/);
});
