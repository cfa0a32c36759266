/**
 * keygen and certificate import (from a CSR and from a PKCS#12) for every pki profile, through
 * the built CLI, checked with the real openssl CLI.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { createPkcs12, PROFILE_NAMES, type ProfileName } from '../../pki/index.js';
import { makeTestCa, type TestCa } from '../helpers/pki-fixtures.js';
import { runCli } from '../helpers/cli.js';
import { issueFromCsr, setUpLocalProfile } from './helpers/local-profile.js';

const PASS = 'correct horse battery';

const cas = new Map<ProfileName, TestCa>();
for (const p of PROFILE_NAMES) cas.set(p, await makeTestCa(p));

t.test('keygen and certificate import for every profile', async (t) => {
  for (const name of PROFILE_NAMES) {
    t.test(`when ${name}: keygen writes an encrypted key and a CSR, and the issued certificate imports`, async (t) => {
      const ca = cas.get(name) as TestCa;
      const { dir, profile } = await setUpLocalProfile(t, ca);
      const csrFile = join(dir, 'alee.csr.pem');
      const gen = await runCli(['keygen', '--login', 'alee', '--algorithm', name, '--out', csrFile], { profile, env: { SIGIL_KEY_PASSPHRASE: PASS } });
      t.equal(gen.code, 0, gen.stderr);
      const keyPem = readFileSync(join(profile, 'key.p8.pem'), 'utf8');
      t.match(keyPem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
      if (process.platform !== 'win32') t.equal(statSync(join(profile, 'key.p8.pem')).mode & 0o777, 0o600, 'key is owner-only');
      // openssl reads the key with the passphrase and the CSR's self-signature verifies.
      execFileSync('openssl', ['pkey', '-in', join(profile, 'key.p8.pem'), '-passin', `pass:${PASS}`, '-noout']);
      const verify = execFileSync('openssl', ['req', '-in', csrFile, '-verify', '-noout', '-subject'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      t.match(verify, /alee/);

      const certFile = join(dir, 'alee.cert.pem');
      writeFileSync(certFile, await issueFromCsr(ca, readFileSync(csrFile, 'utf8'), 'alee'));
      const imp = await runCli(['cert', 'import', certFile, '--json'], { profile, env: { SIGIL_KEY_PASSPHRASE: PASS } });
      t.equal(imp.code, 0, imp.stderr);
      t.match(JSON.parse(imp.stdout), { login: 'alee', serial: /^[0-9a-f]+$/ });
      t.equal(readFileSync(join(profile, 'chain.pem'), 'utf8').trim(), ca.issuing.cert.pem.trim());
    });

    t.test(`when ${name}: a PKCS#12 imports with its password and the key is stored encrypted`, async (t) => {
      const ca = cas.get(name) as TestCa;
      const { dir, profile } = await setUpLocalProfile(t, ca);
      const staff = await ca.staff('bkim');
      const p12 = join(dir, 'bkim.p12');
      writeFileSync(p12, await createPkcs12({ key: staff.key, cert: staff.cert, chain: ca.chain, password: 'p12-pass' }));
      const wrong = await runCli(['cert', 'import', p12], { profile, env: { SIGIL_KEY_PASSPHRASE: 'nope' } });
      t.equal(wrong.code, 4, 'P12_OPEN_FAILED exits 4');
      t.match(wrong.stderr, /cannot open PKCS#12 .*wrong password/);
      const ok = await runCli(['cert', 'import', p12, '--json'], { profile, env: { SIGIL_KEY_PASSPHRASE: 'p12-pass' } });
      t.equal(ok.code, 0, ok.stderr);
      t.match(JSON.parse(ok.stdout), { login: 'bkim', serial: staff.cert.serialNumber });
      execFileSync('openssl', ['pkey', '-in', join(profile, 'key.p8.pem'), '-passin', 'pass:p12-pass', '-noout']);
      const again = await runCli(['cert', 'import', p12], { profile, env: { SIGIL_KEY_PASSPHRASE: 'p12-pass' } });
      t.equal(again.code, 1, 'KEY_EXISTS without --force');
      t.match(again.stderr, /a private key already exists/);
    });
  }
});

