/**
 * Windows and Linux workstations run the CLI with a stock Node: its runtime dependency tree has no
 * native addon. Proven twice: the built CLI runs with `process.dlopen` booby-trapped, and the
 * runtime import graph (the one `make dist` packs) holds no package with binding.gyp or .node files.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { FORBIDDEN_PACKAGES, importGraph, nativeProblems, packageClosure } from '../../../client-cli/packaging/make-dist.mjs';
import { makeTestCa } from '../../helpers/pki-fixtures.js';
import { ensureCliBuilt, REPO_ROOT, runCli } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';

const dir = tmpDir(t, 'sigil-cli-native-');
const trap = join(dir, 'no-dlopen.mjs');
writeFileSync(trap, "process.dlopen = () => { throw new Error('native addon loaded by the sigil CLI'); };\n");
const nodeArgs = ['--import', pathToFileURL(trap).href];

t.test('when process.dlopen throws then loading a native addon fails (the trap works)', async (t) => {
  const r = spawnSync(process.execPath, [...nodeArgs, '--input-type=module', '-e', "await import('argon2')"], { cwd: REPO_ROOT, encoding: 'utf8' });
  t.not(r.status, 0);
  t.match(r.stderr, /native addon loaded by the sigil CLI/);
});

t.test('when process.dlopen throws then --help, setup and keygen still work', async (t) => {
  const help = await runCli(['--help'], { nodeArgs });
  t.equal(help.code, 0, help.stderr);
  const ca = await makeTestCa('p256');
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.root.cert.pem);
  const profile = join(dir, 'profile');
  const setup = await runCli(['setup', '--server', 'https://127.0.0.1:8443', '--ca', caFile], { profile, nodeArgs });
  t.equal(setup.code, 0, setup.stderr);
  const keygen = await runCli(['keygen', '--login', 'alee', '--algorithm', 'p256'], { profile, nodeArgs, env: { SIGIL_KEY_PASSPHRASE: 'a long pass phrase' } });
  t.equal(keygen.code, 0, keygen.stderr);
  t.match(keygen.stdout, /BEGIN CERTIFICATE REQUEST/);
});

t.test('when walking the runtime import graph then no package is native or server-only', async (t) => {
  ensureCliBuilt();
  const { files, packages } = importGraph();
  t.ok(files.some((f) => f.endsWith(join('dist', 'pki', 'index.js'))), 'the graph reaches pki');
  t.notOk(files.some((f) => f.includes(`${join('dist', 'server')}`)), 'never server/');
  const closure = packageClosure(packages);
  const names = [...closure.values()];
  for (const forbidden of FORBIDDEN_PACKAGES) t.notOk(names.includes(forbidden), `${forbidden} is not reachable`);
  for (const [pkgDir, name] of closure) t.same(nativeProblems(pkgDir, name), [], `${name} is pure JavaScript`);
  // Control: the detector does see a native addon.
  t.ok(nativeProblems(join(REPO_ROOT, 'node_modules', 'argon2'), 'argon2').length > 0, 'argon2 is flagged');
});
