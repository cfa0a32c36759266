/**
 * The built CLI without a server: setup and the local error codes, each provoked through a real
 * child process.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { makeTestCa } from '../helpers/pki-fixtures.js';
import { runCli } from '../helpers/cli.js';
import { tmpDir } from '../helpers/tmp.js';
import { issueFromCsr, setUpLocalProfile } from './helpers/local-profile.js';

const PASS = 'correct horse battery';

const p256 = await makeTestCa('p256');
const other = await makeTestCa('p256');

t.test('setup', async (t) => {
  t.test('when setup succeeds then config and pinned CA are written and the fingerprint printed', async (t) => {
    const dir = tmpDir(t, 'sigil-cli-local-');
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, p256.root.cert.pem);
    const profile = join(dir, 'p');
    const r = await runCli(['setup', '--server', 'https://127.0.0.1:8443/ignored/path', '--ca', caFile, '--json'], { profile });
    t.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    t.equal(out.server, 'https://127.0.0.1:8443');
    t.equal(out.ca[0].sha256.replace(/:/g, '').toLowerCase(), p256.root.cert.fingerprint);
    t.same(JSON.parse(readFileSync(join(profile, 'config.json'), 'utf8')), { version: 1, server: 'https://127.0.0.1:8443' });
    t.equal(readFileSync(join(profile, 'ca.pem'), 'utf8').trim(), p256.root.cert.pem.trim());

    const again = await runCli(['setup', '--server', 'https://127.0.0.1:8443', '--ca', caFile], { profile });
    t.equal(again.code, 1, 'PROFILE_EXISTS exits 1');
    t.match(again.stderr, /^error: a profile already exists .*--force/);
    // A root CRL kept from the appliance (messaging/kept-root-crl.ts) stays with its pin, and goes with it.
    const kept = join(profile, 'root-crl.pem');
    writeFileSync(kept, 'root CRL of the first pin\n');
    const forced = await runCli(['setup', '--server', 'https://10.0.0.7:8443', '--ca', caFile, '--force'], { profile });
    t.equal(forced.code, 0);
    t.notMatch(forced.stderr, /pinned CA changed/, 'the same CA: nothing to say');
    t.ok(existsSync(kept), 'the same pin keeps its root CRL');
    t.match(JSON.parse(readFileSync(join(profile, 'config.json'), 'utf8')), { server: 'https://10.0.0.7:8443' });

    const otherFile = join(dir, 'other-ca.pem');
    writeFileSync(otherFile, other.root.cert.pem);
    const swapped = await runCli(['setup', '--server', 'https://10.0.0.7:8443', '--ca', otherFile, '--force'], { profile });
    t.equal(swapped.code, 0, swapped.stderr);
    const oldSha = out.ca[0].sha256 as string;
    t.notOk(existsSync(kept), 'a new pin drops the root CRL kept from the old one');
    t.equal(swapped.stderr, `the pinned CA changed (was sha256 ${oldSha}); a certificate issued under the old one no longer chains (import one from this appliance: sigil cert import FILE), and a saved audit checkpoint of another appliance will not match its trail\n`);
    const back = await runCli(['setup', '--server', 'https://10.0.0.7:8443', '--ca', caFile, '--force', '--json'], { profile });
    t.match(JSON.parse(back.stdout), { replacedCa: [{ sha256: new X509Certificate(other.root.cert.pem).fingerprint256 }] }, 'named in --json too');
  });

  t.test('when SIGIL_PROFILE names the folder then it is used without --profile', async (t) => {
    const dir = tmpDir(t, 'sigil-cli-local-');
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, p256.root.cert.pem);
    const r = await runCli(['setup', '--server', 'https://127.0.0.1:8443', '--ca', caFile], { env: { SIGIL_PROFILE: join(dir, 'env-profile') } });
    t.equal(r.code, 0, r.stderr);
    t.ok(statSync(join(dir, 'env-profile', 'config.json')).isFile());
  });

  t.test('when the server URL is not https then USAGE, exit 2', async (t) => {
    const dir = tmpDir(t, 'sigil-cli-local-');
    const r = await runCli(['setup', '--server', 'http://127.0.0.1:8443', '--ca', 'x.pem'], { profile: join(dir, 'p') });
    t.equal(r.code, 2);
    t.match(r.stderr, /--server: expected an https:\/\/ URL/);
  });

  t.test('when the CA file is not a CA certificate then INPUT_INVALID, exit 1', async (t) => {
    const dir = tmpDir(t, 'sigil-cli-local-');
    const staff = await p256.staff('leafy');
    const leaf = join(dir, 'leaf.pem');
    writeFileSync(leaf, staff.cert.pem);
    const r = await runCli(['setup', '--server', 'https://127.0.0.1:8443', '--ca', leaf], { profile: join(dir, 'p') });
    t.equal(r.code, 1);
    t.match(r.stderr, /is not a CA certificate/);
    const missing = await runCli(['setup', '--server', 'https://127.0.0.1:8443', '--ca', join(dir, 'nope.pem')], { profile: join(dir, 'p') });
    t.equal(missing.code, 1);
    t.match(missing.stderr, /is not a readable file/);
  });

  t.test('when no profile exists then PROFILE_MISSING, exit 1', async (t) => {
    const dir = tmpDir(t, 'sigil-cli-local-');
    const r = await runCli(['keygen', '--login', 'alee'], { profile: join(dir, 'none'), env: { SIGIL_KEY_PASSPHRASE: PASS } });
    t.equal(r.code, 1);
    t.match(r.stderr, /^error: no profile in .*sigil setup/);
  });

  t.test('when config.json is damaged then PROFILE_CORRUPT, exit 1', async (t) => {
    const { profile } = await setUpLocalProfile(t, p256);
    writeFileSync(join(profile, 'config.json'), '{"version":1,"server":');
    const r = await runCli(['keygen', '--login', 'alee'], { profile, env: { SIGIL_KEY_PASSPHRASE: PASS } });
    t.equal(r.code, 1);
    t.match(r.stderr, /config\.json is unreadable or malformed/);
  });
});

t.test('local failures', async (t) => {
  const { dir, profile } = await setUpLocalProfile(t, p256);
  const env = { SIGIL_KEY_PASSPHRASE: PASS };

  await t.test('when the key is missing then KEY_MISSING, exit 1', async (t) => {
    const r = await runCli(['crl', 'fetch'], { profile, env });
    t.equal(r.code, 1);
    t.match(r.stderr, /^error: no key in the profile/);
  });

  await t.test('when no passphrase can be asked then PROMPT_UNAVAILABLE at once, exit 2', async (t) => {
    const r = await runCli(['keygen', '--login', 'alee'], { profile, keepStdinOpen: true, timeoutMs: 20_000 });
    t.equal(r.code, 2, 'exits instead of waiting on stdin');
    t.match(r.stderr, /New key passphrase is needed but stdin is not a terminal; set SIGIL_KEY_PASSPHRASE/);
  });

  const gen = await runCli(['keygen', '--login', 'alee', '--algorithm', 'p256'], { profile, env });
  t.equal(gen.code, 0, gen.stderr);
  t.match(gen.stdout, /^-----BEGIN CERTIFICATE REQUEST-----/, 'CSR on stdout without --out');

  await t.test('when a key exists then keygen refuses with KEY_EXISTS, exit 1', async (t) => {
    const r = await runCli(['keygen', '--login', 'alee'], { profile, env });
    t.equal(r.code, 1);
    t.match(r.stderr, /a private key already exists .*--force/);
  });

  await t.test('when there is no certificate yet then CERT_MISSING, exit 1', async (t) => {
    const r = await runCli(['crl', 'fetch'], { profile, env });
    t.equal(r.code, 1);
    t.match(r.stderr, /no certificate in the profile/);
  });

  await t.test('when the passphrase is wrong then KEY_PASSPHRASE_WRONG, exit 4', async (t) => {
    const r = await runCli(['crl', 'fetch'], { profile, env: { SIGIL_KEY_PASSPHRASE: 'wrong' } });
    t.equal(r.code, 4);
    t.match(r.stderr, /could not be unlocked/);
  });

  await t.test('when the certificate is for another key then CERT_KEY_MISMATCH, exit 3', async (t) => {
    const bob = await p256.staff('bob');
    const f = join(dir, 'bob.pem');
    writeFileSync(f, bob.cert.pem);
    const r = await runCli(['cert', 'import', f], { profile, env });
    t.equal(r.code, 3);
    t.match(r.stderr, /does not match the private key/);
  });

  await t.test('when the certificate is from another CA then NOT_TRUSTED, exit 3', async (t) => {
    const f = join(dir, 'foreign.pem');
    writeFileSync(f, await issueFromCsr(other, readFileSync(join(profile, 'request.csr.pem'), 'utf8'), 'alee'));
    const r = await runCli(['cert', 'import', f], { profile, env });
    t.equal(r.code, 3);
    t.match(r.stderr, /not trusted by the pinned CA: (unknown-issuer|bad-signature)/);
  });

  await t.test('when the file is neither a certificate nor a PKCS#12 then INPUT_INVALID, exit 1', async (t) => {
    const f = join(dir, 'junk.bin');
    writeFileSync(f, 'this is not PKI');
    const r = await runCli(['cert', 'import', f, '--force'], { profile, env });
    t.equal(r.code, 1);
    t.match(r.stderr, /is not a PEM certificate or a PKCS#12 file/);
  });

  await t.test('when not logged in then whoami says NOT_LOGGED_IN, exit 4; logout is a no-op', async (t) => {
    const r = await runCli(['whoami'], { profile, env });
    t.equal(r.code, 4);
    t.match(r.stderr, /not logged in; run: sigil login/);
    const out = await runCli(['logout', '--json'], { profile, env });
    t.equal(out.code, 0);
    t.same(JSON.parse(out.stdout), { loggedOut: true, serverSessionEnded: false });
  });

  await t.test('when SIGIL_DEBUG=1 then the cause chain follows the error line', async (t) => {
    const r = await runCli(['crl', 'fetch'], { profile, env: { SIGIL_KEY_PASSPHRASE: 'wrong', SIGIL_DEBUG: '1' } });
    t.equal(r.code, 4);
    t.match(r.stderr, /caused by: .*BadPassphraseError/s);
    const quiet = await runCli(['crl', 'fetch'], { profile, env: { SIGIL_KEY_PASSPHRASE: 'wrong' } });
    t.equal(quiet.stderr.trim().split('\n').length, 1, 'one line without SIGIL_DEBUG');
  });
});
