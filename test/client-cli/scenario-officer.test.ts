/**
 * Officer commands with the built CLI against a real appliance on 127.0.0.1: accounts (create,
 * list, show, disable, enable, lockout and unlock, reset, clearance), certificates as PKCS#12,
 * listing and revocation, CRL publish and fetch (checked by openssl), and a server pinned to the
 * wrong CA.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { profileRunner } from '../helpers/cli.js';
import { startTestAppliance } from '../helpers/appliance.js';
import { makeTestCa } from '../helpers/pki-fixtures.js';
import { tmpDir } from '../helpers/tmp.js';

const app = await startTestAppliance();
t.teardown(() => app.stop());
const dir = tmpDir(t, 'sigil-cli-officer-');
const officer = profileRunner(join(dir, 'officer'), { SIGIL_KEY_PASSPHRASE: app.officer.p12Password, SIGIL_PASSWORD: app.officer.password });
const BKIM_PASSWORD = 'November 5531 oscar papa';

await t.test('when the officer profile is set up from the init PKCS#12 then login succeeds', async (t) => {
  t.equal((await officer.run(['setup', '--server', app.url, '--ca', app.init.ca.chain])).code, 0);
  t.equal((await officer.run(['cert', 'import', app.officer.p12Path])).code, 0);
  const login = await officer.json(['login']);
  t.match(login, { role: 'officer', passwordChanged: false });
});

let bkim = profileRunner(join(dir, 'bkim'));
await t.test('when an account gets a PKCS#12 then its holder imports it and logs in', async (t) => {
  const created = await officer.json(['user', 'create', '--login', 'bkim', '--name', 'Bo Kim', '--department', 'Cipher', '--clearance', 'confidential']);
  const p12File = join(dir, 'bkim.p12');
  const issued = await officer.json(['cert', 'issue', 'bkim', '--p12', p12File]);
  t.match(issued, { serial: /^[0-9a-f]+$/i, file: p12File, password: /.{8,}/ });
  // openssl opens it with the printed password.
  execFileSync('openssl', ['pkcs12', '-in', p12File, '-passin', `pass:${issued.password}`, '-nokeys', '-noout'], { stdio: 'pipe' });
  // Until bkim's first login the officer sees the envelope password still unused.
  t.match(await officer.json(['user', 'show', 'bkim']), { login: 'bkim', mustChangePassword: true });
  t.match((await officer.run(['user', 'show', 'bkim'])).stdout, /\npassword:\s+envelope password, to be changed at the next login\n/);
  t.match((await officer.run(['user', 'list'])).stdout, /\nbkim\s+Bo Kim\s+Cipher\s+staff\s+confidential\s+active\s+envelope\s/);
  bkim = profileRunner(join(dir, 'bkim'), { SIGIL_KEY_PASSPHRASE: issued.password });
  t.equal((await bkim.run(['setup', '--server', app.url, '--ca', app.init.ca.root])).code, 0);
  const imp = await bkim.json(['cert', 'import', p12File]);
  t.equal(imp.serial.toLowerCase(), issued.serial.toLowerCase());
  const login = await bkim.json(['login'], { env: { SIGIL_PASSWORD: created.envelope.password, SIGIL_NEW_PASSWORD: BKIM_PASSWORD } });
  t.match(login, { login: 'bkim', clearance: 'confidential', passwordChanged: true });
});

await t.test('when the officer lists and shows accounts then both humans and machines get them', async (t) => {
  const { users } = await officer.json(['user', 'list']);
  t.same(users.map((u: { login: string }) => u.login).sort(), [app.officer.login, 'bkim'].sort());
  const table = await officer.run(['user', 'list']);
  t.match(table.stdout, /^LOGIN\s+NAME\s+DEPARTMENT\s+ROLE\s+CLEARANCE\s+STATUS\s+PASSWORD/);
  t.match(table.stdout, /\nbkim\s+Bo Kim\s+Cipher\s+staff\s+confidential\s+active\s+own\s/);
  t.match(await officer.json(['user', 'show', 'bkim']), { login: 'bkim', status: 'active', mustChangePassword: false, certificate: { serial: /.+/ } });
  t.match((await officer.run(['user', 'show', 'bkim'])).stdout, /\npassword:\s+chosen by the holder\n/);
  const none = await officer.run(['user', 'show', 'nobody']);
  t.equal(none.code, 1);
  t.match(none.stderr, /ACCOUNT_NOT_FOUND/);
});

await t.test('when a login fails repeatedly then the account locks (exit 4) until the officer unlocks it', async (t) => {
  let locked = false;
  for (let i = 0; i < 7 && !locked; i++) {
    const r = await bkim.run(['login'], { env: { SIGIL_PASSWORD: 'definitely wrong password' } });
    t.equal(r.code, 4, `attempt ${i + 1} refused with exit 4`);
    locked = /ACCOUNT_LOCKED/.test(r.stderr);
  }
  t.ok(locked, 'ACCOUNT_LOCKED reached');
  t.equal((await bkim.run(['login'], { env: { SIGIL_PASSWORD: BKIM_PASSWORD } })).code, 4, 'even the right password while locked');
  t.match(await officer.json(['user', 'unlock', 'bkim']), { status: 'active' });
  t.equal((await bkim.run(['login'], { env: { SIGIL_PASSWORD: BKIM_PASSWORD } })).code, 0);
});

await t.test('when the officer disables and enables an account then login follows', async (t) => {
  t.match(await officer.json(['user', 'disable', 'bkim']), { status: 'disabled' });
  const refused = await bkim.run(['login'], { env: { SIGIL_PASSWORD: BKIM_PASSWORD } });
  t.equal(refused.code, 4);
  t.match(await officer.json(['user', 'enable', 'bkim']), { status: 'active' });
  t.equal((await bkim.run(['login'], { env: { SIGIL_PASSWORD: BKIM_PASSWORD } })).code, 0);
});

await t.test('when a reset has no --yes and no terminal then it refuses (exit 2); with --yes a new envelope is printed', async (t) => {
  const r = await officer.run(['user', 'reset', 'bkim']);
  t.equal(r.code, 2);
  t.match(r.stderr, /add --yes/);
  const reset = await officer.json(['user', 'reset', 'bkim', '--yes']);
  t.match(reset.envelope, { login: 'bkim', password: /.+/ });
  const old = await bkim.run(['login'], { env: { SIGIL_PASSWORD: BKIM_PASSWORD } });
  t.equal(old.code, 4, 'the old password is gone');
  const again = await bkim.json(['login'], { env: { SIGIL_PASSWORD: reset.envelope.password, SIGIL_NEW_PASSWORD: BKIM_PASSWORD } });
  t.equal(again.passwordChanged, true);
});

await t.test('when the officer revokes a certificate then its holder is refused and the CRL lists it', async (t) => {
  const { certificates } = await officer.json(['cert', 'list', 'bkim']);
  t.equal(certificates.length, 1);
  const serial = certificates[0].serial;
  t.equal(certificates[0].status, 'active');
  const revoked = await officer.json(['cert', 'revoke', serial, '--reason', 'keyCompromise', '--yes']);
  t.match(revoked, { serial, reason: 'keyCompromise', sameKey: [] });
  const twice = await officer.run(['cert', 'revoke', serial, '--reason', 'keyCompromise', '--yes']);
  t.equal(twice.code, 1);
  t.match(twice.stderr, /CERTIFICATE_ALREADY_REVOKED/);
  const who = await bkim.run(['whoami']);
  t.equal(who.code, 4, 'revoked certificate: authentication refused');
  t.match(who.stderr, /CERT_REVOKED/);
  t.match((await officer.json(['cert', 'list', 'bkim'])).certificates[0], { status: 'revoked', reason: 'keyCompromise' });

  const published = await officer.json(['crl', 'publish']);
  const crlFile = join(dir, 'sigil.crl.pem');
  const fetched = await officer.json(['crl', 'fetch', '--out', crlFile]);
  t.equal(String(fetched.crlNumber), String(published.crlNumber));
  t.ok(fetched.revoked >= 1);
  const text = execFileSync('openssl', ['crl', '-in', crlFile, '-CAfile', app.init.ca.chain, '-noout', '-text'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.match(text.toLowerCase(), serial.toLowerCase().replace(/^0+/, ''));
  const pem = await officer.run(['crl', 'fetch']);
  t.match(pem.stdout, /^-----BEGIN X509 CRL-----/, 'PEM on stdout without --out');
});

await t.test('when the clearance changes then the account carries the new level', async (t) => {
  const a = await officer.json(['user', 'clearance', 'bkim', '--clearance', 'secret', '--yes']);
  t.match(a, { login: 'bkim', clearance: 'secret' });
});

await t.test('when the profile pins another CA then the server is not trusted (exit 3)', async (t) => {
  const other = await makeTestCa('p256');
  const caFile = join(dir, 'other-ca.pem');
  writeFileSync(caFile, other.root.cert.pem);
  t.equal((await officer.run(['setup', '--server', app.url, '--ca', caFile, '--force'])).code, 0);
  const r = await officer.run(['crl', 'fetch']);
  t.equal(r.code, 3);
  t.match(r.stderr, /failed verification against the pinned CA/);
  t.equal((await officer.run(['setup', '--server', app.url, '--ca', app.init.ca.chain, '--force'])).code, 0);
});

await t.test('when the officer logs out then the server session ends', async (t) => {
  t.equal((await officer.run(['login'])).code, 0);
  t.same(await officer.json(['logout']), { loggedOut: true, serverSessionEnded: true });
  t.equal((await officer.run(['whoami'])).code, 4);
});
