/**
 * `make dist` (client-cli/packaging/make-dist.mjs): the archive unpacks anywhere and the CLI in it
 * runs with a stock node and nothing else — no repo, no npm, no node_modules outside the archive.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { makeDist } from '../../../client-cli/packaging/make-dist.mjs';
import { makeTestCa } from '../../helpers/pki-fixtures.js';
import { ensureCliBuilt, runCli } from '../../helpers/cli.js';
import { tmpDir } from '../../helpers/tmp.js';

ensureCliBuilt();
const out = tmpDir(t, 'sigil-cli-dist-');
const unpacked = tmpDir(t, 'sigil-cli-unpacked-');
const result = makeDist({ outDir: out });
execFileSync('tar', ['-xzf', result.archive, '-C', unpacked]);
const version = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version as string;
const root = join(unpacked, `sigil-cli-${version}`);
const main = join(root, 'dist', 'client-cli', 'main.js');

function allFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? allFiles(join(dir, e.name)) : [join(dir, e.name)]));
}

t.test('when the archive is built then it is named by version and holds the CLI, pki, launchers and pure-JS packages only', async (t) => {
  t.match(result.archive, new RegExp(`sigil-cli-${version.replace(/\./g, '\\.')}\\.tar\\.gz$`));
  t.ok(existsSync(main));
  t.ok(existsSync(join(root, 'dist', 'pki', 'index.js')));
  t.notOk(existsSync(join(root, 'dist', 'server')), 'no server code');
  t.ok(existsSync(join(root, 'sigil')) && existsSync(join(root, 'sigil.cmd')));
  t.match(readFileSync(join(root, 'sigil.cmd'), 'utf8'), /node "%~dp0dist\\client-cli\\main\.js" %\*/);
  const files = allFiles(root);
  t.same(files.filter((f) => f.endsWith('.node')), [], 'no native addon');
  for (const p of ['argon2', 'sqlite3', 'hono']) t.notOk(existsSync(join(root, 'node_modules', p)), `${p} left out`);
  t.same(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).type, 'module');
});

t.test('when unpacked elsewhere then the CLI runs with a stock node: help, setup, keygen', async (t) => {
  const help = await runCli(['--help'], { main, cwd: unpacked });
  t.equal(help.code, 0, help.stderr);
  t.match(help.stdout, /Usage: sigil/);
  const launcher = execFileSync('sh', [join(root, 'sigil'), '--version'], { cwd: unpacked, encoding: 'utf8' });
  t.equal(launcher.trim(), version);

  const ca = await makeTestCa('p256');
  const caFile = join(unpacked, 'ca.pem');
  writeFileSync(caFile, ca.root.cert.pem);
  const profile = join(unpacked, 'profile');
  const setup = await runCli(['setup', '--server', 'https://127.0.0.1:8443', '--ca', caFile], { main, cwd: unpacked, profile });
  t.equal(setup.code, 0, setup.stderr);
  const keygen = await runCli(['keygen', '--login', 'alee', '--algorithm', 'p256', '--json'], { main, cwd: unpacked, profile, env: { SIGIL_KEY_PASSPHRASE: 'a long pass phrase' } });
  t.equal(keygen.code, 0, keygen.stderr);
  t.match(JSON.parse(keygen.stdout), { login: 'alee', csr: /BEGIN CERTIFICATE REQUEST/ });
});
