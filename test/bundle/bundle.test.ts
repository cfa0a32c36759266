/**
 * The offline bundle end to end: make-bundle.sh builds it from dist/ and the production
 * node_modules, install.sh verifies it with the administrator's public key and installs it with npm
 * unreachable, and the appliance initialises and serves from the installed copy.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { adminKeys, INSTALL, MAKE, offlineEnv, REPO, run } from './helpers/bundle.js';

const built = existsSync(join(REPO, 'dist/server/main.js'));

/** GET /v1/health over TLS with the officer's PKCS#12. */
function health(url: string, pfx: Buffer, passphrase: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((done, reject) => {
    const req = request(`${url}/v1/health`, { pfx, passphrase, ca, timeout: 15_000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('when the bundle is made and installed with npm unreachable then the appliance initialises and serves from it', { skip: built ? false : 'dist/ is not built: run `make build` (make test does)' }, async (t) => {
  const dir = tmpDir(t, 'sigil-bundle-');
  const admin = await adminKeys(dir, 'admin');
  const bundle = join(dir, 'sigil-bundle.tar');
  // Fastest compression: the test is about what the bundle holds and proves, not its size.
  const made = await run(MAKE, ['--key', admin.key, '--out', bundle], { env: { ...process.env, SIGIL_BUNDLE_GZIP_LEVEL: '1' } });
  t.equal(made.code, 0, made.stderr);
  t.match(made.stdout, /bundle: .*sigil-bundle\.tar \(\d+ payload files/);
  const list = await run('tar', ['-tf', bundle]);
  t.same(list.stdout.trim().split('\n').sort(), ['MANIFEST.sha256', 'MANIFEST.sig', 'install.sh', 'payload.tar.gz'], 'install.sh, the signed manifest and the payload, nothing else');

  const { env, tripwire } = offlineEnv(tmpDir(t, 'sigil-offline-'));
  const prefix = join(tmpDir(t, 'sigil-opt-'), 'opt/sigil');
  const installed = await run(INSTALL, ['--bundle', bundle, '--pubkey', admin.pub, '--prefix', prefix], { env });
  t.equal(installed.code, 0, installed.stderr);
  t.match(installed.stdout, /manifest signed by the key sha256:[0-9a-f]{64}/);
  t.match(installed.stdout, /verified \d+ files/);
  t.same(readdirSync(prefix).sort().filter((n) => n !== 'README.md'), ['BUNDLE-SEQUENCE', 'dist', 'hardening', 'node_modules', 'package-lock.json', 'package.json']);
  t.ok(existsSync(join(prefix, 'node_modules/sqlite3')), 'production dependency present');
  t.ok(existsSync(join(prefix, 'node_modules/argon2')), 'native addon present');
  t.notOk(existsSync(join(prefix, 'node_modules/typescript')), 'dev dependency left out');
  t.notOk(existsSync(join(prefix, 'node_modules/tap')), 'dev dependency left out');
  t.notOk(existsSync(join(prefix, 'node_modules/.bin')));
  t.ok(existsSync(join(prefix, 'hardening/apply')) && existsSync(join(prefix, 'hardening/check')), 'hardening scripts shipped');

  // The shipped hardening works from the installed copy: apply into a tree, then check passes it —
  // the tree the install went into, so unit.files judges the installed program (/opt/sigil) too.
  const tree = dirname(dirname(prefix));
  const applied = await run(join(prefix, 'hardening/apply'), ['--root', tree, '--conf', join(prefix, 'hardening/hardening.conf.example')], { env });
  t.equal(applied.code, 0, applied.stderr);
  const checked = await run(join(prefix, 'hardening/check'), ['--root', tree, '--json'], { env, cwd: dirname(prefix) });
  t.equal(checked.code, 0, checked.stderr);
  const report = JSON.parse(checked.stdout) as { ok: boolean; controls: { id: string; ok: boolean; reason: string }[] };
  t.equal(report.ok, true);
  t.match(report.controls.find((r) => r.id === 'unit.files')?.reason, /program path\(s\) with their tree: root's alone/, 'the installed tree was judged');

  // Run from a directory with no node_modules above it, so only the bundle's packages resolve.
  const data = join(tmpDir(t, 'sigil-data-'), 'data');
  const main = join(prefix, 'dist/server/main.js');
  const init = await run('node', [main, 'init', '--data', data, '--listen', '127.0.0.1:0', '--json'], { env, cwd: dirname(prefix) });
  t.equal(init.code, 0, init.stderr);
  const summary = JSON.parse(init.stdout) as { ca: { root: string }; officer: { p12: string; p12Password: string } };

  const server = spawn('node', [main, 'start', '--data', data], { env, cwd: dirname(prefix), stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((r) => server.on('close', (code) => r(code)));
  t.teardown(() => void server.kill('SIGKILL'));
  const url = await new Promise<string>((done, reject) => {
    let log = '';
    const timer = setTimeout(() => reject(new Error(`no "listening" within 30 s: ${log}`)), 30_000);
    server.stderr.on('data', (d) => {
      log += d;
      const m = /"msg":"sigil-server listening","url":"(https:\/\/[^"]+)"/.exec(log);
      if (m) {
        clearTimeout(timer);
        done(m[1]);
      }
    });
    server.on('close', () => reject(new Error(`server exited: ${log}`)));
  });
  const res = await health(url, readFileSync(summary.officer.p12), summary.officer.p12Password, readFileSync(summary.ca.root));
  t.equal(res.status, 200, res.body);
  t.equal(JSON.parse(res.body).ok, true);
  server.kill('SIGTERM');
  t.equal(await exited, 0, 'stops cleanly on SIGTERM');
  t.notOk(existsSync(tripwire), 'nothing called npm');
});
