/**
 * Review finding: `sigil cert issue --p12 OUT` and `sigil user create|reset --envelope-out FILE`
 * over an existing file kept that file's mode (writeFile's mode applies only at creation), so an
 * existing 0644 file stayed world-readable with a PKCS#12, or an envelope's one-time password,
 * inside. Now each is a new 0600 file renamed over the name; a symbolic link there is replaced,
 * not written through; and an output that cannot be written fails before the appliance issues or
 * creates anything. The built CLI against a real appliance; openssl reads the PKCS#12.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { profileRunner } from '../helpers/cli.js';
import { startTestAppliance } from '../helpers/appliance.js';
import { tmpDir } from '../helpers/tmp.js';

const posix = process.platform !== 'win32';
const modeOf = (p: string): number => statSync(p).mode & 0o777;

const app = await startTestAppliance();
t.teardown(() => app.stop());
const dir = tmpDir(t, 'sigil-cli-secret-out-');
const officer = profileRunner(join(dir, 'officer'), { SIGIL_KEY_PASSPHRASE: app.officer.p12Password, SIGIL_PASSWORD: app.officer.password });
t.before(async () => {
  for (const args of [['setup', '--server', app.url, '--ca', app.init.ca.chain], ['cert', 'import', app.officer.p12Path]]) {
    const r = await officer.run(args);
    if (r.code !== 0) throw new Error(`sigil ${args[0]}: ${r.stderr}`);
  }
  await officer.json(['login']);
});

const certCount = async (login: string): Promise<number> =>
  ((await app.request(`/v1/users/${login}/certificates`, { token: app.officer.token })).body.certificates as unknown[]).length;

t.test('when --p12 names an existing world-readable file then the PKCS#12 lands in a 0600 file', { skip: !posix && 'POSIX modes' }, async (t) => {
  await officer.json(['user', 'create', '--login', 'pkim', '--name', 'P Kim', '--department', 'Cipher', '--clearance', 'confidential']);
  const p12File = join(dir, 'pkim.p12');
  writeFileSync(p12File, 'an older, readable file', { mode: 0o644 });
  const issued = await officer.json(['cert', 'issue', 'pkim', '--p12', p12File]);
  t.equal(modeOf(p12File), 0o600, 'owner-only although the file it replaced was 0644');
  execFileSync('openssl', ['pkcs12', '-in', p12File, '-passin', `pass:${issued.password}`, '-nokeys', '-noout'], { stdio: 'pipe' });
  t.pass('openssl opens it with the printed password');
  t.notOk(readdirSync(dir).some((n) => n.includes('.sigil-new-')), 'no hidden file left');
});

t.test('when --p12 names a symbolic link then the link is replaced and its target untouched', { skip: !posix && 'symlinks' }, async (t) => {
  const victim = join(dir, 'victim.txt');
  writeFileSync(victim, 'someone else’s file', { mode: 0o644 });
  const link = join(dir, 'link.p12');
  symlinkSync(victim, link);
  await officer.json(['cert', 'issue', 'pkim', '--p12', link]);
  t.notOk(lstatSync(link).isSymbolicLink(), 'a regular file now');
  t.equal(modeOf(link), 0o600);
  t.equal(readFileSync(victim, 'utf8'), 'someone else’s file', 'nothing written through the link');
});

t.test('when --p12 names a missing folder then nothing is issued', async (t) => {
  const before = await certCount('pkim');
  const r = await officer.run(['cert', 'issue', 'pkim', '--p12', join(dir, 'no-such-folder', 'x.p12')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: cannot write .*x\.p12: its folder does not exist\n$/);
  t.equal(await certCount('pkim'), before, 'no key or certificate was made whose only copy would be lost');
});

t.test('when --envelope-out names an existing world-readable file then the envelope lands in a 0600 file', { skip: !posix && 'POSIX modes' }, async (t) => {
  const html = join(dir, 'ekim.html');
  writeFileSync(html, 'an older, readable file', { mode: 0o644 });
  const created = await officer.json(['user', 'create', '--login', 'ekim', '--name', 'E Kim', '--department', 'Cipher', '--clearance', 'confidential', '--envelope-out', html]);
  t.equal(modeOf(html), 0o600, 'create: owner-only although the file it replaced was 0644');
  t.ok(readFileSync(html, 'utf8').includes(created.envelope.password), 'create: the envelope with its password');

  const resetHtml = join(dir, 'ekim-reset.html');
  writeFileSync(resetHtml, 'an older, readable file', { mode: 0o644 });
  const reset = await officer.json(['user', 'reset', 'ekim', '--yes', '--envelope-out', resetHtml]);
  t.equal(modeOf(resetHtml), 0o600, 'reset: owner-only too');
  t.ok(readFileSync(resetHtml, 'utf8').includes(reset.envelope.password), 'reset: the new envelope');
});

t.test('when --envelope-out names a missing folder then no account is created', async (t) => {
  const r = await officer.run(['user', 'create', '--login', 'nkim', '--name', 'N Kim', '--department', 'Cipher', '--clearance', 'confidential', '--envelope-out', join(dir, 'nope', 'n.html')]);
  t.equal(r.code, 1);
  t.match(r.stderr, /^error: cannot write .*n\.html: its folder does not exist\n$/);
  t.equal((await app.request('/v1/users/nkim', { token: app.officer.token })).status, 404, 'no account whose envelope nobody saw');
});
