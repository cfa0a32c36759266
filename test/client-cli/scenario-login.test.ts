/**
 * The tour of MISSION.md steps 2–3 with the built CLI against a real appliance on 127.0.0.1:
 * the officer imports the PKCS#12 made at init and does the first login (forced password change,
 * signed envelope receipt); creates a staff account; the staff member makes a key and CSR on the
 * workstation, the officer issues the certificate, and the staff member imports it, logs in,
 * changes the password, logs out. Negatives: wrong password, no TTY and no variable.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { profileRunner } from '../helpers/cli.js';
import { startTestAppliance } from '../helpers/appliance.js';
import { tmpDir } from '../helpers/tmp.js';

const app = await startTestAppliance({ skipOfficerFirstLogin: true });
t.teardown(() => app.stop());
const dir = tmpDir(t, 'sigil-cli-scenario-');
// Pin only the root, as an officer would hand it out; the issuing CA comes from the server.
const rootPem = app.init.ca.root;

const officer = profileRunner(join(dir, 'officer'), { SIGIL_KEY_PASSPHRASE: app.officer.p12Password });
const alee = profileRunner(join(dir, 'alee'), { SIGIL_KEY_PASSPHRASE: 'ann lee key passphrase' });
const OFFICER_NEW = 'Tango Foxtrot 1947 quebec';

await t.test('when the officer sets up, imports the init PKCS#12 and logs in first then the password change and receipt are done', async (t) => {
  const setup = await officer.json(['setup', '--server', app.url, '--ca', rootPem]);
  t.equal(setup.server, app.url);
  const imported = await officer.json(['cert', 'import', app.officer.p12Path]);
  t.equal(imported.login, app.officer.login);

  const login = await officer.json(['login'], { env: { SIGIL_PASSWORD: app.officer.envelopePassword, SIGIL_NEW_PASSWORD: OFFICER_NEW } });
  t.match(login, { login: app.officer.login, role: 'officer', passwordChanged: true, envelopeReceipt: /.+/ });
  const me = await officer.json(['whoami']);
  t.match(me, { login: app.officer.login, role: 'officer', status: 'active' });
  // The server agrees the receipt was recorded: the envelope password no longer works.
  const old = await officer.run(['login'], { env: { SIGIL_PASSWORD: app.officer.envelopePassword } });
  t.equal(old.code, 4, 'envelope password refused after the change');
  t.match(old.stderr, /AUTH_FAILED/);
  const again = await officer.json(['login'], { env: { SIGIL_PASSWORD: OFFICER_NEW } });
  t.equal(again.passwordChanged, false, 'no forced change the second time');
});

let envelopePassword = '';
await t.test('when the officer creates an account then the envelope is printed and the HTML written', async (t) => {
  const html = join(dir, 'alee-envelope.html');
  const created = await officer.json(['user', 'create', '--login', 'alee', '--name', 'Ann Lee', '--department', 'Signals', '--clearance', 'secret', '--envelope-out', html]);
  t.match(created.account, { login: 'alee', clearance: 'secret', role: 'staff' });
  t.match(created.envelope, { login: 'alee', serial: /.+/, password: /.+/ });
  envelopePassword = created.envelope.password;
  t.match(readFileSync(html, 'utf8'), /alee/);
  const text = await officer.run(['user', 'reset', 'alee', '--yes']);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /alee/, 'the human form prints the envelope text');
  const shown = await officer.json(['user', 'reset', 'alee', '--yes']);
  envelopePassword = shown.envelope.password;
});

await t.test('when staff make a key and CSR, the officer issues from it and staff import it then staff log in with the forced change', async (t) => {
  t.equal((await alee.run(['setup', '--server', app.url, '--ca', rootPem])).code, 0);
  const csrFile = join(dir, 'alee.csr.pem');
  const gen = await alee.json(['keygen', '--login', 'alee', '--algorithm', app.appliance.meta.profile, '--out', csrFile]);
  t.equal(gen.login, 'alee');
  const certFile = join(dir, 'alee.cert.pem');
  const issued = await officer.json(['cert', 'issue', 'alee', '--csr', csrFile, '--out', certFile]);
  t.match(issued, { serial: /^[0-9a-f]+$/i, file: certFile });
  // The issued certificate verifies with openssl against the appliance chain.
  execFileSync('openssl', ['verify', '-CAfile', app.init.ca.chain, certFile], { stdio: 'pipe' });
  const imported = await alee.json(['cert', 'import', certFile]);
  t.equal(imported.serial.toLowerCase(), issued.serial.toLowerCase());

  const first = await alee.json(['login'], { env: { SIGIL_PASSWORD: envelopePassword, SIGIL_NEW_PASSWORD: 'Kilo Lima 2210 sierra' } });
  t.match(first, { login: 'alee', role: 'staff', clearance: 'secret', passwordChanged: true });
  const me = await alee.json(['whoami']);
  t.match(me, { login: 'alee', clearance: 'secret', certificate: { serial: /.+/, notAfter: /.+/ } });
  const human = await alee.run(['whoami']);
  t.match(human.stdout, /clearance:\s+SECRET/);
  t.match(human.stdout, /cert expires:\s+\d{4}-/);
  t.match(human.stdout, /\npassword:\s+chosen by the holder\n/);
});

await t.test('when staff change the password then the new one works and the old one is refused', async (t) => {
  const ch = await alee.run(['passwd'], { env: { SIGIL_PASSWORD: 'Kilo Lima 2210 sierra', SIGIL_NEW_PASSWORD: 'Whiskey 7781 yankee zulu' } });
  t.equal(ch.code, 0, ch.stderr);
  t.equal((await alee.run(['logout'])).code, 0);
  const gone = await alee.run(['whoami']);
  t.equal(gone.code, 4, 'no session after logout');
  const old = await alee.run(['login'], { env: { SIGIL_PASSWORD: 'Kilo Lima 2210 sierra' } });
  t.equal(old.code, 4);
  t.equal(old.stderr.trim().split('\n').length, 1, 'one error line');
  t.equal((await alee.run(['login'], { env: { SIGIL_PASSWORD: 'Whiskey 7781 yankee zulu' } })).code, 0);
});

await t.test('when the password is asked with no terminal and no SIGIL_PASSWORD then login fails at once, exit 2', async (t) => {
  const r = await alee.run(['login'], { keepStdinOpen: true, timeoutMs: 30_000 });
  t.equal(r.code, 2);
  t.match(r.stderr, /Password for alee is needed but stdin is not a terminal; set SIGIL_PASSWORD/);
});

await t.test('when the session token is no longer valid on the server then whoami exits 4', async (t) => {
  t.equal((await officer.run(['user', 'disable', 'alee'])).code, 0);
  const r = await alee.run(['whoami']);
  t.equal(r.code, 4, r.stderr);
});
