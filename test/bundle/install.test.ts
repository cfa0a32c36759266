/**
 * install.sh's refusals, on small bundles made and signed by hand (so each takes a second): another
 * key, one changed byte, an edited manifest, and signed bundles whose payload is malformed. Each is
 * refused with exit 3 and nothing is installed; the honest bundle installs.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpDir } from '../helpers/tmp.js';
import { adminKeys, craft, INSTALL, MAKE, repack, run } from './helpers/bundle.js';

t.test('install.sh', async (t) => {
  const dir = tmpDir(t, 'sigil-craft-');
  const admin = await adminKeys(dir, 'admin');
  const honest = await craft(join(dir), admin.key, async () => undefined);

  t.test('when the honest bundle is installed then it lands in the prefix, and again keeps .previous', async (t) => {
    const prefix = join(tmpDir(t, 'sigil-opt-'), 'opt/sigil');
    const ran = await run(INSTALL, ['--bundle', honest, '--pubkey', admin.pub, '--prefix', prefix]);
    t.equal(ran.code, 0, ran.stderr);
    t.equal(readFileSync(join(prefix, 'dist/a.js'), 'utf8'), 'export const a = 1;\n');
    const again = await run(INSTALL, ['--bundle', honest, '--pubkey', admin.pub, '--prefix', prefix]);
    t.equal(again.code, 0, again.stderr);
    t.match(again.stdout, /previous installation kept as .*opt\/sigil\.previous/);
    t.ok(existsSync(join(`${prefix}.previous`, 'dist/a.js')));
    t.same(readdirSync(dirname(prefix)).sort(), ['sigil', 'sigil.previous'], 'no staging directory left');
  });

  t.test('when the public key is given as a certificate then --verify-only verifies and installs nothing', async (t) => {
    const prefix = join(tmpDir(t, 'sigil-opt-'), 'opt/sigil');
    const ran = await run(INSTALL, ['--bundle', honest, '--pubkey', admin.cert, '--prefix', prefix, '--verify-only']);
    t.equal(ran.code, 0, ran.stderr);
    t.match(ran.stdout, /--verify-only: nothing installed/);
    t.notOk(existsSync(dirname(prefix)));
  });

  t.test('when --pubkey is not a PEM key or certificate then exit 2', async (t) => {
    const notKey = join(tmpDir(t), 'not-a-key.pem');
    writeFileSync(notKey, 'this is not a key\n');
    const ran = await run(INSTALL, ['--bundle', honest, '--pubkey', notKey, '--verify-only']);
    t.equal(ran.code, 2);
    t.match(ran.stderr, /not a PEM public key or certificate/);
  });

  t.test('when the manifest was signed by another key then exit 3 and nothing is installed', async (t) => {
    const other = await adminKeys(tmpDir(t), 'other');
    const prefix = join(tmpDir(t, 'sigil-opt-'), 'opt/sigil');
    const ran = await run(INSTALL, ['--bundle', honest, '--pubkey', other.pub, '--prefix', prefix]);
    t.equal(ran.code, 3);
    t.match(ran.stderr, /verification failed: MANIFEST\.sig does not verify with the public key [0-9a-f]{64}/);
    t.notOk(existsSync(dirname(prefix)), 'not even the parent directory was created');
  });

  t.test('when one byte of payload.tar.gz changes then exit 3 before unpacking', async (t) => {
    const caseDir = tmpDir(t);
    const tampered = await repack(honest, caseDir, (work) => {
      const payload = readFileSync(join(work, 'payload.tar.gz'));
      payload[Math.floor(payload.length / 2)] ^= 0x01;
      writeFileSync(join(work, 'payload.tar.gz'), payload);
    });
    const prefix = join(caseDir, 'opt/sigil');
    const ran = await run(INSTALL, ['--bundle', tampered, '--pubkey', admin.pub, '--prefix', prefix]);
    t.equal(ran.code, 3);
    t.match(ran.stderr, /payload\.tar\.gz or install\.sh does not match the signed manifest/);
    t.notOk(existsSync(dirname(prefix)));
  });

  t.test('when the manifest is edited then the signature no longer verifies', async (t) => {
    const caseDir = tmpDir(t);
    const tampered = await repack(honest, caseDir, (work) => {
      const manifest = readFileSync(join(work, 'MANIFEST.sha256'), 'utf8');
      writeFileSync(join(work, 'MANIFEST.sha256'), manifest.replace(/^[0-9a-f]{64}/, '0'.repeat(64)));
    });
    const ran = await run(INSTALL, ['--bundle', tampered, '--pubkey', admin.pub, '--verify-only']);
    t.equal(ran.code, 3);
    t.match(ran.stderr, /MANIFEST\.sig does not verify/);
  });

  t.test('when the signature is missing then exit 3', async (t) => {
    const caseDir = tmpDir(t);
    const work = join(caseDir, 'w');
    await run('mkdir', [work]);
    await run('tar', ['-xf', honest, '-C', work]);
    const stripped = join(caseDir, 'stripped.tar');
    await run('tar', ['-cf', stripped, '-C', work, 'install.sh', 'MANIFEST.sha256', 'payload.tar.gz']);
    const ran = await run(INSTALL, ['--bundle', stripped, '--pubkey', admin.pub, '--verify-only']);
    t.equal(ran.code, 3);
    t.match(ran.stderr, /no MANIFEST\.sha256 \/ MANIFEST\.sig/);
  });

  const cases: Array<[string, (p: string) => Promise<void>, RegExp, Parameters<typeof craft>[3]?]> = [
    ['the payload holds a symbolic link', async (p) => void (await run('ln', ['-s', '/etc/shadow', join(p, 'dist/link')])), /something other than files and directories/],
    ['the payload holds a file the manifest does not name', async (p) => writeFileSync(join(p, 'dist/extra.js'), 'evil()\n'), /files the manifest does not name: payload\/dist\/extra\.js/],
    ['a payload file differs from its manifest line', async (p) => writeFileSync(join(p, 'dist/a.js'), 'evil()\n'), /an unpacked file does not match the signed manifest/],
    ['an archive member escapes payload/', async (p) => writeFileSync(join(p, 'dist/b.js'), '1\n'), /path with '\.\.'|outside payload\//, { tarArgs: ['--transform', 's,^payload/dist/b.js,payload/../b.js,'] }],
    ['the manifest names a path outside the payload', async () => undefined, /manifest line not understood/, { editManifest: (m) => `${m}${'a'.repeat(64)}  /etc/passwd\n` }],
  ];
  for (const [name, build, reason, options] of cases) {
    t.test(`when ${name} (signed) then install exits 3 and installs nothing`, async (t) => {
      const caseDir = tmpDir(t, 'sigil-case-');
      const bundle = await craft(caseDir, admin.key, build, options);
      const prefix = join(caseDir, 'opt/sigil');
      const ran = await run(INSTALL, ['--bundle', bundle, '--pubkey', admin.pub, '--prefix', prefix]);
      t.equal(ran.code, 3, ran.stderr);
      t.match(ran.stderr, reason);
      t.notOk(existsSync(prefix));
      const parent = dirname(prefix);
      t.same(existsSync(parent) ? readdirSync(parent) : [], [], 'no staging directory left');
      t.notOk(existsSync(join(caseDir, 'b.js')), 'nothing escaped');
    });
  }
});

t.test('when flags are missing or unknown then install.sh and make-bundle.sh exit 2 naming them', async (t) => {
  const dir = tmpDir(t, 'sigil-usage-');
  const admin = await adminKeys(dir, 'admin');
  const noPub = await run(INSTALL, ['--bundle', admin.key]);
  t.equal(noPub.code, 2);
  t.match(noPub.stderr, /--pubkey is required/);
  const noBundle = await run(INSTALL, ['--pubkey', admin.pub]);
  t.equal(noBundle.code, 2);
  t.match(noBundle.stderr, /--bundle is required/);
  const badPub = await run(INSTALL, ['--bundle', admin.key, '--pubkey', join(dir, 'missing.pub')]);
  t.equal(badPub.code, 2);
  t.match(badPub.stderr, /--pubkey .*missing\.pub is not a file/);
  const flag = await run(INSTALL, ['--frobnicate']);
  t.equal(flag.code, 2);
  t.match(flag.stderr, /unknown argument '--frobnicate'/);
  const help = await run(INSTALL, ['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /EXIT CODES[\s\S]*EXAMPLES/);

  const noKey = await run(MAKE, [], { env: { ...process.env, SIGIL_BUNDLE_KEY: '' } });
  t.equal(noKey.code, 2);
  t.match(noKey.stderr, /--key \(or SIGIL_BUNDLE_KEY\) is required/);
  const noDist = await run(MAKE, ['--key', admin.key, '--dist', join(dir, 'nodist')]);
  t.equal(noDist.code, 2);
  t.match(noDist.stderr, /nodist\/server\/main\.js is missing/);
  const makeFlag = await run(MAKE, ['--frobnicate']);
  t.equal(makeFlag.code, 2);
  const makeHelp = await run(MAKE, ['--help']);
  t.equal(makeHelp.code, 0);
  t.match(makeHelp.stdout, /EXIT CODES[\s\S]*EXAMPLES/);
});
