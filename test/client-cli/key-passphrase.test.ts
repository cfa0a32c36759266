/**
 * The key passphrase: a new one must hold to the policy (client-cli/key-passphrase.ts) wherever it
 * is chosen — keygen, cert import --new-passphrase, sigil passphrase — and `sigil passphrase`
 * re-encrypts the profile key, so a key imported under its issuer's PKCS#12 password gets one only
 * its holder knows. The built CLI as a child process; the key file read back with the openssl CLI.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { createPkcs12 } from '../../pki/index.js';
import { runCli } from '../helpers/cli.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';
import { setUpLocalProfile } from './helpers/local-profile.js';

const ca = await makeTestCa('p256');
const GOOD = 'correct horse battery';

const profileOf = (t: Test) => setUpLocalProfile(t, ca, 'sigil-cli-passphrase-');
const opensWith = (keyFile: string, pass: string): boolean => {
  try {
    execFileSync('openssl', ['pkey', '-in', keyFile, '-passin', `pass:${pass}`, '-noout'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

t.test('when keygen is given a weak passphrase then it refuses with exit 2 and writes nothing', async (t) => {
  const { profile } = await profileOf(t);
  const before = readdirSync(profile).sort();
  for (const [pass, rule] of [['short pass', /at least 12 characters/], ['alee-is-my-key-pass', /must not contain the login/]] as const) {
    const r = await runCli(['keygen', '--login', 'alee', '--algorithm', 'p256'], { profile, env: { SIGIL_KEY_PASSPHRASE: pass } });
    t.equal(r.code, 2, r.stderr);
    t.match(r.stderr, /^error: the new key passphrase is too weak: /);
    t.match(r.stderr, rule);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.same(readdirSync(profile).sort(), before, 'no key, no request written');
  }
  t.equal((await runCli(['keygen', '--login', 'alee', '--algorithm', 'p256'], { profile, env: { SIGIL_KEY_PASSPHRASE: GOOD } })).code, 0);
});

t.test('when a PKCS#12 is imported under its password then a note says who knows it, and sigil passphrase replaces it', async (t) => {
  const { dir, profile } = await profileOf(t);
  const staff = await ca.staff('bkim');
  const p12 = join(dir, 'bkim.p12');
  const issuers = 'issuer-chosen-p12-password';
  writeFileSync(p12, await createPkcs12({ key: staff.key, cert: staff.cert, chain: ca.chain, password: issuers }));
  const imported = await runCli(['cert', 'import', p12], { profile, env: { SIGIL_KEY_PASSPHRASE: issuers } });
  t.equal(imported.code, 0, imported.stderr);
  t.match(imported.stderr, /PKCS#12 password, which whoever made the file knows; choose your own with: sigil passphrase/);
  const keyFile = join(profile, 'key.p8.pem');
  const certBefore = readFileSync(join(profile, 'cert.pem'), 'utf8');

  const wrong = await runCli(['passphrase'], { profile, env: { SIGIL_KEY_PASSPHRASE: 'not the password', SIGIL_NEW_KEY_PASSPHRASE: GOOD } });
  t.equal(wrong.code, 4, 'a wrong current passphrase is refused as authentication');
  t.match(wrong.stderr, /could not be unlocked/);
  const weak = await runCli(['passphrase'], { profile, env: { SIGIL_KEY_PASSPHRASE: issuers, SIGIL_NEW_KEY_PASSPHRASE: 'bkim2026-secret' } });
  t.equal(weak.code, 2);
  t.match(weak.stderr, /must not contain the login/);
  const same = await runCli(['passphrase'], { profile, env: { SIGIL_KEY_PASSPHRASE: issuers, SIGIL_NEW_KEY_PASSPHRASE: issuers } });
  t.equal(same.code, 2);
  t.match(same.stderr, /must differ from the current one/);
  t.ok(opensWith(keyFile, issuers), 'refusals leave the key file as it was');

  const changed = await runCli(['passphrase', '--json'], { profile, env: { SIGIL_KEY_PASSPHRASE: issuers, SIGIL_NEW_KEY_PASSPHRASE: GOOD } });
  t.equal(changed.code, 0, changed.stderr);
  t.same(JSON.parse(changed.stdout), { keyFile });
  t.notOk(opensWith(keyFile, issuers), 'the issuer\'s password no longer opens it');
  t.ok(opensWith(keyFile, GOOD), 'the new passphrase does');
  t.match(readFileSync(keyFile, 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  t.equal(readFileSync(join(profile, 'cert.pem'), 'utf8'), certBefore, 'the certificate stays');
  t.notOk(readdirSync(profile).some((n) => n.includes('sigil-new')), 'no staged file left behind');
  // The same key as before: its public half still matches the certificate.
  const pub = execFileSync('openssl', ['pkey', '-in', keyFile, '-passin', `pass:${GOOD}`, '-pubout'], { encoding: 'utf8' });
  const certPub = execFileSync('openssl', ['x509', '-in', join(profile, 'cert.pem'), '-pubkey', '-noout'], { encoding: 'utf8' });
  t.equal(pub, certPub);
});

t.test('when cert import --new-passphrase gets a weak one then nothing is imported', async (t) => {
  const { dir, profile } = await profileOf(t);
  const staff = await ca.staff('cruz');
  const p12 = join(dir, 'cruz.p12');
  writeFileSync(p12, await createPkcs12({ key: staff.key, cert: staff.cert, chain: ca.chain, password: 'p12-password-1' }));
  const r = await runCli(['cert', 'import', p12, '--new-passphrase'], { profile, env: { SIGIL_KEY_PASSPHRASE: 'p12-password-1', SIGIL_NEW_KEY_PASSPHRASE: 'tiny' } });
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /too weak: it must have at least 12 characters/);
  t.notOk(existsSync(join(profile, 'key.p8.pem')), 'no key written');
  t.notOk(existsSync(join(profile, 'cert.pem')), 'no certificate written');
});

t.test('when the profile has no key then sigil passphrase says how to get one', async (t) => {
  const { profile } = await profileOf(t);
  const r = await runCli(['passphrase'], { profile, env: { SIGIL_NEW_KEY_PASSPHRASE: GOOD } });
  t.equal(r.code, 1);
  t.match(r.stderr, /no key in the profile; run: sigil keygen/);
});
